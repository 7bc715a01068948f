//! Certificate-bound access tokens (RFC 8705 section 3): the `cnf` claim,
//! the certificate thumbprint it carries, and the one rule that says whether
//! a caller's certificate is the one a token is bound to. The server writes
//! the claim with [`certificate_thumbprint`]; the SDK's verifier checks it
//! with [`Confirmation::is_bound_to`]. Both use this module, so they cannot
//! disagree on encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
// Thumbprints are not secret, but a comparison that leaks nothing is no dearer.
use subtle::ConstantTimeEq as _;

/// The `cnf` (confirmation) claim of a token bound to a certificate
/// (RFC 7800 section 3.1, RFC 8705 section 3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// `x5t#S256`: the base64url SHA-256 of the certificate's DER, unpadded.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl Confirmation {
    /// A confirmation binding a token to the certificate with this
    /// thumbprint (as [`certificate_thumbprint`] writes it).
    pub fn x5t_s256(thumbprint: impl Into<String>) -> Self {
        Self {
            x5t_s256: Some(thumbprint.into()),
        }
    }

    /// True when the presented certificate's thumbprint (as
    /// [`certificate_thumbprint`] writes it) is the bound one. A `cnf` with
    /// no `x5t#S256` binds to something this verifier cannot check, so
    /// nothing matches it.
    pub fn is_bound_to(&self, presented: Option<&str>) -> bool {
        match (self.x5t_s256.as_deref(), presented) {
            (Some(bound), Some(presented)) => bool::from(bound.as_bytes().ct_eq(presented.as_bytes())),
            _ => false,
        }
    }
}

/// The `x5t#S256` of a DER certificate: base64url (unpadded) SHA-256 of the
/// DER bytes (RFC 8705 section 3.1).
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// The `x5t#S256` form of a SHA-256 written in hex (Envoy's
/// `x-forwarded-client-cert` `Hash=`); `None` unless it is 64 hex digits.
pub fn thumbprint_from_hex(hex: &str) -> Option<String> {
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(URL_SAFE_NO_PAD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_is_unpadded_base64url_sha256_of_the_der_rfc8705_3_1() {
        // SHA-256("abc") = ba7816bf…15ad.
        assert_eq!(
            certificate_thumbprint(b"abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn a_hex_sha256_converts_to_the_same_thumbprint() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            thumbprint_from_hex(hex).as_deref(),
            Some(certificate_thumbprint(b"abc").as_str())
        );
        assert_eq!(thumbprint_from_hex(&hex.to_uppercase()), thumbprint_from_hex(hex));
        assert_eq!(thumbprint_from_hex(&hex[2..]), None);
        assert_eq!(thumbprint_from_hex(&hex.replace('b', "g")), None);
    }

    #[test]
    fn a_token_is_bound_only_to_its_own_certificate() {
        let cnf = Confirmation::x5t_s256(certificate_thumbprint(b"mine"));
        assert!(cnf.is_bound_to(Some(&certificate_thumbprint(b"mine"))));
        assert!(!cnf.is_bound_to(Some(&certificate_thumbprint(b"theirs"))));
        assert!(!cnf.is_bound_to(None));
        assert!(!Confirmation { x5t_s256: None }.is_bound_to(Some("x")));
    }

    #[test]
    fn the_claim_is_named_x5t_s256_in_json() {
        let json = serde_json::to_value(Confirmation::x5t_s256(certificate_thumbprint(b"abc"))).expect("serialises");
        assert_eq!(json, serde_json::json!({"x5t#S256": certificate_thumbprint(b"abc")}));
    }
}

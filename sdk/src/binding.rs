//! The certificate a caller presented, as a resource server learns it: from
//! its own TLS connection, or from the `x-forwarded-client-cert` header a
//! sidecar proxy (Envoy, Istio) sets after terminating the caller's TLS.
//! A token bound to a certificate (RFC 8705 section 3) is accepted only
//! from a caller that presented that certificate.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tessera_proto::confirmation::{certificate_thumbprint, thumbprint_from_hex};

/// The TLS client certificate of a caller, by its `x5t#S256` thumbprint.
///
/// A service that terminates TLS itself with another server than tonic
/// (axum with its own acceptor, say) inserts one into each request's
/// extensions for [`crate::RequireScopes`] to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerCertificate(String);

impl CallerCertificate {
    /// The certificate whose DER is `der`.
    pub fn from_der(der: &[u8]) -> Self {
        Self(certificate_thumbprint(der))
    }

    /// The first certificate of a PEM text; `None` without one.
    pub fn from_pem(pem: &[u8]) -> Option<Self> {
        CertificateDer::from_pem_slice(pem)
            .ok()
            .map(|der| Self::from_der(der.as_ref()))
    }

    /// A certificate known by the hex SHA-256 of its DER (Envoy's `Hash=`).
    pub fn from_sha256_hex(hex: &str) -> Option<Self> {
        thumbprint_from_hex(hex).map(Self)
    }

    /// `x5t#S256`: base64url SHA-256 of the DER, as a bound token's `cnf` names it.
    pub fn thumbprint(&self) -> &str {
        &self.0
    }

    /// The caller's certificate from an `x-forwarded-client-cert` value:
    /// its last element (the one the nearest proxy wrote), by `Hash=`, else
    /// by `Cert=` (URL-encoded PEM). `None` when neither is there or usable.
    pub fn from_forwarded_header(value: &str) -> Option<Self> {
        let element = split_outside_quotes(value, ',').pop()?;
        let mut cert = None;
        for pair in split_outside_quotes(element, ';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            match key.trim().to_ascii_lowercase().as_str() {
                "hash" => return Self::from_sha256_hex(&value),
                "cert" => cert = Some(value),
                _ => {}
            }
        }
        Self::from_pem(percent_decode(&cert?)?.as_bytes())
    }
}

/// Splits on `separator` where it is not inside a double-quoted value.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\""),
        None => value.to_owned(),
    }
}

fn percent_decode(text: &str) -> Option<String> {
    String::from_utf8(tessera_proto::percent::decode(text)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn envoys_hash_names_the_certificate() {
        let header = format!(
            "By=spiffe://example.org/ns/invoices/sa/invoices;Hash={HASH};URI=spiffe://example.org/ns/payments/sa/billing"
        );
        assert_eq!(
            CallerCertificate::from_forwarded_header(&header),
            Some(CallerCertificate::from_der(b"abc"))
        );
    }

    #[test]
    fn the_last_element_is_the_nearest_proxys() {
        let other = "0".repeat(64);
        let header = format!("Hash={other};By=\"a,b\",Hash={HASH}");
        assert_eq!(
            CallerCertificate::from_forwarded_header(&header),
            Some(CallerCertificate::from_der(b"abc"))
        );
    }

    #[test]
    fn a_url_encoded_pem_names_the_certificate_when_there_is_no_hash() {
        // Any DER does for the thumbprint; PEM only wraps it.
        let pem = "-----BEGIN CERTIFICATE-----\nYWJj\n-----END CERTIFICATE-----\n";
        let encoded: String = pem
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let header = format!("By=x;Cert=\"{encoded}\";Subject=\"CN=billing\"");
        assert_eq!(
            CallerCertificate::from_forwarded_header(&header),
            Some(CallerCertificate::from_der(b"abc"))
        );
    }

    #[test]
    fn a_header_without_a_usable_certificate_names_none() {
        for header in ["", "By=x;URI=spiffe://a/b", "Hash=zz", "Cert=%ZZ"] {
            assert_eq!(CallerCertificate::from_forwarded_header(header), None, "{header:?}");
        }
    }
}

//! A trusted issuer's key set (a JWKS, or a SPIFFE bundle, which is one):
//! which of its keys can verify a token, and with which one algorithm.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm as JwkAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// Largest key set read, from a file or a URL: Kubernetes publishes two or
/// three keys, a SPIFFE bundle a handful with certificates.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// One public key of a trusted issuer, ready to verify.
pub struct VerifyingKey {
    /// Its `kid`, which tokens name in their header.
    pub kid: Option<String>,
    /// The one algorithm it verifies: the JWK's `alg`, or the only
    /// algorithm its key type and curve allow (RS256 for an RSA key that
    /// names none). Never the token header's.
    pub alg: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

/// Reads the keys of a JWKS that can verify JWTs. Keys for other uses
/// (`enc`, a SPIFFE bundle's `x509-svid`), symmetric keys, private keys and
/// keys of unknown types are skipped, not fatal: an issuer may publish keys
/// Tessera has no use for.
///
/// # Errors
/// When the text is not a JWKS or holds no usable key.
pub fn parse_jwks(text: &str) -> Result<Vec<VerifyingKey>, String> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let set: KeySet =
        serde_json::from_str(text).map_err(|e| format!("not a JWKS (a JSON object with a \"keys\" array): {e}"))?;
    let total = set.keys.len();
    let keys: Vec<VerifyingKey> = set.keys.into_iter().filter_map(usable).collect();
    if keys.is_empty() {
        return Err(format!(
            "none of the {total} keys can verify tokens (asymmetric public signing keys: RSA, EC P-256/P-384, Ed25519)"
        ));
    }
    Ok(keys)
}

fn usable(value: serde_json::Value) -> Option<VerifyingKey> {
    let is_private = ["d", "p", "q"].iter().any(|member| value.get(member).is_some());
    if is_private {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let signs = match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => true,
        Some(PublicKeyUse::Other(other)) => other == "jwt-svid",
        Some(PublicKeyUse::Encryption) => false,
    };
    if !signs {
        return None;
    }
    let alg = algorithm(&jwk)?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    (key.family() == alg.family()).then(|| VerifyingKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// The one algorithm a key verifies.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(named) = jwk.common.key_algorithm {
        return match named {
            JwkAlgorithm::RS256 => Some(Algorithm::RS256),
            JwkAlgorithm::RS384 => Some(Algorithm::RS384),
            JwkAlgorithm::RS512 => Some(Algorithm::RS512),
            JwkAlgorithm::PS256 => Some(Algorithm::PS256),
            JwkAlgorithm::PS384 => Some(Algorithm::PS384),
            JwkAlgorithm::PS512 => Some(Algorithm::PS512),
            JwkAlgorithm::ES256 => Some(Algorithm::ES256),
            JwkAlgorithm::ES384 => Some(Algorithm::ES384),
            JwkAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            // Symmetric (HS*) and encryption algorithms verify nothing here.
            _ => None,
        };
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => (okp.curve == EllipticCurve::Ed25519).then_some(Algorithm::EdDSA),
        _ => None,
    }
}

/// The key a token's header names: by `kid`, or the only key when the
/// header names none.
pub fn select<'k>(keys: &'k [VerifyingKey], kid: Option<&str>) -> Option<&'k VerifyingKey> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn an_ec_key_without_alg_verifies_es256_only() {
        let keys = parse_jwks(&format!(r#"{{"keys":[{EC}]}}"#)).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, Algorithm::ES256);
        assert_eq!(keys[0].kid.as_deref(), Some("a"));
    }

    #[test]
    fn a_spiffe_bundle_keeps_its_jwt_svid_keys_and_skips_x509_svid_ones() {
        let jwt_svid = EC.replace(r#""kid":"a""#, r#""kid":"jwt","use":"jwt-svid""#);
        let x509_svid = EC.replace(r#""kid":"a""#, r#""kid":"x509","use":"x509-svid""#);
        let bundle = format!(r#"{{"spiffe_sequence":3,"spiffe_refresh_hint":300,"keys":[{jwt_svid},{x509_svid}]}}"#);
        let keys = parse_jwks(&bundle).unwrap();
        assert_eq!(keys.iter().map(|k| k.kid.as_deref()).collect::<Vec<_>>(), [Some("jwt")]);
    }

    #[test]
    fn symmetric_private_and_encryption_keys_are_skipped() {
        let oct = r#"{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}"#;
        let private = EC.replace(
            r#""kid":"a""#,
            r#""kid":"p","d":"jpsQnnGQmL-YBIffH1136cLHZ8wCWBpkL2ETGlhLJGg""#,
        );
        let enc = EC.replace(r#""kid":"a""#, r#""kid":"e","use":"enc""#);
        let error = parse_jwks(&format!(r#"{{"keys":[{oct},{private},{enc}]}}"#)).unwrap_err();
        assert!(error.contains("none of the 3 keys"), "{error}");
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_is_skipped() {
        let lying = EC.replace(r#""kid":"a""#, r#""kid":"a","alg":"RS256""#);
        assert!(parse_jwks(&format!(r#"{{"keys":[{lying}]}}"#)).is_err());
    }

    #[test]
    fn without_a_kid_only_a_single_key_is_chosen() {
        let keys = parse_jwks(&format!(r#"{{"keys":[{EC}]}}"#)).unwrap();
        assert!(select(&keys, None).is_some());
        assert!(select(&keys, Some("a")).is_some());
        assert!(select(&keys, Some("b")).is_none());
        let two = parse_jwks(&format!(r#"{{"keys":[{EC},{}]}}"#, EC.replace(r#""a""#, r#""b""#))).unwrap();
        assert!(select(&two, None).is_none());
    }

    #[test]
    fn text_that_is_no_jwks_says_what_is_expected() {
        assert!(parse_jwks("[]").unwrap_err().contains("keys"));
        assert!(
            parse_jwks(&" ".repeat(MAX_JWKS_BYTES + 1))
                .unwrap_err()
                .contains("larger")
        );
    }
}

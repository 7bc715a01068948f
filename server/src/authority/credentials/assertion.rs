//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3).
//!
//! A client signs a short-lived JWT with a private key whose public half it
//! registered (`tessera client add-key`). The assertion is accepted when: it
//! names (by `kid`, or implicitly when the client has one key) a key the
//! client registered; it verifies under *that key's* algorithm, never the one
//! its header names; `iss` = `sub` = the client id; `aud` is our issuer or
//! token endpoint; `exp` is present, not past, and at most
//! `max_assertion_lifetime_secs` ahead (an hour by default: what Okta and
//! Google accept and what authlib signs); `nbf` and `iat`, when present, are
//! not in the future; and its `jti` has never been used before. Each check
//! allows [`ASSERTION_LEEWAY_SECS`] of clock difference. Replays are caught in
//! the store, so they are caught across restarts and replicas; when the store
//! cannot say, the assertion is refused (fail closed).

use crate::request_id::RequestId;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::audit;
use crate::authority::{AuthError, Authority, Challenge};
use crate::keys::KeyAlgorithm;
use crate::store::{ClientKeyRecord, ClientRecord};
pub use tessera_proto::limits::MAX_ASSERTION_LEN;
/// Clock difference tolerated between the client and Tessera.
pub const ASSERTION_LEEWAY_SECS: i64 = 30;
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// Only `iss` and `sub`, read before verification to find the client's keys.
#[derive(Debug, Deserialize)]
struct Subject {
    iss: Option<String>,
    sub: Option<String>,
}

/// The claims an assertion must carry. Time claims are integers; another
/// JSON type fails deserialisation (docs/THREATS.md, row C-10).
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    jti: String,
}

/// Why an assertion failed, for the audit log only: the caller always gets
/// the same `invalid_client`.
fn refuse(reason: &'static str) -> AuthError {
    tracing::warn!(target: "tessera::audit", event = audit::CLIENT_ASSERTION_REFUSED, request_id = %RequestId::current(), reason);
    AuthError::InvalidClient {
        challenge: Challenge::None,
    }
}

/// Parses a registered key and checks that it can verify `alg`.
///
/// # Errors
/// When the JWK does not parse, is private or symmetric, or does not fit the algorithm.
pub fn decoding_key(key: &ClientKeyRecord) -> Result<(DecodingKey, KeyAlgorithm), String> {
    let alg = KeyAlgorithm::parse(&key.alg)?;
    let jwk: Jwk = serde_json::from_str(&key.jwk).map_err(|e| format!("not a JWK: {e}"))?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable JWK: {e}"))?;
    let family_fits = decoding.family() == alg.jwt_algorithm().family();
    if !family_fits {
        return Err(format!(
            "a {:?} key cannot verify {}",
            decoding.family(),
            alg.jws_name()
        ));
    }
    Ok((decoding, alg))
}

impl Authority {
    /// Authenticates a client by a JWT assertion: its own (`private_key_jwt`,
    /// `iss` = `sub` = the client) or its platform's identity token (a
    /// trusted issuer's `iss`, or a SPIFFE JWT-SVID; see `federated`).
    /// `client_id`, when the request also sent one, must name the same client.
    pub(in crate::authority) async fn authenticate_assertion(
        &self,
        client_id: Option<&str>,
        assertion: &str,
        kind: super::AssertionType,
    ) -> Result<std::sync::Arc<ClientRecord>, AuthError> {
        if assertion.len() > MAX_ASSERTION_LEN {
            return Err(AuthError::invalid_request(format!(
                "client_assertion is longer than {MAX_ASSERTION_LEN} bytes"
            )));
        }
        // A platform token already verified: no parsing, no signature.
        // (An own assertion is never remembered: each is single use, and
        // without trusted issuers there is nothing to look up.)
        let digest = self
            .replica
            .trusted
            .any()
            .then(|| crate::authority::replica::token_digest(assertion));
        if let Some(digest) = &digest
            && let Some(outcome) = self.authenticate_known_platform_token(client_id, digest, kind).await
        {
            return outcome;
        }
        let header = decode_header(assertion).map_err(|_| refuse("malformed"))?;
        let subject: Subject =
            jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| refuse("malformed claims"))?;
        let is_own = kind == super::AssertionType::JwtBearer && subject.iss.is_some() && subject.iss == subject.sub;
        if !is_own {
            let unverified = (subject.iss, subject.sub);
            let digest = digest.unwrap_or_else(|| crate::authority::replica::token_digest(assertion));
            return self
                .authenticate_platform_token(client_id, assertion, digest, &header, unverified, kind)
                .await;
        }
        let (Some(iss), Some(sub)) = (subject.iss, subject.sub) else {
            return Err(refuse("iss or sub missing"));
        };
        if iss != sub || client_id.is_some_and(|id| id != sub) {
            return Err(refuse("iss, sub and client_id disagree"));
        }
        let client = match self.client(&sub).await? {
            Some(client) if !client.disabled => client,
            _ => return Err(refuse("unknown or disabled client")),
        };
        let registered = match header.kid.as_deref() {
            Some(kid) => client.keys.iter().find(|k| k.kid == kid),
            None if client.keys.len() == 1 => client.keys.first(),
            None => None,
        }
        .ok_or_else(|| refuse("no registered key matches"))?;
        let (key, alg) = decoding_key(registered).map_err(|_| refuse("registered key unusable"))?;
        if header.alg != alg.jwt_algorithm() {
            return Err(refuse("algorithm differs from the registered key's"));
        }
        let mut validation = Validation::new(alg.jwt_algorithm());
        validation.set_issuer(&[sub.as_str()]);
        validation.set_audience(&self.assertion_audiences());
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // Times are checked below, against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = decode::<AssertionClaims>(assertion, &key, &validation)
            .map_err(|_| refuse("signature or claims"))?
            .claims;
        if claims.sub != sub {
            return Err(refuse("sub changed"));
        }
        let now = self.clock.now();
        let leeway = ASSERTION_LEEWAY_SECS;
        if claims.exp + leeway <= now {
            return Err(refuse("expired"));
        }
        if claims.exp - now > self.config.max_assertion_lifetime_secs + leeway {
            return Err(refuse("lifetime too long"));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + leeway) || claims.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(refuse("not yet valid"));
        }
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(refuse("jti missing or too long"));
        }
        // Control characters (NUL above all) are no use in an id, and not
        // every store can hold them.
        if claims.jti.chars().any(char::is_control) {
            return Err(refuse("jti contains control characters"));
        }
        // Single use, across replicas and restarts; fail closed when unsure.
        let first_use = self
            .store
            .remember_assertion(&client.client_id, &claims.jti, claims.exp + leeway)
            .await
            .map_err(|e| self.store_unavailable(e))?;
        if !first_use {
            return Err(refuse("replayed jti"));
        }
        Ok(client)
    }

    /// The audiences that name Tessera in an assertion: its issuer and its
    /// token endpoint URL (RFC 7523 section 3, item 3).
    pub(in crate::authority) fn assertion_audiences(&self) -> Vec<String> {
        let issuer = self.config.issuer.trim_end_matches('/');
        vec![self.config.issuer.clone(), format!("{issuer}/oauth2/token")]
    }
}

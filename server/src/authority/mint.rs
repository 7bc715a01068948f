//! Minting: the claims of a fresh access token (RFC 9068), signed with the
//! key that signs now.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_proto::claims::AccessTokenClaims;
use tessera_proto::confirmation::Confirmation;

use super::request::{AccessToken, IssuedToken};
use super::secret::random_bytes;
use super::{AuthError, Authority};

/// What a token grants, decided by the policy before minting.
pub(super) struct Grant {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    /// Seconds the token lives.
    pub ttl: u32,
    /// The certificate the token is bound to (RFC 8705 section 3), if any.
    pub cnf: Option<Confirmation>,
}

impl Authority {
    /// Signs a token for `grant`, valid from now for its lifetime, with a
    /// fresh 128-bit `jti`.
    pub(super) fn mint(&self, grant: Grant) -> Result<IssuedToken, AuthError> {
        let now = self.clock.now();
        let jti = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
        let scope = grant.scopes.join(" ");
        let claims = AccessTokenClaims {
            iss: self.config.issuer.clone(),
            sub: grant.client_id.clone(),
            client_id: grant.client_id.clone(),
            aud: grant.audiences,
            scope: (!scope.is_empty()).then_some(scope),
            exp: now + i64::from(grant.ttl),
            iat: now,
            nbf: now,
            jti,
            cnf: grant.cnf,
        };
        let ring = self.replica.key_ring();
        let signer = ring.signer(now);
        let signed = signer.sign_jwt(&claims).map_err(|e| {
            if signer.is_in_hsm() {
                // An HSM out of reach is an outage to wait out, not a bug.
                tracing::warn!(error = %e, "the HSM did not sign");
                AuthError::TemporarilyUnavailable("the signing key's HSM did not answer; retry shortly".into())
            } else {
                AuthError::Internal(e)
            }
        })?;
        Ok(IssuedToken {
            client_id: grant.client_id,
            access_token: AccessToken::new(signed),
            expires_in: grant.ttl,
            scopes: grant.scopes,
            audiences: claims.aud,
            jti: claims.jti,
            certificate_bound: claims.cnf.is_some(),
        })
    }
}

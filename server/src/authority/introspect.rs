//! Introspection (RFC 7662) and revocation (RFC 7009): whether a token is
//! active, and making it inactive.
//!
//! A token is active when, and only when: it is a compact JWS of at most
//! [`MAX_TOKEN_LEN`] bytes; its header says `typ: at+jwt` and names the `kid`
//! of a key we publish now; it verifies with that key under *that key's*
//! algorithm (never the one the header names); its issuer is ours; `nbf <= now
//! < exp`; its `jti` is not revoked; and its client still exists, enabled.
//! Anything else is inactive, except a failure inside Tessera, which is an
//! error (`temporarily_unavailable`), never a false "inactive".

use jsonwebtoken::{Validation, decode, decode_header};
use tessera_proto::claims::{AccessTokenClaims, REQUIRED_CLAIMS};
use tessera_proto::confirmation::Confirmation;
use tracing::{info, warn};

use super::credentials::{self, Credential};
use super::request::PresentedCredentials;
use super::{AuthError, Authority, Challenge};
use crate::audit;
use crate::clock::UnixTime;
use crate::request_id::RequestId;
use crate::store::RevokedToken;

pub use tessera_proto::limits::MAX_TOKEN_LEN;
pub use tessera_proto::oauth::{INTROSPECT_SCOPE, REVOKE_SCOPE};

/// Clock difference tolerated on `nbf` and `iat` between replicas.
const NBF_LEEWAY_SECS: i64 = 5;

/// The claims of an active token, as introspection reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// `client_id`.
    pub client_id: String,
    /// `sub` (the client id too, for client-credentials tokens).
    pub sub: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `iss`.
    pub iss: String,
    /// `exp`.
    pub exp: UnixTime,
    /// `iat`.
    pub iat: UnixTime,
    /// `nbf`.
    pub nbf: UnixTime,
    /// `jti`.
    pub jti: String,
    /// `cnf`: the certificate the token is bound to, if any (RFC 8705 section 3.2).
    pub cnf: Option<Confirmation>,
}

impl From<AccessTokenClaims> for ActiveToken {
    fn from(claims: AccessTokenClaims) -> Self {
        Self {
            scopes: claims.scopes(),
            audiences: claims.aud,
            client_id: claims.client_id,
            sub: claims.sub,
            iss: claims.iss,
            exp: claims.exp,
            iat: claims.iat,
            nbf: claims.nbf,
            jti: claims.jti,
            cnf: claims.cnf,
        }
    }
}

/// Who is calling introspection or revocation.
struct Caller {
    client_id: String,
    scopes: Vec<String>,
}

impl Authority {
    /// Answers an introspection request (RFC 7662 §2): `Ok(None)` for an
    /// inactive token.
    ///
    /// # Errors
    /// `invalid_client` when the caller does not authenticate,
    /// `unauthorized_client` when it lacks [`INTROSPECT_SCOPE`],
    /// `temporarily_unavailable` when Tessera cannot tell.
    pub async fn introspect(
        &self,
        caller: PresentedCredentials,
        token: &str,
    ) -> Result<Option<ActiveToken>, AuthError> {
        let caller = self.authenticate_caller(caller).await?;
        if !caller.scopes.iter().any(|s| s == INTROSPECT_SCOPE) {
            warn!(target: "tessera::audit", event = audit::INTROSPECTION_REFUSED, request_id = %RequestId::current(), client_id = %caller.client_id);
            return Err(AuthError::UnauthorizedClient(
                format!("this client may not introspect tokens; register it with --scope {INTROSPECT_SCOPE}").into(),
            ));
        }
        self.active_token(token).await
    }

    /// Revokes a token (RFC 7009 §2). A token that is not active already is
    /// not an error: the answer is the same, so it reveals nothing.
    ///
    /// # Errors
    /// `invalid_client` when the caller does not authenticate,
    /// `unauthorized_client` when the token is another client's and the caller
    /// lacks [`REVOKE_SCOPE`], `temporarily_unavailable` when the revocation
    /// could not be made durable (it is then not in force).
    pub async fn revoke(&self, caller: PresentedCredentials, token: &str) -> Result<(), AuthError> {
        let caller = self.authenticate_caller(caller).await?;
        self.check_store_fresh()?;
        // Any unexpired token Tessera signed is recorded, whatever its
        // client's state now: a token revoked while its client is disabled
        // must stay revoked when the client is enabled again.
        let Some(active) = self.verify_signed(token) else {
            return Ok(());
        };
        if self.replica.is_denied(&active.jti) {
            return Ok(());
        }
        if active.client_id != caller.client_id && !caller.scopes.iter().any(|s| s == REVOKE_SCOPE) {
            warn!(target: "tessera::audit", event = audit::REVOCATION_REFUSED, request_id = %RequestId::current(), client_id = %caller.client_id, jti = %active.jti);
            return Err(AuthError::UnauthorizedClient(
                "a client may revoke only its own tokens".into(),
            ));
        }
        let revoked = RevokedToken {
            jti: active.jti.clone(),
            client_id: active.client_id.clone(),
            expires_at: active.exp,
            revoked_at: self.clock.now(),
        };
        // Durable first: the answer acknowledges the revocation only after this.
        self.store
            .revoke_token(revoked)
            .await
            .map_err(|e| self.store_unavailable(e))?;
        self.replica.deny(active.jti.clone(), active.exp);
        info!(target: "tessera::audit", event = audit::TOKEN_REVOKED, request_id = %RequestId::current(), client_id = %caller.client_id, jti = %active.jti, owner = %active.client_id);
        Ok(())
    }

    /// The caller of introspection or revocation: client credentials, or a
    /// bearer token whose scopes then count.
    async fn authenticate_caller(&self, presented: PresentedCredentials) -> Result<Caller, AuthError> {
        let source = presented.source;
        let certificate = presented.client_certificate.clone();
        match credentials::resolve(presented, true)? {
            credential
            @ (Credential::Secret { .. } | Credential::Assertion { .. } | Credential::Certificate { .. }) => {
                let client = self.authenticate(credential, source).await?;
                Ok(Caller {
                    client_id: client.client_id.clone(),
                    scopes: client.scopes.clone(),
                })
            }
            // A token stands for its client here only if it was issued for
            // Tessera (its `aud` names our issuer): a token a client sent to
            // some resource server must not let that server act as the client.
            // A token bound to a certificate stands for its client only on a
            // connection with that certificate (RFC 8705 section 3).
            Credential::Bearer(token) => match self.active_token(token.expose()).await? {
                Some(active)
                    if active
                        .cnf
                        .as_ref()
                        .is_some_and(|cnf| !cnf.is_bound_to(certificate.as_ref().map(|c| c.thumbprint()))) =>
                {
                    warn!(target: "tessera::audit", event = audit::BEARER_CALLER_REFUSED, request_id = %RequestId::current(), client_id = %active.client_id, reason = "the token is bound to another certificate");
                    Err(AuthError::InvalidClient {
                        challenge: Challenge::Bearer,
                    })
                }
                Some(active) if active.audiences.contains(&self.config.issuer) => Ok(Caller {
                    client_id: active.client_id,
                    scopes: active.scopes,
                }),
                Some(active) => {
                    warn!(target: "tessera::audit", event = audit::BEARER_CALLER_REFUSED, request_id = %RequestId::current(), client_id = %active.client_id, reason = "audience is not this issuer");
                    Err(AuthError::InvalidClient {
                        challenge: Challenge::Bearer,
                    })
                }
                None => Err(AuthError::InvalidClient {
                    challenge: Challenge::Bearer,
                }),
            },
        }
    }

    /// The token's claims if it is active now; see the module documentation.
    ///
    /// # Errors
    /// `temporarily_unavailable` when the client cannot be looked up.
    pub async fn active_token(&self, token: &str) -> Result<Option<ActiveToken>, AuthError> {
        self.check_store_fresh()?;
        let Some(claims) = self.verify_signed(token) else {
            return Ok(None);
        };
        if self.replica.is_denied(&claims.jti) {
            return Ok(None);
        }
        // A token outlives neither its client nor the client's enablement
        // (docs/THREATS.md, row B-11), and a client deleted and registered again under the
        // same id does not inherit its predecessor's tokens.
        match self.client(&claims.client_id).await? {
            Some(client) if !client.disabled && claims.iat >= client.created_at => {}
            _ => return Ok(None),
        }
        Ok(Some(claims))
    }

    /// Checks everything that needs no lookup: shape, key, signature, issuer, times.
    ///
    /// A token that verified once is remembered by the SHA-256 of its bytes,
    /// so introspecting it again costs a hash, not a signature check. Only
    /// the time checks are repeated; the deny-list and the client are checked
    /// by the caller every time, and the memory is dropped whenever signing
    /// keys change.
    fn verify_signed(&self, token: &str) -> Option<ActiveToken> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let now = self.clock.now();
        let digest = super::replica::token_digest(token);
        if let Some(known) = self.replica.verified(&digest) {
            return within_time(&known, now).then(|| known.as_ref().clone());
        }
        let verified = self.verify_signed_uncached(token, now)?;
        self.replica.remember_verified(digest, verified.clone(), now);
        Some(verified)
    }

    fn verify_signed_uncached(&self, token: &str, now: UnixTime) -> Option<ActiveToken> {
        let header = decode_header(token).ok()?;
        if !tessera_proto::oauth::is_access_token_typ(header.typ.as_deref()) {
            return None;
        }
        let ring = self.replica.key_ring();
        let key = ring.verifier(header.kid.as_deref()?, now)?;
        // The algorithm comes from our key; a header naming another (none,
        // HS256 keyed with our public key, …) fails here.
        let mut validation = Validation::new(key.algorithm().jwt_algorithm());
        validation.set_issuer(&[self.config.issuer.as_str()]);
        validation.set_required_spec_claims(&REQUIRED_CLAIMS);
        validation.validate_aud = false;
        // Time is checked below against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = decode::<AccessTokenClaims>(token, key.decoding_key(), &validation)
            .ok()?
            .claims;
        claims.check_times(now, NBF_LEEWAY_SECS).ok()?;
        Some(claims.into())
    }
}

/// The time checks of every verifier, on a token remembered as verified.
fn within_time(token: &ActiveToken, now: UnixTime) -> bool {
    tessera_proto::claims::check_times(token.exp, token.nbf, token.iat, now, NBF_LEEWAY_SECS).is_ok()
}

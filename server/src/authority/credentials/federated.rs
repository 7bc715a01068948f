//! A platform's identity token as the client's credential: a Kubernetes
//! service-account token, a SPIFFE JWT-SVID, any OIDC issuer's token
//! (RFC 7523 section 2.2; draft-ietf-oauth-spiffe-client-auth).
//!
//! The token is accepted when: its issuer is trusted (`tessera trust add`):
//! the one its `iss` names, or, for a JWT-SVID, the trust domain of its
//! `sub` (`spiffe://example.org`); it is not one of Tessera's own access
//! tokens (`typ` `at+jwt`, or our `iss`); it verifies under the algorithm of
//! the issuer's key its header names, never the algorithm the header says;
//! its `aud` names Tessera (issuer or token endpoint URL) or one of the
//! trust's extra audiences; `exp` is present and not past, `nbf` and `iat`
//! not in the future, and `exp` is at most the trust's `--max-lifetime`
//! after `iat` (or now); and its (issuer, `sub`) is bound to the client
//! (`tessera client add-federated`), the one `client_id` names when the
//! request names one. Each time check allows [`ASSERTION_LEEWAY_SECS`].
//!
//! Unlike `private_key_jwt`, there is no single-use `jti` rule: a platform
//! token is a bearer credential its workload reuses until it expires (the
//! kubelet refreshes it at 80% of its life). The audience check is what
//! keeps it from being replayed elsewhere, and the lifetime bound what
//! limits a leaked one. Every refusal is the same `invalid_client`, with
//! the reason in the audit line only; none counts toward any limit, so no
//! one can lock a workload out by presenting bad tokens in its name.

use std::sync::Arc;

use jsonwebtoken::{Header, Validation, decode};
use tessera_proto::oauth::is_access_token_typ;

use super::AssertionType;
use super::assertion::ASSERTION_LEEWAY_SECS;
use crate::audit;
use crate::authority::{AuthError, Authority, Challenge};
use crate::federation::{TokenClaims as PlatformClaims, TrustedIssuer};
use crate::request_id::RequestId;
use crate::store::ClientRecord;

/// Why a platform token failed, for the audit log only.
fn refuse(reason: &'static str, issuer: Option<&str>) -> AuthError {
    tracing::warn!(
        target: "tessera::audit",
        event = audit::FEDERATED_CREDENTIAL_REFUSED,
        request_id = %RequestId::current(),
        reason,
        issuer = issuer.map(super::truncate).as_deref().unwrap_or("")
    );
    AuthError::InvalidClient {
        challenge: Challenge::None,
    }
}

/// `spiffe://TRUST_DOMAIN` of a SPIFFE ID, if `sub` is one.
pub fn spiffe_trust_domain(sub: &str) -> Option<&str> {
    let rest = sub.strip_prefix("spiffe://")?;
    let domain_end = rest.find('/').unwrap_or(rest.len());
    let domain = &rest[..domain_end];
    let valid = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
    valid.then(|| &sub[..("spiffe://".len() + domain_end)])
}

impl Authority {
    /// The warm path: a platform token that verified before, under the
    /// trust and keys still current, skips parsing and the signature check;
    /// what can change between requests (time, the binding, the client) is
    /// checked again. `None` when the token is not known.
    pub(super) async fn authenticate_known_platform_token(
        &self,
        client_id: Option<&str>,
        digest: &[u8; 32],
        kind: AssertionType,
    ) -> Option<Result<Arc<ClientRecord>, AuthError>> {
        let (issuer, claims) = self.replica.trusted.verified(digest)?;
        Some(self.admit_platform_token(client_id, &issuer, &claims, kind).await)
    }

    /// Authenticates a client by its platform's identity token; `iss` and
    /// `sub` were read from it unverified, to find the issuer.
    pub(super) async fn authenticate_platform_token(
        &self,
        client_id: Option<&str>,
        token: &str,
        digest: [u8; 32],
        header: &Header,
        unverified: (Option<String>, Option<String>),
        kind: AssertionType,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let (iss, sub) = unverified;
        let Some(sub) = sub else {
            return Err(refuse("sub missing", iss.as_deref()));
        };
        let issuer_name = match kind {
            AssertionType::Spiffe => spiffe_trust_domain(&sub)
                .ok_or_else(|| refuse("sub is not a SPIFFE ID", iss.as_deref()))?
                .to_owned(),
            AssertionType::JwtBearer => iss.clone().ok_or_else(|| refuse("iss missing", None))?,
        };
        if is_access_token_typ(header.typ.as_deref()) || iss.as_deref() == Some(self.config.issuer.as_str()) {
            return Err(refuse(
                "an access token of this server is no client credential",
                iss.as_deref(),
            ));
        }
        let Some(issuer) = self.replica.trusted.get(&issuer_name) else {
            return Err(refuse(
                "iss is neither the client itself nor a trusted issuer",
                Some(&issuer_name),
            ));
        };
        let (claims, keys) = self.check_signature(&issuer, token, header, kind).await?;
        let admitted = self.admit_platform_token(client_id, &issuer, &claims, kind).await;
        // Remembered once its signature, issuer and audience verified,
        // whatever the checks below decide: those run on every request.
        self.replica
            .trusted
            .remember(digest, issuer, keys, claims, self.clock.now());
        admitted
    }

    /// The checks made on every request, verified or remembered: the
    /// issuer the token names for its kind, its times, and the binding of
    /// (issuer, subject) to the client.
    async fn admit_platform_token(
        &self,
        client_id: Option<&str>,
        issuer: &TrustedIssuer,
        claims: &PlatformClaims,
        kind: AssertionType,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let issuer_name = issuer.record.issuer.as_str();
        let refuse = |reason| refuse(reason, Some(issuer_name));
        let names_issuer = match kind {
            AssertionType::Spiffe => spiffe_trust_domain(&claims.sub) == Some(issuer_name),
            AssertionType::JwtBearer => claims.iss.as_deref() == Some(issuer_name),
        };
        if !names_issuer {
            return Err(refuse("the token does not name this issuer for its assertion type"));
        }
        let now = self.clock.now();
        let leeway = ASSERTION_LEEWAY_SECS;
        if claims.exp + leeway <= now {
            return Err(refuse("expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + leeway) || claims.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(refuse("not yet valid"));
        }
        let lifetime = claims.exp - claims.iat.unwrap_or(now);
        if lifetime > i64::from(issuer.record.max_lifetime_secs) + leeway {
            return Err(refuse("lifetime longer than the trust's --max-lifetime"));
        }
        let client_id = match client_id {
            Some(id) => id.to_owned(),
            None => self
                .replica
                .client_for_identity(issuer_name, &claims.sub)
                .await
                .map_err(|e| self.store_unavailable(e))?
                .ok_or_else(|| refuse("no client is bound to this subject"))?,
        };
        let client = match self.client(&client_id).await? {
            Some(client) if !client.disabled => client,
            _ => return Err(refuse("unknown or disabled client")),
        };
        let bound = client
            .federated
            .iter()
            .any(|identity| identity.issuer == issuer_name && identity.subject == claims.sub);
        if !bound {
            return Err(refuse("the subject is not bound to this client"));
        }
        Ok(client)
    }

    /// The full check: signature by the issuer's key, `iss`, `aud`.
    async fn check_signature(
        &self,
        issuer: &TrustedIssuer,
        token: &str,
        header: &Header,
        kind: AssertionType,
    ) -> Result<(PlatformClaims, crate::federation::KeySet), AuthError> {
        let name = issuer.record.issuer.as_str();
        let mut audiences = self.assertion_audiences();
        audiences.extend(issuer.record.audiences.iter().cloned());
        let (verified, keys) = self
            .replica
            .trusted
            .with_key(issuer, header.kid.as_deref(), |key| {
                if header.alg != key.alg {
                    return Err("algorithm differs from the issuer's key's");
                }
                let mut validation = Validation::new(key.alg);
                validation.set_audience(&audiences);
                if kind == AssertionType::JwtBearer {
                    validation.set_issuer(&[name]);
                    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
                } else {
                    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
                }
                // Times are checked by the caller, against the injected clock.
                validation.validate_exp = false;
                validation.validate_nbf = false;
                decode::<PlatformClaims>(token, &key.key, &validation)
                    .map(|data| data.claims)
                    .map_err(|_| "signature, issuer or audience")
            })
            .await
            .ok_or_else(|| refuse("no key of the issuer matches the token's kid", Some(name)))?;
        let claims = verified.map_err(|reason| refuse(reason, Some(name)))?;
        Ok((claims, keys))
    }
}

#[cfg(test)]
mod tests {
    use super::spiffe_trust_domain;

    #[test]
    fn a_spiffe_id_names_its_trust_domain() {
        assert_eq!(
            spiffe_trust_domain("spiffe://example.org/ns/payments/sa/billing"),
            Some("spiffe://example.org")
        );
        assert_eq!(
            spiffe_trust_domain("spiffe://example.org"),
            Some("spiffe://example.org")
        );
        assert_eq!(spiffe_trust_domain("spiffe:///ns"), None);
        assert_eq!(spiffe_trust_domain("spiffe://Example.org/x"), None);
        assert_eq!(spiffe_trust_domain("https://example.org/x"), None);
        assert_eq!(spiffe_trust_domain("system:serviceaccount:ns:sa"), None);
    }
}

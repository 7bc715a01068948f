//! Client authentication: which presented credential counts, and the kinds
//! of credential a client can prove itself with.
//!
//! A request's [`PresentedCredentials`] are resolved to exactly one
//! `Credential` (ambiguity is refused in one place, `resolve`); each
//! kind is then checked by its own module:
//!
//! | kind | module | RFC |
//! |---|---|---|
//! | client secret (`client_secret_basic`, `client_secret_post`) | `client_secret` | RFC 6749 section 2.3.1 |
//! | signed assertion (`private_key_jwt`) | [`assertion`] | RFC 7523 section 2.2 |
//! | a platform's identity token (Kubernetes, SPIFFE JWT-SVID, any OIDC issuer) | `federated` | RFC 7523 section 2.2, draft-ietf-oauth-spiffe-client-auth |
//! | the connection's TLS client certificate (`tls_client_auth`, `self_signed_tls_client_auth`) | `certificate` | RFC 8705 section 2 |
//! | bearer token (introspection and revocation callers only) | `introspect` | RFC 6750 |
//!
//! A new kind is a new variant here and a new module beside these.

pub mod assertion;
mod certificate;
pub(super) mod client_secret;
mod federated;
mod memory;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::limits::{MAX_CLIENT_ID_LEN, MAX_SECRET_LEN};
use tessera_proto::oauth::{JWT_BEARER_ASSERTION, JWT_SPIFFE_ASSERTION};

use super::request::{AccessToken, Authorization, PresentedCredentials};
use super::secret::ClientSecret;
use super::{AuthError, Authority, Challenge};
use crate::store::ClientRecord;
use crate::tls::PeerCertificate;

pub(super) use client_secret::SecretVerifier;
pub use federated::spiffe_trust_domain;

/// The least time an `invalid_client` answer takes, from the start of
/// authentication. Longer than any refusal's own work (a store lookup,
/// PostgreSQL's included), so unknown, disabled and wrong-secret answers all
/// take the floor plus the timer's tick; a sleep, so it costs no CPU.
pub const REFUSAL_FLOOR: Duration = Duration::from_millis(5);

/// Which client authenticated, and how, once ambiguity is ruled out.
pub(super) enum Credential {
    /// `client_secret_basic` or `client_secret_post`.
    Secret {
        client_id: String,
        secret: ClientSecret,
        challenge: Challenge,
    },
    /// Only where a token may stand for its client (introspection, revocation).
    Bearer(AccessToken),
    /// A JWT: `private_key_jwt`, or a platform's identity token;
    /// `client_id` is the one the request named, if any.
    Assertion {
        client_id: Option<String>,
        assertion: String,
        kind: AssertionType,
    },
    /// `tls_client_auth` or `self_signed_tls_client_auth`: `client_id` and
    /// nothing else, on a connection that presented a certificate.
    Certificate {
        client_id: String,
        certificate: PeerCertificate,
    },
}

/// The `client_assertion_type` a request named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AssertionType {
    /// RFC 7523: the client's own signed JWT (`iss` = `sub` = the client),
    /// or a trusted issuer's token (`iss` = that issuer).
    JwtBearer,
    /// A SPIFFE JWT-SVID, whose trust domain is read from its `sub`.
    Spiffe,
}

impl Authority {
    /// Checks the credential and returns the client.
    ///
    /// No correct credential is refused because of anyone else's failures:
    /// a wrong secret is turned away by its check value in about a
    /// microsecond ([`client_secret`] says why that is safe), and a bad
    /// assertion by its signature, so failures need no lockout to stay cheap.
    ///
    /// A refusal is answered no sooner than [`REFUSAL_FLOOR`] after the
    /// request began: without argon2 on the failure path, what remains to
    /// tell cases apart is microseconds (an unknown id costs a store lookup,
    /// a known one does not), and a floor hides them all at no CPU cost.
    pub(super) async fn authenticate(
        &self,
        credential: Credential,
        source: Option<IpAddr>,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let started = tokio::time::Instant::now();
        let outcome = match credential {
            Credential::Secret {
                client_id,
                secret,
                challenge,
            } => self.authenticate_secret(client_id, secret, challenge, source).await,
            Credential::Assertion {
                client_id,
                assertion,
                kind,
            } => {
                self.authenticate_assertion(client_id.as_deref(), &assertion, kind)
                    .await
            }
            Credential::Certificate { client_id, certificate } => {
                self.authenticate_certificate(&client_id, &certificate).await
            }
            Credential::Bearer(_) => Err(AuthError::InvalidClient {
                challenge: Challenge::Bearer,
            }),
        };
        if matches!(outcome, Err(AuthError::InvalidClient { .. })) {
            tokio::time::sleep_until(started + REFUSAL_FLOOR).await;
        }
        outcome
    }
}

/// Decides which presented credential counts, refusing ambiguity
/// (RFC 6749 section 2.3: a client MUST NOT use more than one method per
/// request). `allow_bearer`: whether a bearer token may stand for its client.
pub(super) fn resolve(presented: PresentedCredentials, allow_bearer: bool) -> Result<Credential, AuthError> {
    let PresentedCredentials {
        authorization,
        client_id,
        client_secret,
        client_assertion_type,
        client_assertion,
        client_certificate,
        source: _,
    } = presented;
    let uses_assertion = client_assertion_type.is_some() || client_assertion.is_some();
    let methods = [authorization.is_some(), client_secret.is_some(), uses_assertion]
        .iter()
        .filter(|m| **m)
        .count();
    if methods > 1 {
        return Err(AuthError::invalid_request(
            "the request uses more than one client authentication method; use exactly one (RFC 6749 section 2.3)",
        ));
    }
    if let Some(id) = &client_id {
        check_client_id(id)?;
    }
    if let Some(secret) = &client_secret {
        check_secret(secret)?;
    }
    if let Some(authorization) = authorization {
        return from_authorization(authorization, client_id, allow_bearer);
    }
    if let Some(secret) = client_secret {
        let Some(client_id) = client_id else {
            return Err(AuthError::invalid_request("client_secret was sent without client_id"));
        };
        return Ok(Credential::Secret {
            client_id,
            secret,
            challenge: Challenge::None,
        });
    }
    if uses_assertion {
        let kind = match client_assertion_type.as_deref() {
            Some(JWT_BEARER_ASSERTION) => AssertionType::JwtBearer,
            Some(JWT_SPIFFE_ASSERTION) => AssertionType::Spiffe,
            _ => {
                return Err(AuthError::invalid_request(format!(
                    "client_assertion_type must be {JWT_BEARER_ASSERTION} (a JWT the client signed, or its platform's identity token) or {JWT_SPIFFE_ASSERTION} (a SPIFFE JWT-SVID)"
                )));
            }
        };
        let Some(assertion) = client_assertion else {
            return Err(AuthError::invalid_request(
                "client_assertion_type was sent without client_assertion",
            ));
        };
        return Ok(Credential::Assertion {
            client_id,
            assertion,
            kind,
        });
    }
    // RFC 8705 section 2: `client_id` alone, on a connection with a certificate.
    if let (Some(client_id), Some(certificate)) = (client_id, client_certificate) {
        return Ok(Credential::Certificate { client_id, certificate });
    }
    // No credential at all: the client did not authenticate (RFC 6749 section 5.2).
    Err(AuthError::InvalidClient {
        challenge: Challenge::None,
    })
}

/// The credential an `Authorization` header carries; `body_id` is the
/// `client_id` the body named, if any.
fn from_authorization(
    authorization: Authorization,
    body_id: Option<String>,
    allow_bearer: bool,
) -> Result<Credential, AuthError> {
    match authorization {
        Authorization::Basic { client_id, secret } => {
            check_client_id(&client_id)?;
            check_secret(&secret)?;
            if body_id.is_some_and(|body_id| body_id != client_id) {
                return Err(AuthError::invalid_request(
                    "client_id in the body does not match the client id of the Authorization header",
                ));
            }
            Ok(Credential::Secret {
                client_id,
                secret,
                challenge: Challenge::Basic,
            })
        }
        Authorization::Bearer(token) if allow_bearer => {
            if body_id.is_some() {
                return Err(AuthError::invalid_request(
                    "client_id cannot accompany a Bearer token; the token names its client",
                ));
            }
            Ok(Credential::Bearer(token))
        }
        // A bearer token does not authenticate a client at the token endpoint.
        Authorization::Bearer(_) => Err(AuthError::InvalidClient {
            challenge: Challenge::Basic,
        }),
    }
}

fn check_client_id(id: &str) -> Result<(), AuthError> {
    if id.len() > MAX_CLIENT_ID_LEN {
        return Err(AuthError::invalid_request(format!(
            "client_id is longer than {MAX_CLIENT_ID_LEN} bytes"
        )));
    }
    Ok(())
}

fn check_secret(secret: &ClientSecret) -> Result<(), AuthError> {
    if secret.expose().len() > MAX_SECRET_LEN {
        return Err(AuthError::invalid_request(format!(
            "client_secret is longer than {MAX_SECRET_LEN} bytes"
        )));
    }
    Ok(())
}

/// Caller-supplied text written to a log line, cut short.
fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

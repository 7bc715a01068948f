//! Who may call the admin API: a caller presenting an access token of
//! Tessera's own (RFC 6750), active, issued for the admin audience
//! (`<issuer>/admin`), with `tessera:admin` (everything) or
//! `tessera:admin:read` (reads). The admin API is a resource server of
//! Tessera itself.
//!
//! The decision is made before anything is looked up, so a caller without
//! the rights learns nothing: the answer to "delete client X" is the same
//! whether X exists or not.

use tessera_proto::admin::{ADMIN_READ_SCOPE, ADMIN_SCOPE, admin_audience};
use tracing::warn;

use super::AdminError;
use crate::audit;
use crate::authority::{AuthError, Authority, Authorization};
use crate::request_id::RequestId;
use crate::tls::PeerCertificate;

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Get and List: `tessera:admin:read` or `tessera:admin`.
    Read,
    /// Everything else: `tessera:admin`.
    Write,
}

/// The admin client behind an authorised call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    /// Its client id, named as the actor of every change it makes.
    pub client_id: String,
}

/// Why an admin call was not carried out: the one error of the admin API,
/// mapped once to HTTP and gRPC by [`AdminRefusal::encoding`].
#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    /// No usable token: none, not Bearer, inactive, for another audience, or
    /// bound to another certificate (RFC 6750 `invalid_token`).
    #[error("{0}")]
    Unauthenticated(String),
    /// An active admin-audience token without the scope the call needs
    /// (RFC 6750 `insufficient_scope`).
    #[error("this call needs the scope {needed}")]
    InsufficientScope {
        /// The scope that would do.
        needed: &'static str,
    },
    /// Tessera cannot tell whether the token is active now.
    #[error("{0}")]
    Unavailable(String),
    /// Authorised, and refused by the operation itself.
    #[error(transparent)]
    Failed(#[from] AdminError),
}

/// How a refusal is sent: its error code, HTTP status and gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// The `error` of the JSON answer and the `reason` of gRPC's ErrorInfo.
    pub code: &'static str,
    /// The HTTP status.
    pub http: u16,
    /// The gRPC status code.
    pub grpc: tonic::Code,
}

const fn encoding(code: &'static str, http: u16, grpc: tonic::Code) -> Encoding {
    Encoding { code, http, grpc }
}

impl AdminRefusal {
    /// The one table of the admin API's errors.
    pub fn encoding(&self) -> Encoding {
        use tonic::Code;
        match self {
            Self::Unauthenticated(_) => encoding("invalid_token", 401, Code::Unauthenticated),
            Self::InsufficientScope { .. } => encoding("insufficient_scope", 403, Code::PermissionDenied),
            Self::Unavailable(_) => encoding("temporarily_unavailable", 503, Code::Unavailable),
            Self::Failed(error) => match error {
                AdminError::InvalidClientId(_)
                | AdminError::NoScope
                | AdminError::InvalidScope(_)
                | AdminError::InvalidAudience(_)
                | AdminError::ZeroTokenLifetime
                | AdminError::InvalidKey(_)
                | AdminError::InvalidIssuer(_)
                | AdminError::OwnIssuer(_)
                | AdminError::InvalidJwks(_)
                | AdminError::InvalidSubject(_)
                | AdminError::InvalidCertificate(_)
                | AdminError::EmptyUpdate
                | AdminError::InvalidDuration(_)
                | AdminError::InvalidRequest(_) => encoding("invalid_request", 400, Code::InvalidArgument),
                AdminError::ClientExists(_)
                | AdminError::DuplicateKeyId { .. }
                | AdminError::IssuerTrusted(_)
                | AdminError::IdentityTaken { .. }
                | AdminError::CertificateRegistered { .. } => encoding("already_exists", 409, Code::AlreadyExists),
                AdminError::UnknownClient(_)
                | AdminError::UnknownClientKey { .. }
                | AdminError::UnknownSigningKey(_)
                | AdminError::UnknownIssuer(_)
                | AdminError::UnknownIdentity { .. }
                | AdminError::UnknownCertificate { .. } => encoding("not_found", 404, Code::NotFound),
                AdminError::TooManySecrets { .. } | AdminError::SigningKeyRevoked(_) | AdminError::Custody(_) => {
                    encoding("failed_precondition", 409, Code::FailedPrecondition)
                }
                AdminError::Store(crate::store::StoreError::NotEmpty(_)) => {
                    encoding("failed_precondition", 409, Code::FailedPrecondition)
                }
                AdminError::Store(_) => encoding("temporarily_unavailable", 503, Code::Unavailable),
                AdminError::Internal(_) => encoding("server_error", 500, Code::Internal),
            },
        }
    }

    /// What the caller is told: at most [`MAX_ADMIN_DESCRIPTION_LEN`]
    /// characters, control characters replaced (a request's own text may be
    /// quoted back). An internal failure's detail is logged here and never
    /// sent; the store's, likewise.
    pub fn description(&self) -> String {
        self.full_description()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .take(MAX_ADMIN_DESCRIPTION_LEN)
            .collect()
    }

    fn full_description(&self) -> String {
        match self {
            Self::Failed(AdminError::Internal(detail)) => {
                tracing::error!(%detail, "internal error in an admin call");
                "Tessera failed to carry out the change; see its log".into()
            }
            Self::Failed(AdminError::Store(e)) => {
                warn!(error = %e, "the store failed during an admin call");
                "Tessera cannot reach its store; retry shortly".into()
            }
            other => other.to_string(),
        }
    }
}

/// Longest admin error description sent, in characters.
pub const MAX_ADMIN_DESCRIPTION_LEN: usize = 400;

/// Decides whether the caller may make a call needing `access`.
///
/// `authorization` is the parsed `Authorization` header (or gRPC metadata),
/// `certificate` the TLS client certificate of the connection, if any, and
/// `operation` names the call in the audit line of a refusal.
///
/// # Errors
/// [`AdminRefusal::Unauthenticated`], [`AdminRefusal::InsufficientScope`] or
/// [`AdminRefusal::Unavailable`].
pub async fn authorize(
    authority: &Authority,
    authorization: Result<Option<Authorization>, AuthError>,
    certificate: Option<&PeerCertificate>,
    access: Access,
    operation: &'static str,
) -> Result<AdminCaller, AdminRefusal> {
    let refuse = |client_id: &str, reason: &'static str| {
        warn!(target: "tessera::audit", event = audit::ADMIN_CALL_REFUSED, request_id = %RequestId::current(), client_id = %client_id, operation, reason);
    };
    let token = match authorization {
        Ok(Some(Authorization::Bearer(token))) => token,
        Ok(Some(Authorization::Basic { .. })) => {
            refuse("", "basic credentials");
            return Err(AdminRefusal::Unauthenticated(
                "the admin API takes an access token (authorization: Bearer TOKEN), not client credentials: get one from the token endpoint with scope tessera:admin".into(),
            ));
        }
        Ok(None) => {
            refuse("", "no token");
            return Err(AdminRefusal::Unauthenticated(
                "send an access token with scope tessera:admin or tessera:admin:read (authorization: Bearer TOKEN)"
                    .into(),
            ));
        }
        Err(e) => {
            refuse("", "malformed authorization");
            return Err(AdminRefusal::Unauthenticated(e.description()));
        }
    };
    let active = match authority.active_token(token.expose()).await {
        Ok(Some(active)) => active,
        Ok(None) => {
            refuse("", "inactive token");
            return Err(AdminRefusal::Unauthenticated(
                "the access token is not active (expired, revoked, or not issued by this Tessera)".into(),
            ));
        }
        Err(e) => return Err(AdminRefusal::Unavailable(e.description())),
    };
    // RFC 8705 section 3: a token bound to a certificate stands for its
    // client only on a connection with that certificate.
    if active
        .cnf
        .as_ref()
        .is_some_and(|cnf| !cnf.is_bound_to(certificate.map(PeerCertificate::thumbprint)))
    {
        refuse(&active.client_id, "bound to another certificate");
        return Err(AdminRefusal::Unauthenticated(
            "the access token is bound to a client certificate this connection does not present".into(),
        ));
    }
    // The scope first: a valid token of a client that is no admin is
    // refused as such (403), whatever service it was issued for.
    let has = |scope: &str| active.scopes.iter().any(|s| s == scope);
    let allowed = match access {
        Access::Read => has(ADMIN_SCOPE) || has(ADMIN_READ_SCOPE),
        Access::Write => has(ADMIN_SCOPE),
    };
    if !allowed {
        refuse(&active.client_id, "insufficient scope");
        return Err(AdminRefusal::InsufficientScope {
            needed: match access {
                Access::Read => ADMIN_READ_SCOPE,
                Access::Write => ADMIN_SCOPE,
            },
        });
    }
    // An admin's token issued for some other service must not work here:
    // that service could replay it (RFC 8707, RFC 9068 section 4).
    let audience = admin_audience(authority.issuer());
    if !active.audiences.contains(&audience) {
        refuse(&active.client_id, "not for the admin audience");
        return Err(AdminRefusal::Unauthenticated(format!(
            "the access token is not for the admin API: its audience must include {audience}"
        )));
    }
    Ok(AdminCaller {
        client_id: active.client_id,
    })
}

/// Runs one admin call: decides whether the caller may, then makes the
/// change ([`run_as`]).
///
/// # Errors
/// The refusal of [`authorize`], or of the operation.
pub async fn call<Request, Answer, Operation, Fut>(
    authority: &Authority,
    authorization: Result<Option<Authorization>, AuthError>,
    certificate: Option<&PeerCertificate>,
    access: Access,
    operation_name: &'static str,
    request: Request,
    operation: Operation,
) -> Result<Answer, AdminRefusal>
where
    Operation: FnOnce(super::api::AdminOps, Request) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, AdminError>>,
{
    let caller = authorize(authority, authorization, certificate, access, operation_name).await?;
    run_as(authority, &caller, access, request, operation).await
}

/// Makes an authorised call, with the caller named as the actor of its
/// audit lines. After a change this replica reads the store again at once,
/// so that the caller's next request here (a token for the client just
/// created) sees it; other replicas follow on their next poll or
/// notification.
///
/// # Errors
/// The refusal of the operation.
pub async fn run_as<Request, Answer, Operation, Fut>(
    authority: &Authority,
    caller: &AdminCaller,
    access: Access,
    request: Request,
    operation: Operation,
) -> Result<Answer, AdminRefusal>
where
    Operation: FnOnce(super::api::AdminOps, Request) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, AdminError>>,
{
    let ops = authority.admin_ops();
    let answer = audit::as_actor(&caller.client_id, operation(ops, request)).await;
    if access == Access::Write
        && answer.is_ok()
        && let Err(e) = authority.sync_with_store().await
    {
        warn!(error = %e, "cannot read the store again after an admin change; the next poll will");
    }
    Ok(answer?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_is_unavailable_and_an_internal_one_says_nothing_of_itself() {
        let store = AdminRefusal::Failed(AdminError::Store(crate::store::StoreError::Unavailable(
            "postgres://admin:hunter2@db".into(),
        )));
        assert_eq!(store.encoding().http, 503);
        assert!(!store.description().contains("hunter2"));
        let internal = AdminRefusal::Failed(AdminError::Internal("stack detail".into()));
        assert_eq!(internal.encoding().http, 500);
        assert!(!internal.description().contains("stack detail"));
    }

    #[test]
    fn a_missing_client_is_404_and_a_taken_id_409() {
        assert_eq!(
            AdminRefusal::Failed(AdminError::UnknownClient("x".into()))
                .encoding()
                .http,
            404
        );
        assert_eq!(
            AdminRefusal::Failed(AdminError::ClientExists("x".into()))
                .encoding()
                .http,
            409
        );
        assert_eq!(
            AdminRefusal::InsufficientScope { needed: ADMIN_SCOPE }.encoding().grpc,
            tonic::Code::PermissionDenied
        );
    }
}

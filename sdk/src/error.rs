//! What can go wrong in a call to Tessera.

use std::time::Duration;

use tessera_proto::oauth::ERROR_DOMAIN;
use tonic_types::StatusExt;

/// Why a call to Tessera failed.
///
/// ```no_run
/// # async fn example(client: tessera_sdk::TokenClient) {
/// use tessera_sdk::{Error, TokenRequest};
/// match client.issue_token(&TokenRequest::new().scope("invoices:write")).await {
///     Ok(token) => println!("granted {:?}", token.scopes()),
///     // Tessera answered: not worth retrying as is.
///     Err(Error::Rejected { oauth_error, description, .. }) => eprintln!("{oauth_error}: {description}"),
///     // No answer: retrying later may work.
///     Err(e) => eprintln!("Tessera unreachable: {e}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint URL is not usable. Nothing was sent.
    #[error("invalid Tessera endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The builder lacks a required setting. Nothing was sent.
    #[error("incomplete client configuration: {0}")]
    Config(&'static str),
    /// Tessera received the request and refused it with an OAuth 2.0 error.
    #[error("Tessera refused the request: {oauth_error}: {description}")]
    Rejected {
        /// The gRPC status code.
        code: tonic::Code,
        /// The OAuth 2.0 error code, e.g. `invalid_client`, `invalid_scope`.
        oauth_error: String,
        /// The server's description of what was wrong.
        description: String,
        /// Seconds the server asked the client to wait before retrying, if any.
        retry_after: Option<Duration>,
    },
    /// The call failed without an answer from Tessera (connection refused,
    /// timeout, proxy error). The request may or may not have reached it.
    #[error("call to Tessera failed: {0}")]
    Transport(tonic::Status),
}

impl Error {
    /// The OAuth 2.0 error code, when Tessera answered with one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::Rejected { oauth_error, .. } => Some(oauth_error),
            _ => None,
        }
    }

    pub(crate) fn from_status(status: tonic::Status) -> Self {
        match status.get_details_error_info() {
            Some(info) if info.domain == ERROR_DOMAIN => Self::Rejected {
                code: status.code(),
                oauth_error: info.reason,
                description: status.message().to_owned(),
                retry_after: status.get_details_retry_info().and_then(|r| r.retry_delay),
            },
            _ => Self::Transport(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tessera_error_status_becomes_rejected_with_its_oauth_code() {
        let details = tonic_types::ErrorDetails::with_error_info(
            "invalid_scope",
            ERROR_DOMAIN,
            std::collections::HashMap::<String, String>::new(),
        );
        let status = tonic::Status::with_error_details(tonic::Code::PermissionDenied, "no", details);
        let err = Error::from_status(status);
        assert_eq!(err.oauth_error(), Some("invalid_scope"));
    }

    #[test]
    fn a_status_without_tessera_details_is_a_transport_error() {
        let err = Error::from_status(tonic::Status::unavailable("connection refused"));
        assert!(matches!(err, Error::Transport(_)));
    }
}

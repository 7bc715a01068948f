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
    /// The platform token file (`federated_token_file`) could not be read.
    /// Nothing was sent; the platform may not have written it yet.
    #[error("cannot read the platform token file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
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
    /// No connection could be made (refused, no route, no such address):
    /// nothing was sent, so retrying cannot do anything twice.
    #[error("cannot connect to Tessera: {0}")]
    Unreachable(tonic::Status),
    /// The request may have been sent, but no usable answer came back
    /// (timeout, reset, a proxy's error): it may or may not have reached
    /// Tessera.
    #[error("call to Tessera failed: {0}")]
    Transport(tonic::Status),
}

/// How far a failed call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Nothing was sent: a bad endpoint or configuration, or no connection.
    NotSent,
    /// Sent, perhaps, but no usable answer came back.
    NoAnswer,
    /// Tessera answered and refused, with an OAuth error code.
    Refused,
}

impl Error {
    /// The OAuth 2.0 error code, when Tessera answered with one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::Rejected { oauth_error, .. } => Some(oauth_error),
            _ => None,
        }
    }

    /// How far the call got: never sent, sent without a usable answer, or
    /// refused by Tessera.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::InvalidEndpoint { .. } | Self::Config(_) | Self::TokenFile { .. } | Self::Unreachable(_) => {
                Delivery::NotSent
            }
            Self::Transport(_) => Delivery::NoAnswer,
            Self::Rejected { .. } => Delivery::Refused,
        }
    }

    /// The OAuth error code, when Tessera answered with one it defines.
    pub fn code(&self) -> Option<tessera_proto::oauth::ErrorCode> {
        self.oauth_error().and_then(tessera_proto::oauth::ErrorCode::parse)
    }

    pub(crate) fn from_status(status: tonic::Status) -> Self {
        match status.get_details_error_info() {
            Some(info) if info.domain == ERROR_DOMAIN => Self::Rejected {
                code: status.code(),
                oauth_error: info.reason,
                description: status.message().to_owned(),
                retry_after: status.get_details_retry_info().and_then(|r| r.retry_delay),
            },
            _ if never_connected(&status) => Self::Unreachable(status),
            _ => Self::Transport(status),
        }
    }
}

/// Whether the status comes from a connection that was never made: an
/// operating-system error of connecting somewhere in its causes.
fn never_connected(status: &tonic::Status) -> bool {
    use std::io::ErrorKind;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        cause = error.source();
    }
    false
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
    fn a_refusal_says_it_was_refused_and_its_code() {
        let details = tonic_types::ErrorDetails::with_error_info(
            "invalid_client",
            ERROR_DOMAIN,
            std::collections::HashMap::<String, String>::new(),
        );
        let err = Error::from_status(tonic::Status::with_error_details(
            tonic::Code::Unauthenticated,
            "no",
            details,
        ));
        assert_eq!(err.delivery(), Delivery::Refused);
        assert_eq!(err.code(), Some(tessera_proto::oauth::ErrorCode::InvalidClient));
    }

    #[test]
    fn a_status_without_tessera_details_is_a_transport_error() {
        let err = Error::from_status(tonic::Status::unavailable("connection refused"));
        assert!(matches!(err, Error::Transport(_)));
    }
}

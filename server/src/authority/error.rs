//! The core's one error type. Each variant is an OAuth 2.0 outcome; the faces
//! encode it (HTTP status and JSON, gRPC code and `ErrorInfo`) in exactly one
//! place, `faces::respond`.

use std::borrow::Cow;

/// Why a request to the authority did not succeed.
///
/// The `Display` text of every variant but [`AuthError::Internal`] is safe to
/// send to the caller: it names what was wrong and never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Malformed, missing, repeated or oversized parameter (RFC 6749 §5.2).
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    /// Unknown client, wrong or expired secret, disabled client, missing
    /// credentials. One answer for all, so that the answer does not tell which.
    #[error("client authentication failed")]
    InvalidClient {
        /// The client used HTTP Basic, so the answer must carry
        /// `WWW-Authenticate: Basic` (RFC 6749 §5.2).
        basic: bool,
    },
    /// The authenticated client may not use this grant.
    #[error("{0}")]
    UnauthorizedClient(Cow<'static, str>),
    /// A grant type other than `client_credentials`.
    #[error("{0}")]
    UnsupportedGrantType(Cow<'static, str>),
    /// A requested scope is malformed or not allowed for the client.
    #[error("{0}")]
    InvalidScope(Cow<'static, str>),
    /// A requested audience is malformed or not allowed (RFC 8707 §2).
    #[error("{0}")]
    InvalidTarget(Cow<'static, str>),
    /// Too many failures; try again after the given number of seconds.
    #[error("too many failed attempts; retry after {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a retry may succeed (`Retry-After`).
        retry_after_secs: u64,
    },
    /// A dependency (the store, the hashing pool) cannot answer now.
    #[error("{0}")]
    TemporarilyUnavailable(Cow<'static, str>),
    /// A bug or an unexpected failure. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl AuthError {
    /// Shorthand for [`AuthError::InvalidRequest`].
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidRequest(description.into())
    }

    /// The RFC 6749 §5.2 `error` code (or the registered extension code).
    pub fn oauth_code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            // RFC 6749 registers no code for throttling; `slow_down` (RFC 8628)
            // says the same thing and is widely understood by clients.
            Self::TooManyRequests { .. } => "slow_down",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }

    /// The `error_description` sent to the caller.
    pub fn description(&self) -> String {
        self.to_string()
    }
}

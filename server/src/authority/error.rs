//! The core's one error type. Each variant is an OAuth 2.0 outcome; the faces
//! encode it (HTTP status and JSON, gRPC code and `ErrorInfo`) in exactly one
//! place, `faces::respond`.

use std::borrow::Cow;

pub use tessera_proto::oauth::ErrorCode;

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
        /// The scheme the caller used, which the answer's `WWW-Authenticate`
        /// challenge must name (RFC 6749 §5.2, RFC 6750 §3).
        challenge: Challenge,
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

/// The `WWW-Authenticate` challenge a 401 answer carries: the scheme the
/// caller tried, so that a client library reads the error from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Challenge {
    /// The caller used no `Authorization` header: no challenge (RFC 6749 §5.2
    /// asks for one only when the client authenticated through the header).
    #[default]
    None,
    /// HTTP Basic client credentials (RFC 6749 §2.3.1).
    Basic,
    /// A bearer access token (RFC 6750 §3: `error="invalid_token"`).
    Bearer,
}

/// Longest `error_description` sent, in bytes: an error answer stays a few
/// hundred bytes whatever the request carried.
pub const MAX_DESCRIPTION_LEN: usize = 240;

/// Most characters of a client's own input shown back in a description.
const MAX_ECHO_CHARS: usize = 32;

/// Whether RFC 6749 §5.2 allows `c` in `error_description` (and `error`):
/// `%x20-21 / %x23-5B / %x5D-7E`, printable ASCII but `"` and `\`.
pub fn is_description_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

/// A piece of the client's input, fit to be shown back in a description: at
/// most 32 characters, each one outside the allowed set replaced by `?`, in
/// single quotes, with `...` when it was cut.
pub fn echo(input: &str) -> String {
    let mut shown = String::with_capacity(MAX_ECHO_CHARS + 5);
    shown.push('\'');
    for (index, c) in input.chars().enumerate() {
        if index == MAX_ECHO_CHARS {
            shown.push_str("...");
            break;
        }
        shown.push(if is_description_char(c) { c } else { '?' });
    }
    shown.push('\'');
    shown
}

/// `text` made fit for `error_description`: characters outside the allowed
/// set replaced by `?`, cut to [`MAX_DESCRIPTION_LEN`] bytes. Every
/// description passes through here, so no path can send a character that a
/// strict client rejects, whatever a message's author wrote.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if is_description_char(c) { c } else { '?' })
        .take(MAX_DESCRIPTION_LEN)
        .collect()
}

impl AuthError {
    /// Shorthand for [`AuthError::InvalidRequest`].
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidRequest(description.into())
    }

    /// The OAuth error code of this outcome (RFC 6749 section 5.2, or a
    /// registered extension code).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::InvalidClient { .. } => ErrorCode::InvalidClient,
            Self::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::InvalidScope(_) => ErrorCode::InvalidScope,
            Self::InvalidTarget(_) => ErrorCode::InvalidTarget,
            // RFC 6749 registers no code for throttling; `slow_down` (RFC 8628)
            // says the same thing and is widely understood by clients.
            Self::TooManyRequests { .. } => ErrorCode::SlowDown,
            Self::TemporarilyUnavailable(_) => ErrorCode::TemporarilyUnavailable,
            Self::Internal(_) => ErrorCode::ServerError,
        }
    }

    /// [`AuthError::code`] as sent on the wire.
    pub fn oauth_code(&self) -> &'static str {
        self.code().as_str()
    }

    /// The `error_description` sent to the caller: only characters RFC 6749
    /// §5.2 allows, at most [`MAX_DESCRIPTION_LEN`] bytes. gRPC status
    /// messages use the same text.
    pub fn description(&self) -> String {
        sanitize(&self.to_string())
    }
}

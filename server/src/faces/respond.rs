//! The one error table: each [`AuthError`] as an HTTP response and as a gRPC
//! status, side by side, so the two faces cannot drift apart.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::authority::{AuthError, Challenge};

pub use tessera_proto::oauth::ERROR_DOMAIN;

/// The outcome label of an answer in the metrics: `ok`, or the OAuth error code.
pub fn outcome<T>(result: &Result<T, AuthError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.oauth_code(),
    }
}

/// The HTTP status and gRPC code of each core error (the table in
/// docs/ARCHITECTURE.md, "Errors").
fn encodings(error: &AuthError) -> (StatusCode, Code) {
    match error {
        AuthError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
        AuthError::InvalidClient { .. } => (StatusCode::UNAUTHORIZED, Code::Unauthenticated),
        AuthError::UnauthorizedClient(_) => (StatusCode::BAD_REQUEST, Code::PermissionDenied),
        AuthError::UnsupportedGrantType(_) => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
        AuthError::InvalidScope(_) => (StatusCode::BAD_REQUEST, Code::PermissionDenied),
        AuthError::InvalidTarget(_) => (StatusCode::BAD_REQUEST, Code::PermissionDenied),
        AuthError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
        AuthError::TemporarilyUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
        AuthError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
    }
}

fn log_if_internal(error: &AuthError) {
    if let AuthError::Internal(detail) = error {
        tracing::error!(%detail, "internal error");
    }
}

/// Headers every token-endpoint answer carries (RFC 6749 §5.1): a token or an
/// error about credentials must never be cached.
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The `WWW-Authenticate` value of a 401 to a caller who used `challenge`:
/// the scheme, the realm (our issuer), and the error as auth-params (RFC
/// 7235 §2.1, RFC 6750 §3), which clients such as openid-client read the
/// OAuth error from. `None` when the caller used no `Authorization` header.
fn challenge_header(challenge: Challenge, realm: &str, description: &str) -> Option<HeaderValue> {
    let (scheme, code) = match challenge {
        Challenge::None => return None,
        Challenge::Basic => ("Basic", "invalid_client"),
        Challenge::Bearer => ("Bearer", "invalid_token"),
    };
    // A quoted-string may not hold '"' or '\' unescaped; the issuer is a URL
    // and the description is sanitised, so this only guards against surprises.
    let quotable = |text: &str| text.replace(['"', '\\'], "?");
    let value = format!(
        r#"{scheme} realm="{}", error="{code}", error_description="{}""#,
        quotable(realm),
        quotable(description)
    );
    HeaderValue::from_str(&value)
        .ok()
        .or_else(|| HeaderValue::from_str(&format!(r#"{scheme} realm="tessera", error="{code}""#)).ok())
}

/// The RFC 6749 §5.2 JSON error response. `realm` is the issuer, named in
/// the `WWW-Authenticate` challenge of a 401.
pub fn http_error(error: &AuthError, realm: &str) -> Response {
    log_if_internal(error);
    let (status, _) = encodings(error);
    let description = error.description();
    let body = serde_json::json!({
        "error": error.oauth_code(),
        "error_description": description,
    });
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    let headers = response.headers_mut();
    match error {
        AuthError::InvalidClient { challenge } => {
            if let Some(value) = challenge_header(*challenge, realm, &description) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        AuthError::TooManyRequests { retry_after_secs } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        AuthError::TemporarilyUnavailable(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// The gRPC status, with the OAuth code in `google.rpc.ErrorInfo.reason`.
pub fn grpc_status(error: &AuthError) -> tonic::Status {
    log_if_internal(error);
    let (_, code) = encodings(error);
    let mut details = ErrorDetails::with_error_info(
        error.oauth_code(),
        ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    if let AuthError::TooManyRequests { retry_after_secs } = error {
        details.set_retry_info(Some(std::time::Duration::from_secs(*retry_after_secs)));
    }
    tonic::Status::with_error_details(code, error.description(), details)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM: &str = "https://tessera.test";

    fn all_errors() -> Vec<AuthError> {
        vec![
            AuthError::invalid_request("x"),
            AuthError::InvalidClient {
                challenge: Challenge::Basic,
            },
            AuthError::UnauthorizedClient("x".into()),
            AuthError::UnsupportedGrantType("x".into()),
            AuthError::InvalidScope("x".into()),
            AuthError::InvalidTarget("x".into()),
            AuthError::TooManyRequests { retry_after_secs: 3 },
            AuthError::TemporarilyUnavailable("x".into()),
            AuthError::Internal("db password is hunter2".into()),
        ]
    }

    #[test]
    fn every_error_carries_its_oauth_code_over_grpc() {
        for error in all_errors() {
            let status = grpc_status(&error);
            let info = status.get_details_error_info().expect("ErrorInfo attached");
            assert_eq!(info.reason, error.oauth_code());
            assert_eq!(info.domain, ERROR_DOMAIN);
        }
    }

    #[test]
    fn internal_detail_is_never_sent() {
        let error = AuthError::Internal("db password is hunter2".into());
        assert!(!grpc_status(&error).message().contains("hunter2"));
        assert_eq!(error.description(), "internal error");
    }

    /// RFC 6749 §5.2 and RFC 7235 §2.1: the challenge names the realm and
    /// carries the error as auth-params, as openid-client reads it.
    #[test]
    fn a_basic_failure_challenges_with_realm_error_and_description() {
        let response = http_error(
            &AuthError::InvalidClient {
                challenge: Challenge::Basic,
            },
            REALM,
        );
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Basic realm="https://tessera.test", error="invalid_client", error_description="client authentication failed""#
        );
    }

    /// RFC 6750 §3: a bearer caller whose token is not good gets `invalid_token`.
    #[test]
    fn a_bearer_failure_challenges_with_invalid_token() {
        let response = http_error(
            &AuthError::InvalidClient {
                challenge: Challenge::Bearer,
            },
            REALM,
        );
        let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="https://tessera.test", error="invalid_token""#),
            "{challenge}"
        );
    }

    #[test]
    fn basic_failures_challenge_with_www_authenticate() {
        let response = http_error(
            &AuthError::InvalidClient {
                challenge: Challenge::Basic,
            },
            REALM,
        );
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let response = http_error(
            &AuthError::InvalidClient {
                challenge: Challenge::None,
            },
            REALM,
        );
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn error_answers_are_never_cached() {
        for error in all_errors() {
            let response = http_error(&error, REALM);
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
            assert_eq!(response.headers()[header::PRAGMA], "no-cache");
        }
    }
}

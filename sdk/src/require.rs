//! [`RequireScopes`]: a tower layer for resource servers (tonic or axum) that
//! accepts a request only with a valid bearer token holding the required
//! scopes, and hands the token's [`Claims`] to the handler as a request
//! extension.
//!
//! Refusals follow RFC 6750 §3.1: no or bad token is `401` with
//! `WWW-Authenticate: Bearer error="invalid_token"`; missing scopes are `403`
//! with `error="insufficient_scope"`. gRPC requests get the same as
//! `UNAUTHENTICATED` and `PERMISSION_DENIED`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use tower::{Layer, Service};

use crate::verifier::{Claims, Verifier, VerifyError};

/// Requires a valid token with every one of a set of scopes.
///
/// ```no_run
/// # fn example(verifier: tessera_sdk::Verifier) {
/// use tessera_sdk::{Claims, RequireScopes};
/// let app: axum::Router = axum::Router::new()
///     .route("/invoices", axum::routing::get(|axum::Extension(claims): axum::Extension<Claims>| async move {
///         format!("hello {}", claims.client_id)
///     }))
///     .layer(RequireScopes::new(verifier, ["invoices:read"]));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RequireScopes {
    verifier: Verifier,
    scopes: Arc<[String]>,
}

impl RequireScopes {
    /// A layer accepting tokens that `verifier` accepts and that hold all of `scopes`.
    pub fn new<S: Into<String>>(verifier: Verifier, scopes: impl IntoIterator<Item = S>) -> Self {
        Self {
            verifier,
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }
}

impl<S> Layer<S> for RequireScopes {
    type Service = RequireScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopesService {
            inner,
            verifier: self.verifier.clone(),
            scopes: self.scopes.clone(),
        }
    }
}

/// The service [`RequireScopes`] wraps around another.
#[derive(Clone, Debug)]
pub struct RequireScopesService<S> {
    inner: S,
    verifier: Verifier,
    scopes: Arc<[String]>,
}

enum Refusal {
    InvalidToken(&'static str),
    InsufficientScope,
    Unavailable,
}

fn refusal<B: Default>(grpc: bool, refusal: Refusal) -> http::Response<B> {
    let (status, grpc_code, challenge, message) = match refusal {
        Refusal::InvalidToken(why) => (
            StatusCode::UNAUTHORIZED,
            "16",
            Some(r#"Bearer error="invalid_token""#),
            why,
        ),
        Refusal::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "7",
            Some(r#"Bearer error="insufficient_scope""#),
            "insufficient_scope",
        ),
        Refusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "14",
            None,
            "cannot check the token now",
        ),
    };
    let mut response = http::Response::new(B::default());
    if grpc {
        // A trailers-only gRPC answer: HTTP 200 with the status in the headers.
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from_static(grpc_code));
        if let Ok(value) = HeaderValue::from_str(message) {
            response.headers_mut().insert("grpc-message", value);
        }
    } else {
        *response.status_mut() = status;
    }
    if let Some(challenge) = challenge {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}

impl<S, B, R> Service<http::Request<B>> for RequireScopesService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let scopes = self.scopes.clone();
        Box::pin(async move {
            let grpc = request
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/grpc"));
            let mut values = request.headers().get_all(AUTHORIZATION).iter();
            let token = match (values.next().and_then(|v| v.to_str().ok()), values.next()) {
                (Some(value), None) => value
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim().to_owned()),
                _ => None,
            };
            let Some(token) = token else {
                return Ok(refusal(grpc, Refusal::InvalidToken("a bearer token is required")));
            };
            let claims: Claims = match verifier.verify(&token).await {
                Ok(claims) => claims,
                Err(VerifyError::Unavailable(_)) => return Ok(refusal(grpc, Refusal::Unavailable)),
                Err(_) => return Ok(refusal(grpc, Refusal::InvalidToken("invalid_token"))),
            };
            if !claims.has_scopes(&scopes) {
                return Ok(refusal(grpc, Refusal::InsufficientScope));
            }
            request.extensions_mut().insert(claims);
            inner.call(request).await
        })
    }
}

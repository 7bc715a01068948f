//! [`RequireScopes`]: a tower layer for resource servers (tonic or axum) that
//! accepts a request only with a valid bearer token holding the required
//! scopes, and hands the token's [`Claims`] to the handler as a request
//! extension.
//!
//! Refusals follow RFC 6750 §3.1: no or bad token is `401` with
//! `WWW-Authenticate: Bearer error="invalid_token"`; missing scopes are `403`
//! with `error="insufficient_scope"`. gRPC requests get the same as
//! `UNAUTHENTICATED` and `PERMISSION_DENIED`.
//!
//! A token bound to a client certificate (RFC 8705 section 3) passes only
//! when the caller presented that certificate. By default the caller's
//! certificate is the one of the TLS connection: a [`CallerCertificate`]
//! in the request's extensions, else (with the crate feature
//! `tonic-server`) the peer certificate tonic's TLS server recorded. Behind a
//! sidecar that terminates TLS (Envoy, Istio), turn on
//! [`RequireScopes::trust_forwarded_client_cert`] to read it from the
//! `x-forwarded-client-cert` header instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use tower::{Layer, Service};

use crate::CallerCertificate;
use crate::verifier::{Claims, Verifier, VerifyError};

/// Requires a valid token with every one of a set of scopes.
///
/// With axum, `Router::layer(RequireScopes::new(…))` and an
/// `Extension<Claims>` argument; with tonic, `Server::builder().layer(…)`.
/// Around any `http` service:
///
/// ```no_run
/// # fn example(verifier: tessera_sdk::Verifier) {
/// use tessera_sdk::{Claims, RequireScopes};
/// use tower::Layer as _;
/// let invoices = tower::service_fn(|request: http::Request<String>| async move {
///     let claims = request.extensions().get::<Claims>().expect("set by RequireScopes");
///     Ok::<_, std::convert::Infallible>(http::Response::new(format!("hello {}", claims.client_id)))
/// });
/// let protected = RequireScopes::new(verifier, ["invoices:read"]).layer(invoices);
/// # let _ = protected;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RequireScopes {
    verifier: Verifier,
    scopes: Arc<[String]>,
    forwarded: bool,
}

impl RequireScopes {
    /// A layer accepting tokens that `verifier` accepts and that hold all of `scopes`.
    pub fn new<S: Into<String>>(verifier: Verifier, scopes: impl IntoIterator<Item = S>) -> Self {
        Self {
            verifier,
            scopes: scopes.into_iter().map(Into::into).collect(),
            forwarded: false,
        }
    }

    /// Takes the caller's certificate from the `x-forwarded-client-cert`
    /// header (its last element's `Hash=`, else `Cert=`), which Envoy and
    /// Istio sidecars set after terminating the caller's mutual TLS; the
    /// connection's own certificate is then ignored.
    ///
    /// Only for a service that nothing but its sidecar can reach (listening
    /// on loopback, or a pod network policy): anyone who can connect
    /// directly can write the header, and with it claim any certificate.
    pub fn trust_forwarded_client_cert(mut self) -> Self {
        self.forwarded = true;
        self
    }
}

/// The header Envoy-based proxies describe the caller's certificate in.
const FORWARDED_CLIENT_CERT: &str = "x-forwarded-client-cert";

/// Where the caller's certificate is, taken from the request (cheaply: a
/// clone of a header or of an `Arc`); read only for a bound token.
enum CallerSource {
    None,
    Known(CallerCertificate),
    Forwarded(HeaderValue),
    #[cfg(feature = "tonic-server")]
    TlsPeer(Arc<Vec<rustls_pki_types::CertificateDer<'static>>>),
}

impl CallerSource {
    /// Where the layer's configuration says to look.
    fn of<B>(request: &http::Request<B>, forwarded: bool) -> Self {
        if forwarded {
            return match request.headers().get_all(FORWARDED_CLIENT_CERT).iter().next_back() {
                Some(value) => Self::Forwarded(value.clone()),
                None => Self::None,
            };
        }
        if let Some(certificate) = request.extensions().get::<CallerCertificate>() {
            return Self::Known(certificate.clone());
        }
        #[cfg(feature = "tonic-server")]
        {
            use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
            let certs = request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(TlsConnectInfo::peer_certs);
            if let Some(certs) = certs {
                return Self::TlsPeer(certs);
            }
        }
        Self::None
    }

    /// The certificate, read from where it is.
    fn read(self) -> Option<CallerCertificate> {
        match self {
            Self::None => None,
            Self::Known(certificate) => Some(certificate),
            Self::Forwarded(value) => CallerCertificate::from_forwarded_header(value.to_str().ok()?),
            #[cfg(feature = "tonic-server")]
            Self::TlsPeer(certs) => certs.first().map(|leaf| CallerCertificate::from_der(leaf.as_ref())),
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
            forwarded: self.forwarded,
        }
    }
}

/// The service [`RequireScopes`] wraps around another.
#[derive(Clone, Debug)]
pub struct RequireScopesService<S> {
    inner: S,
    verifier: Verifier,
    scopes: Arc<[String]>,
    forwarded: bool,
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
            tonic::Code::Unauthenticated,
            Some(r#"Bearer error="invalid_token""#),
            why,
        ),
        Refusal::InsufficientScope => (
            StatusCode::FORBIDDEN,
            tonic::Code::PermissionDenied,
            Some(r#"Bearer error="insufficient_scope""#),
            "insufficient_scope",
        ),
        Refusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            tonic::Code::Unavailable,
            None,
            "cannot check the token now",
        ),
    };
    let mut response = if grpc {
        // A trailers-only gRPC answer: HTTP 200 with the status in the headers.
        tonic::Status::new(grpc_code, message).into_http()
    } else {
        http::Response::new(B::default())
    };
    if !grpc {
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
        let caller = CallerSource::of(&request, self.forwarded);
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
            let claims: Claims = match verifier.verify_bound(&token, || caller.read()).await {
                Ok(claims) => claims,
                Err(VerifyError::Unavailable(_)) => return Ok(refusal(grpc, Refusal::Unavailable)),
                Err(VerifyError::CertificateMismatch) => {
                    return Ok(refusal(
                        grpc,
                        Refusal::InvalidToken(
                            "invalid_token: the token is bound to a client certificate this call did not present",
                        ),
                    ));
                }
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

//! [`AuthLayer`]: stamps `authorization: Bearer …` from a [`TokenSource`] on
//! every outgoing request of a tonic channel (or any tower HTTP service).
//!
//! A layer, not a tonic interceptor: interceptors are synchronous, and getting
//! a token may have to wait for a refresh.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;
use http::header::AUTHORIZATION;
use tower::{Layer, Service};

use crate::Error;
use crate::TokenClient;
use crate::cache::{FetchToken, TokenSource};

/// Errors of an [`AuthService`]: the inner service's, or no token to be had.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// No token could be had for an outgoing request, so it was not sent.
#[derive(Debug, thiserror::Error)]
#[error("no access token for the outgoing request: {0}")]
pub struct NoToken(pub Error);

/// A tower layer that adds `authorization: Bearer …` from a [`TokenSource`].
///
/// ```no_run
/// use tessera_sdk::{AuthLayer, CachePolicy, TokenClient, TokenRequest};
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let tessera = TokenClient::builder("http://tessera:8080").client_secret("billing", "…").build()?;
/// let source = tessera.token_source(TokenRequest::new().audience("https://ledger"), CachePolicy::default());
/// let channel = tonic::transport::Endpoint::from_static("http://ledger:50051").connect_lazy();
/// let authenticated = tower::ServiceBuilder::new().layer(AuthLayer::new(source)).service(channel);
/// // e.g. LedgerClient::new(authenticated)
/// # let _ = authenticated;
/// # Ok(())
/// # }
/// ```
pub struct AuthLayer<F: FetchToken = TokenClient> {
    source: TokenSource<F>,
}

impl<F: FetchToken> Clone for AuthLayer<F> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
        }
    }
}

impl<F: FetchToken> std::fmt::Debug for AuthLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer").finish_non_exhaustive()
    }
}

impl<F: FetchToken> AuthLayer<F> {
    /// A layer stamping tokens from `source`.
    pub fn new(source: TokenSource<F>) -> Self {
        Self { source }
    }
}

impl<S, F: FetchToken> Layer<S> for AuthLayer<F> {
    type Service = AuthService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            source: self.source.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around another.
pub struct AuthService<S, F: FetchToken = TokenClient> {
    inner: S,
    source: TokenSource<F>,
}

impl<S: Clone, F: FetchToken> Clone for AuthService<S, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            source: self.source.clone(),
        }
    }
}

impl<S, F: FetchToken> std::fmt::Debug for AuthService<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl<S, F, B> Service<http::Request<B>> for AuthService<S, F>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    F: FetchToken,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The service polled ready is the one to call; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let source = self.source.clone();
        Box::pin(async move {
            let token = source.token().await.map_err(|e| Box::new(NoToken(e)) as BoxError)?;
            let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))?;
            // Kept out of HTTP/2 header compression tables and debug output.
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
            inner.call(request).await.map_err(Into::into)
        })
    }
}

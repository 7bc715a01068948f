//! Client for Tessera, an OAuth 2.0 client-credentials token service.
//!
//! - [`TokenClient`] asks Tessera for access tokens over gRPC
//!   (`tessera.v1.TokenService`) and fetches the keys that verify them. Errors
//!   are typed: a refusal carries the OAuth 2.0 error code the server sent.
//! - [`TokenSource`] keeps a token cached and refreshed ahead of expiry: the
//!   call to make before every outgoing request.
//! - [`AuthLayer`] stamps that token on every call of a tonic channel.
//!
//! ```no_run
//! use tessera_sdk::{TokenClient, TokenRequest};
//!
//! # async fn example() -> Result<(), tessera_sdk::Error> {
//! let client = TokenClient::builder("http://127.0.0.1:8080")
//!     .client_secret("billing", "the-secret-from-tessera-client-create")
//!     .build()?;
//! let token = client.issue_token(&TokenRequest::new().scope("invoices:read")).await?;
//! println!("valid for {:?}", token.expires_in());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod cache;
pub mod layer;
pub mod require;
pub mod verifier;

pub use cache::{CachePolicy, CachedToken, FetchToken, TokenSource};
pub use layer::{AuthLayer, AuthService};
pub use require::{RequireScopes, RequireScopesService};
pub use verifier::{Claims, Verifier, VerifierBuilder, VerifyError};

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Standard base64 with padding, for a Basic header.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_proto::pb;
use tessera_proto::pb::token_service_client::TokenServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

pub use tessera_proto;

/// Domain of the `google.rpc.ErrorInfo` Tessera attaches to its errors.
const ERROR_DOMAIN: &str = "tessera";

/// A client secret. `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// An access token. `Debug` is redacted: whoever holds a bearer token can use it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// The compact JWT, for an `authorization: Bearer` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// What to ask for. Empty scopes or audiences ask for the client's defaults.
///
/// ```
/// use tessera_sdk::TokenRequest;
/// let request = TokenRequest::new().scope("invoices:read").audience("https://invoices.internal");
/// # let _ = request;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    scopes: Vec<String>,
    audiences: Vec<String>,
}

impl TokenRequest {
    /// A request for the client's default scopes and audiences.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Adds an audience (an RFC 8707 resource).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }
}

/// A token Tessera issued, with what it grants.
#[derive(Debug, Clone)]
pub struct Token {
    access_token: AccessToken,
    expires_in: Duration,
    received_at: Instant,
    scopes: Vec<String>,
    audiences: Vec<String>,
}

impl Token {
    /// A token received now, valid for `expires_in`: for [`FetchToken`]
    /// implementations other than [`TokenClient`].
    pub fn new(access_token: impl Into<String>, expires_in: Duration) -> Self {
        Self {
            access_token: AccessToken(access_token.into()),
            expires_in,
            received_at: Instant::now(),
            scopes: Vec::new(),
            audiences: Vec::new(),
        }
    }

    /// The token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// Its lifetime as the server stated it.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// When it expires by the local monotonic clock: receipt time plus
    /// `expires_in`, which is immune to clock skew between hosts.
    pub fn expires_at(&self) -> Instant {
        self.received_at + self.expires_in
    }

    /// Granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The audiences it is valid for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }
}

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
#[derive(Debug, thiserror::Error)]
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

    fn from_status(status: tonic::Status) -> Self {
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

enum Credentials {
    Secret {
        client_id: String,
        secret: ClientSecret,
    },
    /// `private_key_jwt` (RFC 7523 §2.2): a fresh signed assertion per call.
    Assertion {
        client_id: String,
        key: AssertionKey,
        audience: String,
    },
}

/// The signing algorithm of an [`AssertionKey`]; Tessera registers each
/// client key for exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// ECDSA P-256 with SHA-256: a `-----BEGIN PRIVATE KEY-----` or `EC PRIVATE KEY` PEM.
    Es256,
    /// Ed25519: a `-----BEGIN PRIVATE KEY-----` PEM.
    EdDsa,
    /// RSA PKCS#1 v1.5 with SHA-256, 2048 bits or more.
    Rs256,
}

/// A client's private key for `private_key_jwt`, with the `kid` it was
/// registered under (`tessera client add-key ID --pem PUBLIC.pem --kid KID`).
/// `Debug` shows the `kid` and algorithm only.
#[derive(Clone)]
pub struct AssertionKey {
    key: jsonwebtoken::EncodingKey,
    algorithm: AssertionAlgorithm,
    kid: String,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl AssertionKey {
    /// Reads a PEM private key.
    ///
    /// # Errors
    /// [`Error::Config`] when the PEM is not a private key of that algorithm.
    pub fn from_pem(algorithm: AssertionAlgorithm, kid: impl Into<String>, pem: &[u8]) -> Result<Self, Error> {
        let key = match algorithm {
            AssertionAlgorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_pem(pem),
            AssertionAlgorithm::EdDsa => jsonwebtoken::EncodingKey::from_ed_pem(pem),
            AssertionAlgorithm::Rs256 => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| Error::Config("the assertion key is not a PEM private key of the given algorithm"))?;
        Ok(Self {
            key,
            algorithm,
            kid: kid.into(),
        })
    }

    fn jwt_algorithm(&self) -> jsonwebtoken::Algorithm {
        match self.algorithm {
            AssertionAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            AssertionAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            AssertionAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }

    /// A single-use assertion for `client_id`, addressed to `audience`,
    /// valid for one minute.
    fn sign(&self, client_id: &str, audience: &str) -> Result<String, Error> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            iat: u64,
            exp: u64,
            jti: String,
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Error::Config("the system clock is before 1970"))?
            .as_secs();
        let mut nonce = [0u8; 16];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Config("no randomness for the assertion id"))?;
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: audience,
            iat: now,
            exp: now + 60,
            jti: nonce.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let mut header = jsonwebtoken::Header::new(self.jwt_algorithm());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| Error::Config("signing the assertion failed"))
    }
}

/// TLS settings for a `https://` endpoint.
#[derive(Default)]
struct TlsSettings {
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

/// Builds a [`TokenClient`].
#[must_use]
pub struct TokenClientBuilder {
    endpoint: String,
    credentials: Option<Credentials>,
    connect_timeout: Duration,
    request_timeout: Duration,
    tls: TlsSettings,
    assertion_audience: Option<String>,
}

impl fmt::Debug for TokenClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClientBuilder")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl TokenClientBuilder {
    /// Authenticates with a client id and secret (from `tessera client create`).
    pub fn client_secret(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Secret {
            client_id: client_id.into(),
            secret: ClientSecret::new(secret),
        });
        self
    }

    /// Authenticates with a signed assertion (`private_key_jwt`, RFC 7523):
    /// the secret never leaves the client, and each call signs a fresh,
    /// single-use assertion. Its `aud` is the endpoint URL unless
    /// [`Self::assertion_audience`] says otherwise (it must be Tessera's
    /// issuer or its token endpoint).
    ///
    /// ```no_run
    /// use tessera_sdk::{AssertionAlgorithm, AssertionKey, TokenClient};
    /// # fn example() -> Result<(), tessera_sdk::Error> {
    /// let pem = std::fs::read("billing-key.pem").expect("key file");
    /// let key = AssertionKey::from_pem(AssertionAlgorithm::Es256, "k1", &pem)?;
    /// let client = TokenClient::builder("https://tessera.internal")
    ///     .private_key_jwt("billing", key)
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn private_key_jwt(mut self, client_id: impl Into<String>, key: AssertionKey) -> Self {
        self.credentials = Some(Credentials::Assertion {
            client_id: client_id.into(),
            key,
            audience: String::new(),
        });
        self
    }

    /// The `aud` of `private_key_jwt` assertions: Tessera's issuer, when the
    /// endpoint URL differs from it (behind a load balancer, for example).
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// Trusts this CA (PEM) for a `https://` endpoint, instead of the
    /// system's roots.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate and key (PEM) to a Tessera that
    /// requires mutual TLS.
    pub fn tls_identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.tls.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The name to verify the server certificate against, when it is not the
    /// endpoint's host (e.g. connecting by IP address).
    pub fn tls_domain(mut self, domain: impl Into<String>) -> Self {
        self.tls.domain = Some(domain.into());
        self
    }

    /// Time allowed to open a connection. Default: 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for each call, connection included. Default: 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Builds the client. No connection is made until the first call, and a
    /// lost connection is re-established by later calls.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] for a malformed URL, [`Error::Config`] when
    /// no credentials were given.
    pub fn build(self) -> Result<TokenClient, Error> {
        let invalid = |reason: String| Error::InvalidEndpoint {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout);
        let https = self.endpoint.starts_with("https://");
        let wants_tls = self.tls.ca_pem.is_some() || self.tls.identity.is_some() || self.tls.domain.is_some();
        if wants_tls && !https {
            return Err(invalid("TLS settings need an https:// endpoint".into()));
        }
        if https {
            let mut tls = tonic::transport::ClientTlsConfig::new();
            tls = match self.tls.ca_pem {
                Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                None => tls.with_native_roots(),
            };
            if let Some((cert, key)) = self.tls.identity {
                tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            if let Some(domain) = self.tls.domain {
                tls = tls.domain_name(domain);
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| invalid(e.to_string()))?;
        }
        let mut credentials = self.credentials.ok_or(Error::Config(
            "no client credentials; call client_secret() or private_key_jwt()",
        ))?;
        if let Credentials::Assertion { audience, .. } = &mut credentials {
            *audience = self
                .assertion_audience
                .unwrap_or_else(|| self.endpoint.trim_end_matches('/').to_owned());
        }
        let channel: Channel = endpoint.connect_lazy();
        Ok(TokenClient {
            inner: Arc::new(Inner {
                grpc: TokenServiceClient::new(channel),
                credentials,
            }),
        })
    }
}

struct Inner {
    grpc: TokenServiceClient<Channel>,
    credentials: Credentials,
}

/// A typed client of `tessera.v1.TokenService`. Cloning is shallow: clones
/// share one connection.
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient").finish_non_exhaustive()
    }
}

impl TokenClient {
    /// Starts building a client of the Tessera at `endpoint`, e.g. `http://tessera:8080`.
    pub fn builder(endpoint: impl Into<String>) -> TokenClientBuilder {
        TokenClientBuilder {
            endpoint: endpoint.into(),
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            tls: TlsSettings::default(),
            assertion_audience: None,
        }
    }

    /// The id and credential of an IssueToken call.
    fn credential(&self) -> Result<(String, pb::issue_token_request::Credential), Error> {
        use pb::issue_token_request::Credential;
        Ok(match &self.inner.credentials {
            Credentials::Secret { client_id, secret } => {
                (client_id.clone(), Credential::ClientSecret(secret.expose().to_owned()))
            }
            Credentials::Assertion {
                client_id,
                key,
                audience,
            } => (
                client_id.clone(),
                Credential::ClientAssertion(pb::ClientAssertion {
                    assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                    assertion: key.sign(client_id, audience)?,
                }),
            ),
        })
    }

    /// Asks for a new access token.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the OAuth code when Tessera refuses,
    /// [`Error::Transport`] when it cannot be reached.
    pub async fn issue_token(&self, request: &TokenRequest) -> Result<Token, Error> {
        let (client_id, credential) = self.credential()?;
        let message = pb::IssueTokenRequest {
            grant_type: String::new(),
            client_id,
            credential: Some(credential),
            scopes: request.scopes.clone(),
            audiences: request.audiences.clone(),
        };
        let sent_at = Instant::now();
        let response = self
            .inner
            .grpc
            .clone()
            .issue_token(message)
            .await
            .map_err(Error::from_status)?
            .into_inner();
        Ok(Token {
            access_token: AccessToken(response.access_token),
            expires_in: Duration::from_secs(response.expires_in.max(0) as u64),
            // The request time, not the answer's: the token may have been
            // minted at any moment in between, so this errs on the safe side.
            received_at: sent_at,
            scopes: response.scopes,
            audiences: response.audiences,
        })
    }

    /// A cached, refreshed-ahead token for `request`: what a service should
    /// call before every outgoing request (see [`TokenSource`]). Cloning the
    /// source is shallow; keep one per (scopes, audiences) and share it.
    pub fn token_source(&self, request: TokenRequest, policy: CachePolicy) -> TokenSource {
        TokenSource::new(self.clone(), request, policy)
    }

    /// Asks Tessera whether `token` is active (RFC 7662), authenticating with
    /// this client's credentials; the client needs the scope `tessera:introspect`.
    /// A `private_key_jwt` client authenticates with a token of its own
    /// (`authorization: Bearer`), issued for the purpose.
    ///
    /// # Errors
    /// As for [`TokenClient::issue_token`].
    pub async fn introspect(&self, token: &str) -> Result<bool, Error> {
        let mut request = tonic::Request::new(pb::IntrospectTokenRequest {
            token: token.to_owned(),
            token_type_hint: String::new(),
        });
        let authorization = match &self.inner.credentials {
            Credentials::Secret { client_id, secret } => {
                let basic =
                    base64_encode(format!("{}:{}", form_encode(client_id), form_encode(secret.expose())).as_bytes());
                format!("Basic {basic}")
            }
            Credentials::Assertion { .. } => {
                let own = self.issue_token(&TokenRequest::new()).await?;
                format!("Bearer {}", own.access_token().expose())
            }
        };
        let mut value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> = authorization
            .parse()
            .map_err(|_| Error::Config("credentials cannot be sent as metadata"))?;
        value.set_sensitive(true);
        request.metadata_mut().insert("authorization", value);
        let answer = self
            .inner
            .grpc
            .clone()
            .introspect_token(request)
            .await
            .map_err(Error::from_status)?;
        Ok(answer.into_inner().active)
    }

    /// Fetches the public keys that verify Tessera's tokens.
    ///
    /// # Errors
    /// As for [`TokenClient::issue_token`].
    pub async fn jwks(&self) -> Result<Vec<pb::JsonWebKey>, Error> {
        self.jwks_with_max_age().await.map(|(keys, _)| keys)
    }

    /// The keys, and how long Tessera says they may be kept (the response's
    /// `cache-control: max-age`), when it says.
    pub(crate) async fn jwks_with_max_age(&self) -> Result<(Vec<pb::JsonWebKey>, Option<Duration>), Error> {
        let response = self
            .inner
            .grpc
            .clone()
            .get_jwks(pb::GetJwksRequest {})
            .await
            .map_err(Error::from_status)?;
        let max_age = response
            .metadata()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        Ok((response.into_inner().keys, max_age))
    }
}

/// The `max-age` of a `Cache-Control` value (RFC 9111 §5.2.2.1).
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("Max-Age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }

    #[test]
    fn secrets_and_tokens_are_redacted_in_debug() {
        assert!(!format!("{:?}", ClientSecret::new("hunter2")).contains("hunter2"));
        assert!(!format!("{:?}", AccessToken("eyJ.secret.sig".into())).contains("eyJ"));
    }

    #[test]
    fn a_malformed_endpoint_is_refused_before_any_call() {
        let err = TokenClient::builder("not a url")
            .client_secret("a", "b")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidEndpoint { .. }), "{err:?}");
    }

    #[test]
    fn missing_credentials_are_refused_before_any_call() {
        let err = TokenClient::builder("http://127.0.0.1:1").build().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }

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

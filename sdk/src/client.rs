//! [`TokenClient`]: typed calls to `tessera.v1.TokenService`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_proto::oauth::{JWT_BEARER_ASSERTION, JWT_SPIFFE_ASSERTION};
use tessera_proto::pb;
use tessera_proto::pb::token_service_client::TokenServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::credentials::{AssertionKey, ClientSecret, Credentials, base64_encode, form_encode, read_token_file};
use crate::{AccessToken, CachePolicy, Error, PublicJwk, Token, TokenRequest, TokenSource};

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

    /// Authenticates with the identity token the platform writes to `path`:
    /// no secret at all. For a Kubernetes projected service-account token
    /// (its `audience` set to Tessera's issuer), or any trusted OIDC
    /// issuer's token; Tessera must trust the issuer (`tessera trust add`)
    /// and bind the token's subject to `client_id` (`tessera client
    /// add-federated`). The file is read again before every token request,
    /// since the platform replaces it as the token nears expiry. An empty
    /// `client_id` lets Tessera find the client by the token's subject.
    ///
    /// ```no_run
    /// use tessera_sdk::TokenClient;
    /// # fn example() -> Result<(), tessera_sdk::Error> {
    /// let client = TokenClient::builder("https://tessera.internal")
    ///     .federated_token_file("billing", "/var/run/secrets/tokens/tessera")
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn federated_token_file(mut self, client_id: impl Into<String>, path: impl Into<std::path::PathBuf>) -> Self {
        self.credentials = Some(Credentials::PlatformToken {
            client_id: client_id.into(),
            path: path.into(),
            assertion_type: JWT_BEARER_ASSERTION,
        });
        self
    }

    /// As [`Self::federated_token_file`], for a SPIFFE JWT-SVID (sent as
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-spiffe`), e.g. the
    /// file spiffe-helper keeps current. Tessera must trust the SVID's trust
    /// domain (`tessera trust add spiffe://example.org --jwks-file bundle.json`).
    pub fn spiffe_token_file(mut self, client_id: impl Into<String>, path: impl Into<std::path::PathBuf>) -> Self {
        self.credentials = Some(Credentials::PlatformToken {
            client_id: client_id.into(),
            path: path.into(),
            assertion_type: JWT_SPIFFE_ASSERTION,
        });
        self
    }

    /// Authenticates with the TLS client certificate given to
    /// [`Self::tls_identity`] (RFC 8705 `tls_client_auth`, or
    /// `self_signed_tls_client_auth`): no secret at all. Tessera must have
    /// the certificate registered for `client_id` (`tessera client
    /// add-certificate`), and its tokens are bound to the certificate (`cnf`):
    /// a resource server checking the binding accepts them only from a caller
    /// holding the same certificate, as this client's connections do.
    ///
    /// ```no_run
    /// use tessera_sdk::TokenClient;
    /// # fn example() -> Result<(), tessera_sdk::Error> {
    /// let certificate = std::fs::read("billing.pem").expect("certificate file");
    /// let key = std::fs::read("billing-key.pem").expect("key file");
    /// let client = TokenClient::builder("https://tessera.internal")
    ///     .tls_identity(certificate, key)
    ///     .tls_client_auth("billing")
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn tls_client_auth(mut self, client_id: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Certificate {
            client_id: client_id.into(),
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
        if self.credentials.is_none() {
            return Err(Error::Config(
                "no client credentials; call client_secret(), private_key_jwt(), federated_token_file() or tls_client_auth(), or build_keys_only() for a verifier",
            ));
        }
        if matches!(self.credentials, Some(Credentials::Certificate { .. })) && self.tls.identity.is_none() {
            return Err(Error::Config(
                "tls_client_auth() authenticates with the TLS client certificate: give it with tls_identity()",
            ));
        }
        self.connect()
    }

    /// Builds a client that only fetches Tessera's public keys (`GetJwks`
    /// needs no credentials): what a [`crate::Verifier`] needs, for a
    /// resource server that holds no client credentials of its own.
    /// Issuing and introspecting with it are refused with [`Error::Config`].
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] for a malformed URL.
    pub fn build_keys_only(mut self) -> Result<TokenClient, Error> {
        self.credentials = None;
        self.connect()
    }

    fn connect(self) -> Result<TokenClient, Error> {
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
        let mut credentials = self.credentials;
        if let Some(Credentials::Assertion { audience, .. }) = &mut credentials {
            *audience = self
                .assertion_audience
                .unwrap_or_else(|| self.endpoint.trim_end_matches('/').to_owned());
        }
        let channel: Channel = endpoint.connect_lazy();
        Ok(TokenClient {
            inner: Arc::new(Inner {
                grpc: TokenServiceClient::new(channel.clone()),
                channel,
                credentials,
                own_token: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

struct Inner {
    grpc: TokenServiceClient<Channel>,
    /// The connection, shared with an [`crate::AdminClient`] built on this client.
    channel: Channel,
    /// `None` for a keys-only client.
    credentials: Option<Credentials>,
    /// The token a `private_key_jwt` client authenticates its own
    /// introspection calls with, reused until it nears expiry.
    own_token: tokio::sync::Mutex<Option<Token>>,
}

/// A token of the client's own is replaced when less than this remains.
const OWN_TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// The refusal of a call that needs credentials on a keys-only client.
const NO_CREDENTIALS: Error =
    Error::Config("this client was built with build_keys_only(); give it client credentials to call this");

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

    /// The connection this client calls Tessera on.
    pub(crate) fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    /// The id and credential of an IssueToken call; no credential for a
    /// certificate client (the connection carries it).
    fn credential(&self) -> Result<(String, Option<pb::issue_token_request::Credential>), Error> {
        use pb::issue_token_request::Credential;
        Ok(match self.inner.credentials.as_ref().ok_or(NO_CREDENTIALS)? {
            Credentials::Certificate { client_id } => return Ok((client_id.clone(), None)),
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
                    assertion_type: JWT_BEARER_ASSERTION.to_owned(),
                    assertion: key.sign(client_id, audience)?,
                }),
            ),
            Credentials::PlatformToken {
                client_id,
                path,
                assertion_type,
            } => (
                client_id.clone(),
                Credential::ClientAssertion(pb::ClientAssertion {
                    assertion_type: (*assertion_type).to_owned(),
                    assertion: read_token_file(path)?,
                }),
            ),
        })
        .map(|(client_id, credential)| (client_id, Some(credential)))
    }

    /// Asks for a new access token.
    ///
    /// # Errors
    /// [`Error::Rejected`] with the OAuth code when Tessera refuses,
    /// [`Error::Unreachable`] when no connection could be made, [`Error::Transport`] when no usable answer came.
    pub async fn issue_token(&self, request: &TokenRequest) -> Result<Token, Error> {
        let (client_id, credential) = self.credential()?;
        let message = pb::IssueTokenRequest {
            grant_type: String::new(),
            client_id,
            credential,
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
            access_token: AccessToken(Arc::from(response.access_token)),
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
    /// A client without a secret authenticates with a token of its own
    /// (`authorization: Bearer`), issued for the purpose.
    ///
    /// # Errors
    /// As for [`TokenClient::issue_token`].
    pub async fn introspect(&self, token: &str) -> Result<bool, Error> {
        let mut request = tonic::Request::new(pb::IntrospectTokenRequest {
            token: token.to_owned(),
            token_type_hint: String::new(),
        });
        let authorization = match self.inner.credentials.as_ref().ok_or(NO_CREDENTIALS)? {
            Credentials::Secret { client_id, secret } => {
                let basic =
                    base64_encode(format!("{}:{}", form_encode(client_id), form_encode(secret.expose())).as_bytes());
                format!("Basic {basic}")
            }
            Credentials::Assertion { .. } | Credentials::PlatformToken { .. } | Credentials::Certificate { .. } => {
                format!("Bearer {}", self.own_token().await?.expose())
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

    /// A token of this client's own, for its own calls: one per client,
    /// fetched again only when it nears expiry (not on every call).
    async fn own_token(&self) -> Result<AccessToken, Error> {
        let mut held = self.inner.own_token.lock().await;
        if let Some(token) = held.as_ref()
            && token.expires_at() > Instant::now() + OWN_TOKEN_MARGIN
        {
            return Ok(token.access_token().clone());
        }
        let fresh = self.issue_token(&TokenRequest::new()).await?;
        let access = fresh.access_token().clone();
        *held = Some(fresh);
        Ok(access)
    }

    /// Fetches the public keys that verify Tessera's tokens.
    ///
    /// # Errors
    /// As for [`TokenClient::issue_token`].
    pub async fn jwks(&self) -> Result<Vec<PublicJwk>, Error> {
        self.jwks_with_max_age().await.map(|(keys, _)| keys)
    }

    /// The keys, and how long Tessera says they may be kept (the response's
    /// `cache-control: max-age`), when it says.
    pub(crate) async fn jwks_with_max_age(&self) -> Result<(Vec<PublicJwk>, Option<Duration>), Error> {
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
        Ok((
            response.into_inner().keys.into_iter().map(PublicJwk::from).collect(),
            max_age,
        ))
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
}

//! The authority: the one place where token rules live.
//!
//! The faces (gRPC, HTTP) turn a request into a [`TokenRequest`], call
//! [`Authority::issue`], [`Authority::introspect`] or [`Authority::revoke`],
//! and render the result. Every decision, from which credential counts to
//! which scopes are granted and for how long, is made here, so both faces
//! always agree. Each concern has its module:
//!
//! | module | owns |
//! |---|---|
//! | [`request`] | what a face hands in and gets back |
//! | [`credentials`] | which credential counts, and each kind's check |
//! | `policy` | which scopes and audiences a client gets |
//! | `mint` | the claims and signature of a new token |
//! | `introspect` | whether a token is active; revocation |
//! | `metadata` | the RFC 8414 document of what the core supports |
//! | `replica` | the hot copies of the store and how they follow it |
//! | `watch` | the background task: store sync, reachability, upkeep, rotation |
//! | [`secret`] | hashing and check values of client secrets |
//! | [`error`] | the one error type |

pub mod credentials;
pub mod error;
mod introspect;
mod metadata;
mod mint;
mod policy;
mod replica;
pub mod request;
pub mod secret;
mod throttle;
mod watch;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use tracing::{info, warn};

pub use credentials::REFUSAL_FLOOR;
pub use credentials::assertion::{ASSERTION_LEEWAY_SECS, decoding_key as client_decoding_key};
pub use credentials::spiffe_trust_domain;
pub use error::{AuthError, Challenge};
pub use introspect::{ActiveToken, INTROSPECT_SCOPE, MAX_TOKEN_LEN, REVOKE_SCOPE};
pub use metadata::{AUTH_METHODS, EndpointPaths};
pub use policy::{MAX_AUDIENCES, MAX_SCOPES, is_valid_audience, is_valid_scope_token};
pub use replica::StoreHealth;
pub use request::{AccessToken, Authorization, IssuedToken, PresentedCredentials, TokenRequest, bearer};
pub use secret::{ClientSecret, HashingGate, SecretCheck};
pub use tessera_proto::limits::MAX_CLIENT_ID_LEN;
pub use tessera_proto::oauth::{CLIENT_CREDENTIALS, JWT_BEARER_ASSERTION};
pub use throttle::ThrottleConfig;

use crate::audit;
use crate::clock::Clock;
use crate::keys::{KeyAlgorithm, KeyCustody, KeyRing, PublicJwk};
use crate::metrics::{Metrics, Snapshot};
use crate::request_id::RequestId;
use crate::store::{ClientRecord, Store, StoreError};
use credentials::{Credential, SecretVerifier};
use mint::Grant;
use replica::Replica;

/// Settings of the authority, validated by the caller.
#[derive(Debug, Clone)]
pub struct AuthorityConfig {
    /// The `iss` of every token and the issuer in the metadata document.
    pub issuer: String,
    /// Token lifetime when the client has no override, in seconds.
    pub default_token_ttl: u32,
    /// No token lives longer than this, whatever the client's override says.
    pub max_token_ttl: u32,
    /// Algorithm of the signing key generated when the store has none.
    pub signing_alg: KeyAlgorithm,
    /// Concurrent argon2 verifications.
    pub hashing_permits: usize,
    /// How long a request may wait for a hashing permit before it gets
    /// `temporarily_unavailable`.
    pub hashing_wait: Duration,
    /// Rotate the signing key when the newest is this old; `None` never.
    pub key_rotation: Option<Duration>,
    /// How long a rotated key is published before it signs.
    pub key_publish_ahead: Duration,
    /// Failure limits per client id and per source address.
    pub throttle: ThrottleConfig,
    /// Refuse token requests that name no audience, instead of granting the
    /// client's registered audiences.
    pub require_audience: bool,
    /// Longest lifetime (`exp` - now) a client assertion may claim. Its `jti`
    /// is remembered that long, so this also bounds the replay store.
    pub max_assertion_lifetime_secs: i64,
    /// How trusted issuers' keys are kept current.
    pub federation: crate::federation::FederationConfig,
    /// Whether the listener asks clients for TLS certificates, so that
    /// `tls_client_auth` and certificate-bound tokens (RFC 8705) can be
    /// used; the metadata says so only then.
    pub client_certificates: bool,
    /// How signing keys are kept at rest (encrypted under a KEK, or not).
    pub custody: Arc<KeyCustody>,
}

/// The token authority. Shared as `Arc<Authority>` by every face.
pub struct Authority {
    config: AuthorityConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// What this replica holds of the store.
    replica: Replica,
    /// What client-secret authentication keeps between requests.
    secrets: SecretVerifier,
    /// Every metric, recorded by the core and the faces through this handle.
    metrics: Metrics,
    /// When expired revocations were last deleted from the store.
    last_prune: AtomicI64,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Builds the authority over a store, creating the first signing key if
    /// the store has none.
    ///
    /// # Errors
    /// When the store cannot be read or its keys cannot be loaded.
    pub async fn new(config: AuthorityConfig, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let replica = Replica::load(
            store.clone(),
            clock.clone(),
            config.max_token_ttl,
            config.signing_alg,
            config.federation,
            &config.issuer,
            config.custody.clone(),
        )
        .await?;
        let gate = HashingGate::new(config.hashing_permits, config.hashing_wait).map_err(|e| e.to_string())?;
        Ok(Self {
            secrets: SecretVerifier::new(gate, config.throttle),
            config,
            store,
            clock,
            replica,
            metrics: Metrics::new(),
            last_prune: AtomicI64::new(0),
        })
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The admin operations over this authority's store, generating keys
    /// the way it keeps them (its KEK) and never trusting its own issuer.
    pub fn admin_ops(&self) -> crate::admin::api::AdminOps {
        crate::admin::api::AdminOps::new(
            self.store.clone(),
            self.config.custody.clone(),
            self.clock.clone(),
            Some(self.config.issuer.clone()),
            u32::try_from(self.config.key_publish_ahead.as_secs()).unwrap_or(u32::MAX),
        )
    }

    /// The current key ring.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.replica.key_ring()
    }

    /// The public keys resource servers verify tokens with.
    pub fn jwks(&self) -> Vec<PublicJwk> {
        self.key_ring().jwks(self.clock.now())
    }

    /// The number of revoked tokens not yet expired.
    pub fn revoked_count(&self) -> usize {
        self.replica.denied_count()
    }

    /// Issues an access token (RFC 6749 section 4.4).
    ///
    /// # Errors
    /// Every refusal is an [`AuthError`] carrying its OAuth error code.
    pub async fn issue(&self, request: TokenRequest) -> Result<IssuedToken, AuthError> {
        let outcome = self.issue_inner(request).await;
        match &outcome {
            Ok(token) => info!(
                target: "tessera::audit",
                event = audit::TOKEN_ISSUED,
                request_id = %RequestId::current(),
                client_id = %token.client_id,
                jti = %token.jti,
                scope = %token.scopes.join(" "),
                aud = %token.audiences.join(" "),
                expires_in = token.expires_in,
                certificate_bound = token.certificate_bound,
            ),
            Err(e) => {
                warn!(target: "tessera::audit", event = audit::TOKEN_REFUSED, request_id = %RequestId::current(), reason = e.oauth_code())
            }
        }
        outcome
    }

    async fn issue_inner(&self, request: TokenRequest) -> Result<IssuedToken, AuthError> {
        self.check_store_fresh()?;
        match request.grant_type.as_deref() {
            None => {
                return Err(AuthError::invalid_request(
                    "grant_type is required; use grant_type=client_credentials",
                ));
            }
            Some(CLIENT_CREDENTIALS) => {}
            Some(other) => {
                return Err(AuthError::UnsupportedGrantType(
                    format!(
                        "grant type {} is not supported; Tessera serves client_credentials only",
                        error::echo(other)
                    )
                    .into(),
                ));
            }
        }
        // Shape checks come before authentication so a malformed request never costs a hash.
        let scopes = policy::parse_requested_scopes(&request.scopes)?;
        let audiences = policy::parse_requested_audiences(&request.audiences)?;
        if audiences.is_empty() && self.config.require_audience {
            return Err(AuthError::InvalidTarget(
                "this server requires every token request to name its audience (resource)".into(),
            ));
        }
        let source = request.credentials.source;
        let certificate = request.credentials.client_certificate.clone();
        let credential = credentials::resolve(request.credentials, false)?;
        let by_certificate = matches!(credential, Credential::Certificate { .. });
        let client = self.authenticate(credential, source).await?;
        let cnf = policy::confirmation(&client, by_certificate, certificate.as_ref())?;
        let grant = Grant {
            cnf,
            scopes: policy::grant_scopes(&client, scopes)?,
            audiences: policy::grant_audiences(&client, audiences, &self.config.issuer)?,
            ttl: client
                .token_ttl
                .unwrap_or(self.config.default_token_ttl)
                .min(self.config.max_token_ttl),
            client_id: client.client_id.clone(),
        };
        self.mint(grant)
    }

    /// The client with this id, from the hot copies or else the store.
    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, AuthError> {
        self.replica
            .client(client_id)
            .await
            .map_err(|e| self.store_unavailable(e))
    }

    /// A store failure, counted and logged, as the caller's answer.
    fn store_unavailable(&self, e: StoreError) -> AuthError {
        self.metrics.store_error();
        warn!(error = %e, "store error");
        AuthError::TemporarilyUnavailable("the credential store is unavailable; retry shortly".into())
    }

    /// argon2 verification batches run so far.
    pub fn hashing_runs(&self) -> u64 {
        self.secrets.hashing_runs()
    }

    /// Remembered verifications, for metrics and tests.
    pub fn remembered_count(&self) -> usize {
        self.secrets.remembered_count()
    }

    /// Brings the hot copies up to date if the store changed since the last
    /// look. Returns true when something changed.
    ///
    /// # Errors
    /// When the store cannot be read; the hot copies are then kept as they are.
    pub async fn sync_with_store(&self) -> Result<bool, StoreError> {
        self.replica.sync().await
    }

    /// The metrics, recorded by the core and the faces.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus text exposition of every metric, now.
    pub fn render_metrics(&self) -> String {
        let now = self.clock.now();
        self.metrics.render(Snapshot {
            signing_keys: self.key_ring().jwks(now).len(),
            denylist: self.replica.denied_count(),
            hashing_busy: self.secrets.hashing_busy(),
            hashing_waiting: self.metrics.hashing_waiting(),
            remembered: self.remembered_count(),
            verified_tokens: self.replica.verified_count(),
            federation: self.replica.trusted.health(),
            store_reachable: self.store_health() == StoreHealth::Reachable,
        })
    }

    /// Woken (`notify_waiters`) whenever the store's health may have changed.
    pub fn health_changed(&self) -> Arc<tokio::sync::Notify> {
        self.replica.state.changed.clone()
    }

    /// How current the hot copies are.
    pub fn store_health(&self) -> StoreHealth {
        self.replica.health()
    }

    /// Refuses to answer from hot copies older than the staleness window:
    /// a revocation or a disable made elsewhere meanwhile would go unseen.
    pub(crate) fn check_store_fresh(&self) -> Result<(), AuthError> {
        if self.store_health() == StoreHealth::Stale {
            return Err(AuthError::TemporarilyUnavailable(
                "Tessera cannot reach its store and its copies are too old to trust; retry shortly".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

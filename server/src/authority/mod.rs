//! The authority: the one place where token rules live.
//!
//! The faces (gRPC, HTTP) turn a request into a [`TokenRequest`], call
//! [`Authority::issue`], and render the result. Every decision, from which
//! credential counts to which scopes are granted and for how long, is made
//! here, so both faces always agree.

mod assertion;
mod error;
mod introspect;
mod policy;
pub mod secret;
mod throttle;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use std::{fmt, mem};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use serde::Serialize;
use tracing::{info, warn};

pub use assertion::{ASSERTION_LEEWAY_SECS, decoding_key as client_decoding_key};
pub use error::{AuthError, Challenge};
pub use introspect::{ActiveToken, INTROSPECT_SCOPE, MAX_TOKEN_LEN, REVOKE_SCOPE, bearer};
pub use policy::{MAX_AUDIENCES, MAX_SCOPES, is_valid_audience, is_valid_scope_token};
pub use secret::{ClientSecret, HashingGate, SecretCheck};
pub use throttle::ThrottleConfig;

use crate::clock::{Clock, UnixTime};
use crate::keys::{KeyAlgorithm, KeyRing, PublicJwk, SigningKey};
use crate::metrics::{Metrics, Snapshot};
use crate::request_id::RequestId;
use crate::store::{ClientRecord, Generations, SecretRecord, Store, StoreError};
use throttle::Throttle;

/// The only grant Tessera serves (RFC 6749 §4.4).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 7523 §2.2 client assertion type.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest client id accepted in a request; longer ones are refused before any lookup.
pub const MAX_CLIENT_ID_LEN: usize = 256;

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
}

/// A parsed `Authorization` header (or gRPC `authorization` metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Basic` client credentials, already base64- and form-decoded (RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        client_id: String,
        /// The client secret.
        secret: ClientSecret,
    },
    /// A `Bearer` access token.
    Bearer(AccessToken),
}

/// Everything a request offered to say who the client is, before the core
/// decides which of it counts. Collected as is, so that ambiguity (two
/// methods, mismatching ids) is judged in one place.
#[derive(Debug, Default, Clone)]
pub struct PresentedCredentials {
    /// The `Authorization` header, if any.
    pub authorization: Option<Authorization>,
    /// `client_id` from the body or message.
    pub client_id: Option<String>,
    /// `client_secret` from the body or message (`client_secret_post`).
    pub client_secret: Option<ClientSecret>,
    /// `client_assertion_type` (RFC 7521 §4.2).
    pub client_assertion_type: Option<String>,
    /// `client_assertion` (RFC 7521 §4.2).
    pub client_assertion: Option<String>,
    /// The leaf certificate the client presented in a mutual-TLS handshake:
    /// here so that `tls_client_auth` (RFC 8705) can be judged with the other
    /// methods. Not yet an authentication method of its own.
    pub client_certificate: Option<crate::tls::PeerCertificate>,
    /// The peer's address, for failure accounting. Forwarding headers are
    /// not trusted for this (THREATS A-15).
    pub source: Option<IpAddr>,
}

/// A token request, face-agnostic.
#[derive(Debug, Default, Clone)]
pub struct TokenRequest {
    /// `grant_type`; `None` when the request had none.
    pub grant_type: Option<String>,
    /// How the client authenticates.
    pub credentials: PresentedCredentials,
    /// Requested scopes, one token each; empty asks for the client's defaults.
    pub scopes: Vec<String>,
    /// Requested audiences (RFC 8707 resources); empty asks for the client's defaults.
    pub audiences: Vec<String>,
}

/// An access token. `Debug` is redacted: a token is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a presented token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The compact JWT. Call only to send it to its owner or to verify it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the compact JWT.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// A freshly minted token and what it grants.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The client it was issued to (`sub` and `client_id`).
    pub client_id: String,
    /// The signed JWT.
    pub access_token: AccessToken,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Its audiences (`aud`).
    pub audiences: Vec<String>,
    /// Its `jti`.
    pub jti: String,
}

/// The claims of an RFC 9068 access token.
#[derive(Debug, Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    aud: Audience<'a>,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
    exp: UnixTime,
    iat: UnixTime,
    nbf: UnixTime,
    jti: &'a str,
}

/// `aud` is a string when there is one audience (what most verifiers expect)
/// and an array otherwise (RFC 7519 §4.1.3).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// Which client authenticated, and how, once ambiguity is ruled out.
enum Credential {
    Secret {
        client_id: String,
        secret: ClientSecret,
        challenge: Challenge,
    },
    /// Only where a token may stand for its client (introspection, revocation).
    Bearer(AccessToken),
    /// `private_key_jwt`; `client_id` is the one the request named, if any.
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
}

/// A secret that verified once, remembered as a keyed MAC so the next request
/// with the same secret costs a MAC instead of argon2.
#[derive(Clone)]
struct Remembered {
    mac: [u8; 32],
    /// Which of the client's secrets it matched: the memory counts only while
    /// the client's current record still holds that secret, live.
    secret_id: String,
}

/// Removes a shared verification from `in_flight` when its caller finishes,
/// or is cancelled mid-wait (a client that hung up, a gRPC deadline): an
/// entry must never outlive every caller that could use it.
struct InFlightEntry<'a> {
    map: &'a DashMap<[u8; 32], Arc<tokio::sync::OnceCell<Option<usize>>>>,
    mac: [u8; 32],
    cell: &'a Arc<tokio::sync::OnceCell<Option<usize>>>,
}

impl Drop for InFlightEntry<'_> {
    fn drop(&mut self) {
        self.map
            .remove_if(&self.mac, |_, current| Arc::ptr_eq(current, self.cell));
    }
}

/// The least time an `invalid_client` answer takes, from the start of
/// authentication. Longer than any refusal's own work (a store lookup,
/// PostgreSQL's included), so unknown, disabled and wrong-secret answers all
/// take the floor plus the timer's tick; a sleep, so it costs no CPU.
pub const REFUSAL_FLOOR: Duration = Duration::from_millis(5);

/// Remembered verifications kept at most, over all clients; past it the
/// memory starts afresh (clients that churn cannot grow it without bound).
const MAX_REMEMBERED_CLIENTS: usize = 100_000;

/// The token authority. Shared as `Arc<Authority>` by every face.
pub struct Authority {
    config: AuthorityConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Swapped whole when the store's keys change; readers clone the `Arc`.
    keys: RwLock<Arc<KeyRing>>,
    /// Hot copies of clients, so a warm client costs no store read. Cleared
    /// whenever the store's change counter moves.
    clients: DashMap<String, Arc<ClientRecord>>,
    /// Bumped on every clear, so a store read that began before a change
    /// does not put a stale copy back into `clients`.
    client_epoch: AtomicU64,
    /// The store generations the hot copies reflect.
    seen: Mutex<Generations>,
    gate: HashingGate,
    /// Remembered successful verifications, per client id. Each is checked
    /// against the client's current record, so a rotation, disable or delete
    /// ends it, while a change to another client leaves it be: a busy
    /// registry does not send every warm client back to argon2.
    remembered: DashMap<String, Vec<Remembered>>,
    /// Per-process random key of the remembered MACs: a memory dump does not
    /// give an offline oracle for secrets across restarts.
    mac_key: aws_lc_rs::hmac::Key,
    /// The check value of a random secret, checked when a request names no
    /// usable client, so that the refusal costs what a wrong secret costs.
    dummy_check: String,
    /// Verifications under way, by the MAC of the presented credentials.
    in_flight: DashMap<[u8; 32], Arc<tokio::sync::OnceCell<Option<usize>>>>,
    throttle: Throttle,
    /// Revoked tokens' `jti` → `exp`, kept until they expire anyway. Read on
    /// every introspection, so it lives in memory; the store is its truth.
    denied: DashMap<String, UnixTime>,
    /// Tokens whose signature verified, by SHA-256 of the token, so a repeat
    /// introspection is nearly free. Dropped whenever signing keys change.
    verified: DashMap<[u8; 32], Arc<ActiveToken>>,
    /// Position of the newest revocation read from the store.
    revocation_cursor: AtomicU64,
    /// When expired revocations were last deleted from the store.
    last_prune: AtomicI64,
    /// Whether the store answered the last look, and whether it has been out
    /// of reach for longer than the staleness window.
    store_state: StoreState,
    metrics: Metrics,
    /// [`STORE_ERRORS`] as last copied into `metrics`.
    store_errors_seen: AtomicU64,
}

/// What the store watch last learned about the store, read on every request.
#[derive(Debug, Default)]
struct StoreState {
    unreachable: AtomicBool,
    stale: AtomicBool,
    /// Set once shutdown begins: readiness and health turn negative.
    draining: AtomicBool,
    /// Woken when readiness may have changed.
    changed: Arc<tokio::sync::Notify>,
}

/// How current the hot copies are, for readiness probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreHealth {
    /// The store answered the last look.
    Reachable,
    /// The store did not answer, but for less than the staleness window:
    /// Tessera serves from its hot copies; writes fail.
    Unreachable,
    /// The store has been out of reach for longer than the staleness window:
    /// issuance and introspection answer `temporarily_unavailable`.
    Stale,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// Counted in every authority's metrics, wherever the store failed.
static STORE_ERRORS: AtomicU64 = AtomicU64::new(0);

fn store_unavailable(e: StoreError) -> AuthError {
    STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
    warn!(error = %e, "store error");
    AuthError::TemporarilyUnavailable("the credential store is unavailable; retry shortly".into())
}

impl Authority {
    /// Builds the authority over a store, creating the first signing key if
    /// the store has none.
    ///
    /// # Errors
    /// When the store cannot be read or its keys cannot be loaded.
    pub async fn new(config: AuthorityConfig, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let generations = store.generations().await.map_err(|e| e.to_string())?;
        let mut records = store.signing_keys().await.map_err(|e| e.to_string())?;
        if records.is_empty() {
            let fresh = SigningKey::generate(config.signing_alg, clock.now())?;
            records = store.insert_first_signing_key(fresh).await.map_err(|e| e.to_string())?;
        }
        let ring = KeyRing::load(&records, config.max_token_ttl).map_err(|e| e.to_string())?;
        let signer = ring.signer(clock.now());
        info!(
            kid = signer.kid(),
            alg = signer.algorithm().jws_name(),
            keys = ring.keys().len(),
            "signing keys loaded"
        );
        let gate = HashingGate::new(config.hashing_permits, config.hashing_wait).map_err(|e| e.to_string())?;
        let throttle = Throttle::new(config.throttle);
        let denied = DashMap::new();
        let (revoked, revocation_cursor) = store
            .revoked_tokens_after(clock.now(), 0)
            .await
            .map_err(|e| e.to_string())?;
        for revoked in revoked {
            denied.insert(revoked.jti, revoked.expires_at);
        }
        Ok(Self {
            config,
            store,
            clock,
            keys: RwLock::new(Arc::new(ring)),
            clients: DashMap::new(),
            client_epoch: AtomicU64::new(0),
            seen: Mutex::new(generations),
            gate,
            remembered: DashMap::new(),
            in_flight: DashMap::new(),
            mac_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret::random_bytes::<32>()),
            dummy_check: SecretCheck::new(&ClientSecret::generate()).into_inner(),
            throttle,
            denied,
            last_prune: AtomicI64::new(0),
            revocation_cursor: AtomicU64::new(revocation_cursor),
            verified: DashMap::new(),
            store_state: StoreState::default(),
            metrics: Metrics::new(),
            store_errors_seen: AtomicU64::new(0),
        })
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The current key ring.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The public keys resource servers verify tokens with.
    pub fn jwks(&self) -> Vec<PublicJwk> {
        self.key_ring().jwks(self.clock.now())
    }

    /// The number of revoked tokens not yet expired.
    pub fn revoked_count(&self) -> usize {
        self.denied.len()
    }

    /// Issues an access token (RFC 6749 §4.4).
    ///
    /// # Errors
    /// Every refusal is an [`AuthError`] carrying its OAuth error code.
    pub async fn issue(&self, request: TokenRequest) -> Result<IssuedToken, AuthError> {
        let outcome = self.issue_inner(request).await;
        match &outcome {
            Ok(token) => info!(
                target: "tessera::audit",
                event = "token_issued",
                request_id = %RequestId::current(),
                client_id = %token.client_id,
                jti = %token.jti,
                scope = %token.scopes.join(" "),
                aud = %token.audiences.join(" "),
                expires_in = token.expires_in,
            ),
            Err(e) => {
                warn!(target: "tessera::audit", event = "token_refused", request_id = %RequestId::current(), reason = e.oauth_code())
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
        let credential = resolve_credentials(request.credentials, false)?;
        let client = self.authenticate(credential, source).await?;
        let scopes = policy::grant_scopes(&client, scopes)?;
        let audiences = policy::grant_audiences(&client, audiences, &self.config.issuer)?;
        let ttl = client
            .token_ttl
            .unwrap_or(self.config.default_token_ttl)
            .min(self.config.max_token_ttl);
        self.mint(&client.client_id, scopes, audiences, ttl)
    }

    /// Checks the credential and returns the client.
    ///
    /// No correct credential is refused because of anyone else's failures:
    /// a wrong secret is turned away by its check value in about a
    /// microsecond ([`secret`] says why that is safe), and a bad assertion by
    /// its signature, so failures need no lockout to stay cheap. A secret
    /// remembered from an earlier success costs a MAC; argon2 runs only for
    /// a secret that passes its check. Unknown, disabled and wrong-secret
    /// cases do the same work and fail with the same error.
    ///
    /// A refusal is answered no sooner than [`REFUSAL_FLOOR`] after the
    /// request began: without argon2 on the failure path, what remains to
    /// tell cases apart is microseconds (an unknown id costs a store lookup,
    /// a known one does not), and a floor hides them all at no CPU cost.
    async fn authenticate(
        &self,
        credential: Credential,
        source: Option<IpAddr>,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let started = tokio::time::Instant::now();
        let outcome = match credential {
            Credential::Secret {
                client_id,
                secret,
                challenge,
            } => self.authenticate_secret(client_id, secret, challenge, source).await,
            Credential::Assertion { client_id, assertion } => {
                self.authenticate_assertion(client_id.as_deref(), &assertion).await
            }
            Credential::Bearer(_) => Err(AuthError::InvalidClient {
                challenge: Challenge::Bearer,
            }),
        };
        if matches!(outcome, Err(AuthError::InvalidClient { .. })) {
            tokio::time::sleep_until(started + REFUSAL_FLOOR).await;
        }
        outcome
    }

    async fn authenticate_secret(
        &self,
        client_id: String,
        secret: ClientSecret,
        challenge: Challenge,
        source: Option<IpAddr>,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let client = self.client(&client_id).await?;
        let now = self.clock.now();
        let mac = self.secret_mac(&client_id, &secret);
        let usable = client.as_ref().filter(|c| !c.disabled);
        if let Some(c) = usable
            && self.is_remembered(c, &mac, now)
        {
            self.metrics.remembered_hit();
            return Ok(c.clone());
        }
        let live: Vec<&SecretRecord> = usable
            .map(|c| c.secrets.iter().filter(|s| s.is_live(now)).collect())
            .unwrap_or_default();
        let candidates = self.screen(&live, &secret);
        let refuse = || {
            warn!(target: "tessera::audit", event = "client_authentication_failed", request_id = %RequestId::current(), client_id = %truncate(&client_id));
            Err(AuthError::InvalidClient { challenge })
        };
        let (Some(client), false) = (usable, candidates.is_empty()) else {
            return refuse();
        };
        // Secrets stored before check values existed still cost argon2 to
        // refuse, so their failures stay throttled until each has verified
        // once after the upgrade and gained its check value.
        let legacy = candidates.iter().any(|c| c.check.is_none());
        if legacy {
            if let Some(retry_after_secs) = self.throttle.retry_after(Some(&client_id), source, now) {
                return Err(AuthError::TooManyRequests { retry_after_secs });
            }
            // Counted before argon2 runs, so a caller that hangs up (or whose
            // gRPC deadline passes) mid-hash is counted all the same. A
            // legacy secret verifies at most once like this: it then gains
            // its check value.
            self.throttle.record_failure(Some(&client_id), source, now);
        }
        let phcs = candidates.iter().map(|c| c.phc.clone()).collect();
        let Some(matched) = self
            .verify_once(mac, phcs, secret.clone())
            .await?
            .and_then(|i| candidates.get(i))
        else {
            return refuse();
        };
        // Safe even if the client changed while argon2 ran: the memory is
        // checked against the client's record at each use.
        self.remember(&client.client_id, mac, &matched.secret_id);
        if matched.check.is_none() {
            self.record_check(&client.client_id, &matched.secret_id, &secret).await;
        }
        Ok(client.clone())
    }

    /// The live secrets `secret` may be: those whose check value it passes,
    /// and those stored without one. With none to screen, one check runs
    /// against a dummy value, so an unknown or disabled client costs what a
    /// wrong secret does.
    fn screen<'a>(&self, live: &[&'a SecretRecord], secret: &ClientSecret) -> Vec<&'a SecretRecord> {
        if live.is_empty() {
            let _ = std::hint::black_box(secret::passes_check(&self.dummy_check, secret));
            return Vec::new();
        }
        live.iter()
            .copied()
            .filter(|s| {
                s.check
                    .as_deref()
                    .is_none_or(|check| secret::passes_check(check, secret))
            })
            .collect()
    }

    /// Stores the check value of a secret that verified but had none. A
    /// failure only means argon2 runs again next time, so it is logged.
    async fn record_check(&self, client_id: &str, secret_id: &str, secret: &ClientSecret) {
        let check = SecretCheck::new(secret);
        match self.store.set_secret_check(client_id, secret_id, check.as_str()).await {
            Ok(_) => {
                info!(target: "tessera::audit", event = "secret_check_recorded", client_id = %client_id, secret_id = %secret_id)
            }
            Err(e) => warn!(error = %e, "recording a secret's check value failed; it will be retried at its next use"),
        }
    }

    /// One verification per presented (client, secret) at a time: concurrent
    /// requests with the same credentials (a service starting many workers at
    /// once) share one argon2 run instead of queueing one each. A failed or
    /// cancelled run is not shared; the next waiter runs its own. The shared
    /// entry goes when its last caller finishes or is cancelled.
    async fn verify_once(
        &self,
        mac: [u8; 32],
        candidates: Vec<String>,
        secret: ClientSecret,
    ) -> Result<Option<usize>, AuthError> {
        let cell = self.in_flight.entry(mac).or_default().clone();
        let _entry = InFlightEntry {
            map: &self.in_flight,
            mac,
            cell: &cell,
        };
        cell.get_or_try_init(|| self.gate.verify_any(candidates, secret, &self.metrics))
            .await
            .copied()
    }

    /// HMAC-SHA256 of the client id and secret under the per-process key.
    fn secret_mac(&self, client_id: &str, secret: &ClientSecret) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.mac_key);
        ctx.update(&(client_id.len() as u64).to_be_bytes());
        ctx.update(client_id.as_bytes());
        ctx.update(secret.expose().as_bytes());
        let mut mac = [0u8; 32];
        mac.copy_from_slice(ctx.sign().as_ref());
        mac
    }

    /// True when `mac` matches a remembered verification of one of the
    /// client's secrets that is still in its current record, live. Every
    /// entry is compared, in constant time.
    fn is_remembered(&self, client: &ClientRecord, mac: &[u8; 32], now: UnixTime) -> bool {
        use subtle::ConstantTimeEq as _;
        let Some(entries) = self.remembered.get(&client.client_id) else {
            return false;
        };
        entries.iter().fold(false, |found, entry| {
            let live = client
                .secrets
                .iter()
                .any(|s| s.secret_id == entry.secret_id && s.is_live(now));
            found | (bool::from(entry.mac.ct_eq(mac)) & live)
        })
    }

    fn remember(&self, client_id: &str, mac: [u8; 32], secret_id: &str) {
        if self.remembered.len() >= MAX_REMEMBERED_CLIENTS {
            self.remembered.clear();
        }
        /// A client holds a handful of live secrets; more entries are stale.
        const MAX_PER_CLIENT: usize = 8;
        let mut entries = self.remembered.entry(client_id.to_owned()).or_default();
        if !entries.iter().any(|e| e.mac == mac) {
            if entries.len() == MAX_PER_CLIENT {
                entries.remove(0);
            }
            entries.push(Remembered {
                mac,
                secret_id: secret_id.to_owned(),
            });
        }
    }

    /// argon2 verification batches run so far.
    pub fn hashing_runs(&self) -> u64 {
        self.gate.runs()
    }

    /// Shared verifications under way (a test hook: none may outlive its callers).
    #[cfg(test)]
    fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Remembered verifications, for metrics and tests.
    pub fn remembered_count(&self) -> usize {
        self.remembered.iter().map(|e| e.len()).sum()
    }

    /// The client with this id, from the hot copies or else the store.
    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, AuthError> {
        if let Some(hot) = self.clients.get(client_id) {
            return Ok(Some(hot.clone()));
        }
        let epoch = self.client_epoch.load(Ordering::Acquire);
        let Some(record) = self.store.client(client_id).await.map_err(store_unavailable)? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        if self.client_epoch.load(Ordering::Acquire) == epoch {
            self.clients.insert(record.client_id.clone(), record.clone());
        }
        Ok(Some(record))
    }

    fn mint(
        &self,
        client_id: &str,
        scopes: Vec<String>,
        audiences: Vec<String>,
        ttl: u32,
    ) -> Result<IssuedToken, AuthError> {
        let now = self.clock.now();
        let jti = URL_SAFE_NO_PAD.encode(secret::random_bytes::<16>());
        let aud = match audiences.as_slice() {
            [one] => Audience::One(one),
            many => Audience::Many(many),
        };
        let claims = AccessTokenClaims {
            iss: &self.config.issuer,
            sub: client_id,
            client_id,
            aud,
            scope: scopes.join(" "),
            exp: now + i64::from(ttl),
            iat: now,
            nbf: now,
            jti: &jti,
        };
        let signed = self
            .key_ring()
            .signer(now)
            .sign_jwt(&claims)
            .map_err(AuthError::Internal)?;
        Ok(IssuedToken {
            client_id: client_id.to_owned(),
            access_token: AccessToken(signed),
            expires_in: ttl,
            scopes,
            audiences,
            jti,
        })
    }

    /// Brings the hot copies up to date if the store changed since the last
    /// look. Returns true when something changed.
    ///
    /// # Errors
    /// When the store cannot be read; the hot copies are then kept as they are.
    pub async fn sync_with_store(&self) -> Result<bool, StoreError> {
        let now = self.store.generations().await?;
        let seen = *self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now == seen {
            return Ok(false);
        }
        if now.keys != seen.keys {
            self.reload_keys().await?;
        }
        if now.revocations != seen.revocations {
            // Only the revocations recorded since the last look: the deny-list
            // is read once per replica, not again on every change.
            let cursor = self.revocation_cursor.load(Ordering::Acquire);
            let (added, cursor) = self.store.revoked_tokens_after(self.clock.now(), cursor).await?;
            for entry in added {
                self.denied.insert(entry.jti, entry.expires_at);
            }
            self.revocation_cursor.store(cursor, Ordering::Release);
        }
        if now.clients != seen.clients {
            self.client_epoch.fetch_add(1, Ordering::AcqRel);
            self.clients.clear();
        }
        *self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = now;
        Ok(true)
    }

    async fn reload_keys(&self) -> Result<(), StoreError> {
        let records = self.store.signing_keys().await?;
        match KeyRing::load(&records, self.config.max_token_ttl) {
            Ok(ring) => {
                let before: Vec<String> = self.key_ring().keys().iter().map(|k| k.kid().to_owned()).collect();
                for gone in before
                    .iter()
                    .filter(|kid| !ring.keys().iter().any(|k| k.kid() == kid.as_str()))
                {
                    warn!(target: "tessera::audit", event = "signing_key_removed", kid = %gone);
                }
                for added in ring.keys().iter().filter(|k| !before.iter().any(|kid| kid == k.kid())) {
                    info!(target: "tessera::audit", event = "signing_key_added", kid = %added.kid(), activates_at = added.activates_at());
                }
                let mut keys = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                let _old = mem::replace(&mut *keys, Arc::new(ring));
                drop(keys);
                // A revoked key's tokens must not stay active through the cache.
                self.verified.clear();
            }
            Err(e) => warn!(error = %e, "keys in the store did not load; keeping the current ones"),
        }
        Ok(())
    }

    /// The metrics, recorded by the core and the faces.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus text exposition of every metric, now.
    pub fn render_metrics(&self) -> String {
        let errors = STORE_ERRORS.load(Ordering::Relaxed);
        let seen = self.store_errors_seen.swap(errors, Ordering::AcqRel);
        for _ in seen..errors {
            self.metrics.store_error();
        }
        let now = self.clock.now();
        self.metrics.render(Snapshot {
            signing_keys: self.key_ring().jwks(now).len(),
            denylist: self.denied.len(),
            hashing_busy: self.gate.busy(),
            hashing_waiting: self.metrics.hashing_waiting(),
            remembered: self.remembered_count(),
            verified_tokens: self.verified.len(),
            store_reachable: self.store_health() == StoreHealth::Reachable,
        })
    }

    /// Marks the server as shutting down: readiness probes and the gRPC
    /// health service report it at once, so load balancers stop sending.
    pub fn begin_draining(&self) {
        self.store_state.draining.store(true, Ordering::Release);
        self.store_state.changed.notify_waiters();
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.store_state.draining.load(Ordering::Acquire)
    }

    /// Woken (`notify_waiters`) whenever readiness may have changed.
    pub fn health_changed(&self) -> Arc<tokio::sync::Notify> {
        self.store_state.changed.clone()
    }

    /// How current the hot copies are.
    pub fn store_health(&self) -> StoreHealth {
        if self.store_state.stale.load(Ordering::Acquire) {
            StoreHealth::Stale
        } else if self.store_state.unreachable.load(Ordering::Acquire) {
            StoreHealth::Unreachable
        } else {
            StoreHealth::Reachable
        }
    }

    /// Refuses to answer from hot copies older than the staleness window:
    /// a revocation or a disable made elsewhere meanwhile would go unseen.
    pub(crate) fn check_store_fresh(&self) -> Result<(), AuthError> {
        if self.store_state.stale.load(Ordering::Acquire) {
            return Err(AuthError::TemporarilyUnavailable(
                "Tessera cannot reach its store and its copies are too old to trust; retry shortly".into(),
            ));
        }
        Ok(())
    }

    /// Keeps the hot copies current: looks at the store's change counters
    /// whenever the store signals a change (PostgreSQL's NOTIFY) and every
    /// `interval` regardless, so changes made by the CLI or another replica
    /// take effect at once, or within about one interval when unsignalled.
    ///
    /// While the store is out of reach the copies keep serving; once it has
    /// been out of reach for longer than `staleness`, issuance and
    /// introspection answer `temporarily_unavailable` until it is back.
    pub fn spawn_store_watch(self: &Arc<Self>, interval: Duration, staleness: Duration) -> tokio::task::JoinHandle<()> {
        let signal = self.store.change_signal();
        let authority = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut down_since: Option<tokio::time::Instant> = None;
            loop {
                let ticked = match &signal {
                    Some(signal) => tokio::select! {
                        _ = tick.tick() => true,
                        () = signal.notified() => false,
                    },
                    None => {
                        tick.tick().await;
                        true
                    }
                };
                let Some(authority) = authority.upgrade() else {
                    return;
                };
                if ticked {
                    authority.housekeeping().await;
                }
                let state = &authority.store_state;
                match authority.sync_with_store().await {
                    Ok(changed) => {
                        if changed {
                            info!("store changed; reloaded what changed");
                        }
                        if down_since.take().is_some() {
                            state.unreachable.store(false, Ordering::Release);
                            state.stale.store(false, Ordering::Release);
                            state.changed.notify_waiters();
                            info!("store reachable again");
                        }
                    }
                    Err(e) => {
                        STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
                        let since = *down_since.get_or_insert_with(|| {
                            state.unreachable.store(true, Ordering::Release);
                            warn!(error = %e, "cannot reach the store; serving from memory for up to {}s", staleness.as_secs());
                            tokio::time::Instant::now()
                        });
                        if since.elapsed() >= staleness && !state.stale.swap(true, Ordering::AcqRel) {
                            state.changed.notify_waiters();
                            warn!(error = %e, "store out of reach for over {}s; answering temporarily_unavailable until it is back", staleness.as_secs());
                        }
                    }
                }
            }
        })
    }
}

impl Authority {
    /// Periodic upkeep, run from the store watch: forget revocations of
    /// expired tokens, and rotate the signing key when it is due.
    async fn housekeeping(&self) {
        let now = self.clock.now();
        self.denied.retain(|_, exp| *exp > now);
        self.verified.retain(|_, token| token.exp > now);
        self.throttle.forget_expired(now);
        if let Some(period) = self.config.key_rotation {
            let newest = self.key_ring().newest().clone();
            if newest.created_at() + period.as_secs() as i64 <= now {
                let publish_ahead = self.config.key_publish_ahead.as_secs() as i64;
                // The algorithm the deployment signs with now, not the flag's
                // default: a restart without --signing-alg must not turn an
                // RS256 deployment into an ES256 one at the next rotation.
                let alg = newest.algorithm();
                let fresh = tokio::task::spawn_blocking(move || SigningKey::generate(alg, now)).await;
                match fresh {
                    Ok(Ok(mut record)) => {
                        record.activates_at = now + publish_ahead;
                        // Only on top of the key we saw, so replicas rotating at once add one key.
                        match self.store.add_signing_key(record.clone(), Some(newest.kid())).await {
                            Ok(true) => {
                                info!(target: "tessera::audit", event = "signing_key_rotated", kid = %record.kid, activates_at = record.activates_at)
                            }
                            Ok(false) => {
                                info!("scheduled key rotation: another process rotated first; reloading keys")
                            }
                            Err(e) => warn!(error = %e, "scheduled key rotation failed; will retry"),
                        }
                    }
                    Ok(Err(e)) => warn!(error = %e, "generating a signing key failed"),
                    Err(e) => warn!(error = %e, "key generation task failed"),
                }
            }
        }
        // Every minute: a revoked token's row is useless once the token
        // expires, and hourly pruning let the table (and the store's page
        // cache with it) grow for an hour under steady revocations, which the
        // soak saw as resident memory creeping up (BENCHMARKS.md). The delete
        // uses the expiry index and touches only rows that expired.
        const PRUNE_EVERY_SECS: i64 = 60;
        let last = self.last_prune.load(Ordering::Acquire);
        let due = now - last >= PRUNE_EVERY_SECS;
        if due
            && self
                .last_prune
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // Only one task prunes per period; a failure is retried next period.
            if let Err(e) = self.store.prune_expired(now).await {
                warn!(error = %e, "pruning revoked tokens failed");
            }
        }
    }
}

/// Decides which presented credential counts, refusing ambiguity
/// (RFC 6749 §2.3: a client MUST NOT use more than one method per request).
/// `allow_bearer`: whether a bearer token may stand for its client.
fn resolve_credentials(presented: PresentedCredentials, allow_bearer: bool) -> Result<Credential, AuthError> {
    let PresentedCredentials {
        authorization,
        client_id,
        client_secret,
        client_assertion_type,
        client_assertion,
        client_certificate: _,
        source: _,
    } = presented;
    let uses_assertion = client_assertion_type.is_some() || client_assertion.is_some();
    let methods = [authorization.is_some(), client_secret.is_some(), uses_assertion]
        .iter()
        .filter(|m| **m)
        .count();
    if methods > 1 {
        return Err(AuthError::invalid_request(
            "the request uses more than one client authentication method; use exactly one (RFC 6749 section 2.3)",
        ));
    }
    if let Some(id) = &client_id {
        check_client_id(id)?;
    }
    if let Some(secret) = &client_secret {
        check_secret(secret)?;
    }
    match authorization {
        Some(Authorization::Basic {
            client_id: basic_id,
            secret,
        }) => {
            check_client_id(&basic_id)?;
            check_secret(&secret)?;
            if client_id.as_ref().is_some_and(|body_id| *body_id != basic_id) {
                return Err(AuthError::invalid_request(
                    "client_id in the body does not match the client id of the Authorization header",
                ));
            }
            return Ok(Credential::Secret {
                client_id: basic_id,
                secret,
                challenge: Challenge::Basic,
            });
        }
        Some(Authorization::Bearer(token)) if allow_bearer => {
            if client_id.is_some() {
                return Err(AuthError::invalid_request(
                    "client_id cannot accompany a Bearer token; the token names its client",
                ));
            }
            return Ok(Credential::Bearer(token));
        }
        // A bearer token does not authenticate a client at the token endpoint.
        Some(Authorization::Bearer(_)) => {
            return Err(AuthError::InvalidClient {
                challenge: Challenge::Basic,
            });
        }
        None => {}
    }
    if let Some(secret) = client_secret {
        let Some(client_id) = client_id else {
            return Err(AuthError::invalid_request("client_secret was sent without client_id"));
        };
        return Ok(Credential::Secret {
            client_id,
            secret,
            challenge: Challenge::None,
        });
    }
    if uses_assertion {
        if client_assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
            return Err(AuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        let Some(assertion) = client_assertion else {
            return Err(AuthError::invalid_request(
                "client_assertion_type was sent without client_assertion",
            ));
        };
        return Ok(Credential::Assertion { client_id, assertion });
    }
    // No credential at all: the client did not authenticate (RFC 6749 §5.2).
    Err(AuthError::InvalidClient {
        challenge: Challenge::None,
    })
}

fn check_client_id(id: &str) -> Result<(), AuthError> {
    if id.len() > MAX_CLIENT_ID_LEN {
        return Err(AuthError::invalid_request(format!(
            "client_id is longer than {MAX_CLIENT_ID_LEN} bytes"
        )));
    }
    Ok(())
}

fn check_secret(secret: &ClientSecret) -> Result<(), AuthError> {
    if secret.expose().len() > secret::MAX_SECRET_LEN {
        return Err(AuthError::invalid_request(format!(
            "client_secret is longer than {} bytes",
            secret::MAX_SECRET_LEN
        )));
    }
    Ok(())
}

/// Caller-supplied text echoed in a description or a log line, cut short.
fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;

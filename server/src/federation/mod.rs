//! Trusted issuers: the platforms (Kubernetes, SPIRE, a CI system) whose
//! identity tokens stand as client credentials, and their signing keys,
//! kept current.
//!
//! The store says which issuers are trusted; every replica keeps a
//! [`TrustedIssuers`] that follows it (see `authority::replica`). Keys given
//! inline are parsed once. Keys behind a URL are fetched when the trust
//! appears, again every `refresh_every`, and on a token naming a `kid` the
//! issuer has not shown us yet: at most once per `min_refetch` per issuer,
//! one fetch at a time, so a flood of made-up `kid`s costs one fetch per
//! interval. A failed fetch keeps the keys already known: the issuer's
//! outage does not become ours.

mod fetch;
mod jwks;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;
use tracing::{info, warn};

pub use jwks::{MAX_JWKS_BYTES, VerifyingKey, parse_jwks, select};

use crate::audit;
use crate::store::{JwksSource, TrustedIssuerRecord};
use fetch::Fetcher;

/// How trusted issuers' keys are kept current.
#[derive(Debug, Clone, Copy)]
pub struct FederationConfig {
    /// Fetch every issuer's keys this often.
    pub refresh_every: Duration,
    /// Fetch one issuer's keys at most this often for unknown `kid`s.
    pub min_refetch: Duration,
    /// Give up on one fetch after this long.
    pub fetch_timeout: Duration,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            refresh_every: Duration::from_secs(300),
            min_refetch: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// The trusted issuers a replica knows, by issuer.
pub struct TrustedIssuers {
    config: FederationConfig,
    /// This server's issuer: a trust naming it is ignored, so that no
    /// access token of ours can ever authenticate a client.
    own_issuer: String,
    issuers: RwLock<Arc<HashMap<String, Arc<TrustedIssuer>>>>,
    /// Platform tokens whose signature verified, by SHA-256 of the token: a
    /// workload presents the same token for most of its life, so a warm
    /// request costs a hash, not a signature check.
    verified: dashmap::DashMap<[u8; 32], Verified>,
}

/// One trusted issuer and the keys known for it.
pub struct TrustedIssuer {
    /// The trust as stored.
    pub record: TrustedIssuerRecord,
    keys: ArcSwap<Vec<VerifyingKey>>,
    /// `None` for inline keys, or when no client could be built (the reason was logged).
    fetcher: Option<Fetcher>,
    /// When a fetch last started; the lock makes fetches one at a time.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// When keys were last fetched successfully.
    fetched_at: RwLock<Option<Instant>>,
}

impl TrustedIssuers {
    /// No trusted issuer yet; `own_issuer` is this server's, never trusted.
    pub fn new(config: FederationConfig, own_issuer: &str) -> Self {
        Self {
            config,
            own_issuer: own_issuer.trim_end_matches('/').to_owned(),
            issuers: RwLock::new(Arc::new(HashMap::new())),
            verified: dashmap::DashMap::new(),
        }
    }

    /// Whether any issuer is trusted.
    pub fn any(&self) -> bool {
        !self.current().is_empty()
    }

    /// The trusted issuer of this name.
    pub fn get(&self, issuer: &str) -> Option<Arc<TrustedIssuer>> {
        self.current().get(issuer).cloned()
    }

    fn current(&self) -> Arc<HashMap<String, Arc<TrustedIssuer>>> {
        self.issuers
            .read()
            .map(|map| map.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Follows the store: issuers whose record is unchanged keep their keys;
    /// new or changed ones load theirs (inline at once, URLs in the background).
    pub fn update(&self, records: Vec<TrustedIssuerRecord>) {
        let before = self.current();
        let mut after = HashMap::with_capacity(records.len());
        for record in records {
            if record.issuer.trim_end_matches('/') == self.own_issuer {
                warn!(issuer = %record.issuer, "a trust names this server's own issuer and is ignored: its access tokens are never client credentials (tessera trust remove ISSUER_URL)");
                continue;
            }
            let kept = before
                .get(&record.issuer)
                .filter(|known| known.record == record)
                .cloned();
            let issuer = kept.unwrap_or_else(|| {
                info!(target: "tessera::audit", event = audit::ISSUER_TRUSTED, issuer = %record.issuer, jwks = record.jwks.kind());
                let fresh = Arc::new(TrustedIssuer::new(record, self.config.fetch_timeout));
                if fresh.fetcher.is_some() {
                    let first = fresh.clone();
                    let min_refetch = self.config.min_refetch;
                    tokio::spawn(async move { first.fetch(min_refetch).await });
                }
                fresh
            });
            after.insert(issuer.record.issuer.clone(), issuer);
        }
        for gone in before.keys().filter(|issuer| !after.contains_key(*issuer)) {
            info!(target: "tessera::audit", event = audit::ISSUER_UNTRUSTED, issuer = %gone);
        }
        *self.issuers.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(after);
    }

    /// Starts a fetch for every issuer whose keys are older than `refresh_every`.
    pub fn refresh_due(&self) {
        for issuer in self.current().values() {
            if issuer.fetcher.is_some() && issuer.due(self.config.refresh_every) {
                let issuer = issuer.clone();
                let min_refetch = self.config.min_refetch;
                tokio::spawn(async move { issuer.fetch(min_refetch).await });
            }
        }
    }

    /// Runs `verify` with the key the token's header names, fetching the
    /// issuer's keys first if no known key matches (rate-limited). Returns
    /// the key set the key came from, with `verify`'s answer.
    pub async fn with_key<T>(
        &self,
        issuer: &TrustedIssuer,
        kid: Option<&str>,
        verify: impl Fn(&VerifyingKey) -> T,
    ) -> Option<(T, KeySet)> {
        let keys = issuer.keys.load_full();
        if let Some(key) = jwks::select(&keys, kid) {
            return Some((verify(key), keys));
        }
        // Keys given inline change only with the trust itself.
        issuer.fetcher.as_ref()?;
        issuer.fetch(self.config.min_refetch).await;
        let keys = issuer.keys.load_full();
        let answer = jwks::select(&keys, kid).map(verify)?;
        Some((answer, keys))
    }

    /// A token verified earlier, by the SHA-256 of its bytes, with its
    /// issuer, if the trust and the key set it was verified under are still
    /// the current ones.
    pub fn verified(&self, digest: &[u8; 32]) -> Option<(Arc<TrustedIssuer>, TokenClaims)> {
        let entry = self.verified.get(digest)?;
        let issuer = self.get(&entry.issuer.record.issuer)?;
        let current = Arc::ptr_eq(&entry.issuer, &issuer) && Arc::ptr_eq(&entry.keys, &issuer.keys.load_full());
        current.then(|| (issuer, entry.claims.clone()))
    }

    /// Remembers a verified token until `exp`; past the bound, expired ones
    /// go, then all.
    pub fn remember(&self, digest: [u8; 32], issuer: Arc<TrustedIssuer>, keys: KeySet, claims: TokenClaims, now: i64) {
        if self.verified.len() >= MAX_VERIFIED_TOKENS {
            self.verified.retain(|_, entry| entry.claims.exp > now);
            if self.verified.len() >= MAX_VERIFIED_TOKENS {
                self.verified.clear();
            }
        }
        self.verified.insert(digest, Verified { issuer, keys, claims });
    }

    /// How the trusted issuers stand, for metrics.
    pub fn health(&self) -> FederationHealth {
        let issuers = self.current();
        let stale_after = self.config.refresh_every * 2;
        FederationHealth {
            issuers: issuers.len(),
            without_keys: issuers.values().filter(|i| i.key_count() == 0).count(),
            stale: issuers
                .values()
                .filter(|i| i.fetcher.is_some() && i.due(stale_after))
                .count(),
            verified_tokens: self.verified.len(),
        }
    }

    /// Forgets verified tokens that expired by `now`.
    pub fn forget_expired(&self, now: i64) {
        self.verified.retain(|_, entry| entry.claims.exp > now);
    }
}

/// The claims of a platform token Tessera checks. Time claims are
/// integers; another JSON type fails deserialisation (docs/THREATS.md, row C-10).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TokenClaims {
    /// The issuer the token names, if any (a JWT-SVID need not).
    #[serde(default)]
    pub iss: Option<String>,
    /// The subject, bound to a client.
    pub sub: String,
    /// Expiry.
    pub exp: i64,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Issued at.
    #[serde(default)]
    pub iat: Option<i64>,
}

/// How the trusted issuers stand, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct FederationHealth {
    /// Trusted issuers.
    pub issuers: usize,
    /// Of those, with no usable key (never fetched, or an unusable stored set).
    pub without_keys: usize,
    /// Of those fetched from a URL, not fetched successfully for two refresh periods.
    pub stale: usize,
    /// Platform tokens remembered as verified.
    pub verified_tokens: usize,
}

/// A trusted issuer's keys as one snapshot; swapped whole on every fetch.
pub type KeySet = Arc<Vec<VerifyingKey>>;

/// Most platform tokens remembered as verified: one per workload instance
/// (a pod reuses its token for most of an hour), a few hundred bytes each.
const MAX_VERIFIED_TOKENS: usize = 20_000;

/// A platform token that verified, and under what: the entry counts only
/// while that trust and that key set are the current ones, so removing a
/// trust, changing it, or any fetch of its keys sends the token through a
/// full verification again.
struct Verified {
    issuer: Arc<TrustedIssuer>,
    keys: KeySet,
    claims: TokenClaims,
}

impl TrustedIssuer {
    fn new(record: TrustedIssuerRecord, timeout: Duration) -> Self {
        let (keys, fetcher) = match &record.jwks {
            JwksSource::Inline(text) => {
                let keys = parse_jwks(text).unwrap_or_else(|e| {
                    warn!(issuer = %record.issuer, error = %e, "the trusted issuer's stored keys are unusable");
                    Vec::new()
                });
                (keys, None)
            }
            JwksSource::Url(_) | JwksSource::Discovery => {
                let fetcher = Fetcher::new(&record, timeout)
                    .inspect_err(
                        |e| warn!(issuer = %record.issuer, error = %e, "cannot fetch the trusted issuer's keys"),
                    )
                    .ok();
                (Vec::new(), fetcher)
            }
        };
        Self {
            record,
            keys: ArcSwap::from_pointee(keys),
            fetcher,
            last_fetch: tokio::sync::Mutex::new(None),
            fetched_at: RwLock::new(None),
        }
    }

    /// The number of keys known now.
    pub fn key_count(&self) -> usize {
        self.keys.load().len()
    }

    fn due(&self, refresh_every: Duration) -> bool {
        let fetched_at = *self.fetched_at.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        fetched_at.is_none_or(|at| at.elapsed() >= refresh_every)
    }

    /// Fetches the keys unless a fetch started less than `min_interval` ago
    /// (then the caller uses what that fetch brought). One at a time.
    async fn fetch(&self, min_interval: Duration) {
        let Some(fetcher) = &self.fetcher else {
            return;
        };
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < min_interval) {
            return;
        }
        *last = Some(Instant::now());
        match fetcher.keys(&self.record).await {
            Ok(keys) => {
                let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
                info!(issuer = %self.record.issuer, keys = keys.len(), kids = %kids.join(" "), "trusted issuer's keys fetched");
                self.keys.store(Arc::new(keys));
                *self.fetched_at.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
            }
            Err(e) => warn!(
                target: "tessera::audit",
                event = audit::ISSUER_KEYS_FETCH_FAILED,
                issuer = %self.record.issuer,
                error = %e,
                kept = self.key_count(),
                "fetching a trusted issuer's keys failed; keeping the keys known"
            ),
        }
    }
}

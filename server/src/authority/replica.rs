//! The hot copies of the store that a replica answers from: signing keys,
//! clients, the deny-list of revoked tokens, and the tokens whose signature
//! already verified; and how they follow the store.
//!
//! The store is the truth and every replica reads it; these copies make a
//! warm request cost no store read. They follow the store's change counters
//! ([`Generations`]): each counter that moved reloads what it counts, so a
//! change made by the CLI or another replica applies within one look.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;
use tracing::{info, warn};

use super::introspect::ActiveToken;
use crate::clock::{Clock, UnixTime};
use crate::federation::{FederationConfig, TrustedIssuers};
use crate::keys::{KeyCustody, KeyRing, SigningKey};
use crate::store::{ClientRecord, Generations, Store, StoreError};

/// Most verified tokens remembered; beyond it expired ones go, then all.
/// Sized for the working set resource servers re-introspect (a few hundred
/// bytes each, so about 12 MB at most); the soak showed 100,000 cost ~60 MB.
const MAX_VERIFIED_TOKENS: usize = 20_000;

/// The key of the memories of verified tokens (access tokens for
/// introspection, platform tokens for authentication): a token's SHA-256.
pub(super) fn token_digest(token: &str) -> [u8; 32] {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
    digest
}

/// What one replica holds of the store.
pub(crate) struct Replica {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Keys are published at least this long after they stop signing.
    max_token_ttl: u32,
    /// Swapped whole when the store's keys change; readers clone the `Arc`.
    keys: RwLock<Arc<KeyRing>>,
    /// Decrypts keys this replica has not loaded before.
    custody: Arc<KeyCustody>,
    /// Whether the store's keys failed to load at the last look (warned once).
    keys_failing: AtomicBool,
    /// Clients read so far. Cleared whenever the store's client counter moves.
    clients: DashMap<String, Arc<ClientRecord>>,
    /// Bumped on every clear, so a store read that began before a change
    /// does not put a stale copy back into `clients`.
    client_epoch: AtomicU64,
    /// Platform identities seen so far → their client; cleared with `clients`.
    federated: DashMap<(String, String), String>,
    /// Trusted issuers and their keys; reloaded when the store's trust counter moves.
    pub(super) trusted: TrustedIssuers,
    /// The store generations the copies reflect.
    seen: Mutex<Generations>,
    /// Revoked tokens' `jti` → `exp`, kept until they expire anyway. Read on
    /// every introspection, so it lives in memory; the store is its truth.
    denied: DashMap<String, UnixTime>,
    /// Position of the newest revocation read from the store.
    revocation_cursor: AtomicU64,
    /// Tokens whose signature verified, by SHA-256 of the token, so a repeat
    /// introspection is nearly free. Dropped whenever signing keys change.
    verified: DashMap<[u8; 32], Arc<ActiveToken>>,
    /// Whether the store answered the last look, and for how long it has not.
    pub(super) state: StoreState,
}

/// What the store watch last learned about the store, read on every request.
#[derive(Debug, Default)]
pub(super) struct StoreState {
    pub(super) unreachable: AtomicBool,
    pub(super) stale: AtomicBool,
    /// Woken when readiness may have changed.
    pub(super) changed: Arc<tokio::sync::Notify>,
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

/// The signing keys a replica starts with: those in the store (the first
/// one created if there is none), decrypted; keys stored in the clear are
/// encrypted now when a KEK is given.
async fn first_ring(
    store: &dyn Store,
    now: UnixTime,
    max_token_ttl: u32,
    first_key: crate::keys::KeyAlgorithm,
    custody: &KeyCustody,
) -> Result<KeyRing, String> {
    let mut records = store.signing_keys().await.map_err(|e| e.to_string())?;
    // With an HSM key, nothing signs from the store: none is created.
    if records.is_empty() && custody.hsm_key().is_none() {
        let fresh = custody.seal(SigningKey::generate(first_key, now)?)?;
        records = store.insert_first_signing_key(fresh).await.map_err(|e| e.to_string())?;
    }
    // Refuses a KEK that is missing or wrong before anything is written.
    let ring = KeyRing::load(&records, max_token_ttl, custody, None).map_err(|e| e.to_string())?;
    let signer = ring.signer(now);
    info!(
        kid = signer.kid(),
        alg = signer.algorithm().jws_name(),
        keys = ring.keys().len(),
        "signing keys loaded"
    );
    match custody.kek_id() {
        None if records.is_empty() => {}
        None => warn!(
            "signing keys are stored in the clear: whoever reads the store (a dump, a backup) can mint tokens; \
             give a key encryption key with --key-encryption-key-file (`tessera keys generate-kek` makes one)"
        ),
        Some(kek) => {
            let changes = custody.reseal_all(&records, custody).map_err(|e| e.to_string())?;
            if !changes.is_empty() {
                let count = changes.len();
                if store
                    .replace_signing_key_material(changes)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    info!(target: "tessera::audit", event = crate::audit::SIGNING_KEYS_ENCRYPTED, keys = count, kek = %kek);
                }
            }
        }
    }
    Ok(ring)
}

impl Replica {
    /// Reads keys and revocations from the store, creating the first signing
    /// key (of `first_key`'s algorithm) when the store has none.
    pub(super) async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        max_token_ttl: u32,
        first_key: crate::keys::KeyAlgorithm,
        federation: FederationConfig,
        own_issuer: &str,
        custody: Arc<KeyCustody>,
    ) -> Result<Self, String> {
        let generations = store.generations().await.map_err(|e| e.to_string())?;
        let ring = first_ring(store.as_ref(), clock.now(), max_token_ttl, first_key, &custody).await?;
        let denied = DashMap::new();
        let (revoked, cursor) = store
            .revoked_tokens_after(clock.now(), 0)
            .await
            .map_err(|e| e.to_string())?;
        for revoked in revoked {
            denied.insert(revoked.jti, revoked.expires_at);
        }
        let trusted = TrustedIssuers::new(federation, own_issuer);
        trusted.update(store.trusted_issuers().await.map_err(|e| e.to_string())?);
        Ok(Self {
            store,
            clock,
            max_token_ttl,
            keys: RwLock::new(Arc::new(ring)),
            custody,
            keys_failing: AtomicBool::new(false),
            clients: DashMap::new(),
            client_epoch: AtomicU64::new(0),
            federated: DashMap::new(),
            trusted,
            seen: Mutex::new(generations),
            denied,
            revocation_cursor: AtomicU64::new(cursor),
            verified: DashMap::new(),
            state: StoreState::default(),
        })
    }

    /// The current key ring.
    pub(super) fn key_ring(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The client with this id, from the hot copies or else the store.
    pub(super) async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        if let Some(hot) = self.clients.get(client_id) {
            return Ok(Some(hot.clone()));
        }
        let epoch = self.client_epoch.load(Ordering::Acquire);
        let Some(record) = self.store.client(client_id).await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        if self.client_epoch.load(Ordering::Acquire) == epoch {
            self.clients.insert(record.client_id.clone(), record.clone());
        }
        Ok(Some(record))
    }

    /// The client a platform identity is bound to, from the hot copies or
    /// else the store. Only found bindings are kept: an unknown subject
    /// costs a store lookup, as an unknown client id does.
    pub(super) async fn client_for_identity(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
        let key = (issuer.to_owned(), subject.to_owned());
        if let Some(hot) = self.federated.get(&key) {
            return Ok(Some(hot.clone()));
        }
        let epoch = self.client_epoch.load(Ordering::Acquire);
        let found = self.store.client_for_federated_identity(issuer, subject).await?;
        if let Some(client_id) = &found
            && self.client_epoch.load(Ordering::Acquire) == epoch
        {
            self.federated.insert(key, client_id.clone());
        }
        Ok(found)
    }

    /// Whether the token with this `jti` is revoked.
    pub(super) fn is_denied(&self, jti: &str) -> bool {
        self.denied.contains_key(jti)
    }

    /// Records a revocation this replica made durable.
    pub(super) fn deny(&self, jti: String, expires_at: UnixTime) {
        self.denied.insert(jti, expires_at);
    }

    /// Revoked tokens not yet expired.
    pub(super) fn denied_count(&self) -> usize {
        self.denied.len()
    }

    /// A token verified earlier, by the SHA-256 of its bytes.
    pub(super) fn verified(&self, digest: &[u8; 32]) -> Option<Arc<ActiveToken>> {
        self.verified.get(digest).map(|t| t.clone())
    }

    /// Remembers a verified token; past the bound, expired ones go, then all.
    pub(super) fn remember_verified(&self, digest: [u8; 32], token: ActiveToken, now: UnixTime) {
        if self.verified.len() >= MAX_VERIFIED_TOKENS {
            self.verified.retain(|_, t| t.exp > now);
            if self.verified.len() >= MAX_VERIFIED_TOKENS {
                self.verified.clear();
            }
        }
        self.verified.insert(digest, Arc::new(token));
    }

    /// Verified tokens remembered.
    pub(super) fn verified_count(&self) -> usize {
        self.verified.len()
    }

    /// Forgets revocations and verifications of tokens expired by `now`.
    pub(super) fn forget_expired(&self, now: UnixTime) {
        self.denied.retain(|_, exp| *exp > now);
        self.verified.retain(|_, token| token.exp > now);
    }

    /// Brings the copies up to date if the store changed since the last
    /// look. Returns true when something changed.
    ///
    /// # Errors
    /// When the store cannot be read; the copies are then kept as they are.
    pub(super) async fn sync(&self) -> Result<bool, StoreError> {
        let now = self.store.generations().await?;
        let seen = *self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now == seen {
            return Ok(false);
        }
        let mut now = now;
        if now.keys != seen.keys && !self.reload_keys().await? {
            // Looked at again next time: a key sealed under a KEK this
            // replica has not read yet loads once its file is updated.
            now.keys = seen.keys;
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
            self.federated.clear();
        }
        if now.trust != seen.trust {
            self.trusted.update(self.store.trusted_issuers().await?);
        }
        *self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = now;
        Ok(true)
    }

    /// Loads the store's keys; false (the current ring kept, and a warning
    /// the first time) when they do not load.
    async fn reload_keys(&self) -> Result<bool, StoreError> {
        let records = self.store.signing_keys().await?;
        match KeyRing::load(&records, self.max_token_ttl, &self.custody, Some(&self.key_ring())) {
            Ok(ring) => {
                let before: Vec<String> = self.key_ring().keys().iter().map(|k| k.kid().to_owned()).collect();
                for gone in before
                    .iter()
                    .filter(|kid| !ring.keys().iter().any(|k| k.kid() == kid.as_str()))
                {
                    warn!(target: "tessera::audit", event = crate::audit::SIGNING_KEY_REMOVED, kid = %gone);
                }
                for added in ring.keys().iter().filter(|k| !before.iter().any(|kid| kid == k.kid())) {
                    info!(target: "tessera::audit", event = crate::audit::SIGNING_KEY_ADDED, kid = %added.kid(), activates_at = added.activates_at());
                }
                let mut keys = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                let _old = std::mem::replace(&mut *keys, Arc::new(ring));
                drop(keys);
                // A revoked key's tokens must not stay active through the cache.
                self.verified.clear();
                self.keys_failing.store(false, Ordering::Release);
                Ok(true)
            }
            Err(e) => {
                if !self.keys_failing.swap(true, Ordering::AcqRel) {
                    warn!(error = %e, "keys in the store did not load; keeping the current ones and trying again");
                }
                Ok(false)
            }
        }
    }

    /// How current the copies are.
    pub(super) fn health(&self) -> StoreHealth {
        if self.state.stale.load(Ordering::Acquire) {
            StoreHealth::Stale
        } else if self.state.unreachable.load(Ordering::Acquire) {
            StoreHealth::Unreachable
        } else {
            StoreHealth::Reachable
        }
    }
}

//! The store watch: the one background task of an authority. It keeps the
//! hot copies current, tracks whether the store is reachable, and runs the
//! periodic upkeep (forgetting what expired, scheduled key rotation, pruning
//! the store's expired revocations).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::{info, warn};

use super::Authority;
use crate::clock::UnixTime;
use crate::keys::SigningKey;

/// How often expired revocations are deleted from the store. A revoked
/// token's row is useless once the token expires; hourly pruning let the
/// table (and the store's page cache with it) grow for an hour under steady
/// revocations, which the soak saw as resident memory creeping up
/// (BENCHMARKS.md). The delete uses the expiry index and touches only rows
/// that expired.
const PRUNE_EVERY_SECS: i64 = 60;

impl Authority {
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
                authority.look_at_store(&mut down_since, staleness).await;
            }
        })
    }

    /// One look at the store: sync the copies, and track reachability.
    async fn look_at_store(&self, down_since: &mut Option<tokio::time::Instant>, staleness: Duration) {
        let state = &self.replica.state;
        match self.replica.sync().await {
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
                self.metrics.store_error();
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

    /// Periodic upkeep, run from the store watch: forget revocations of
    /// expired tokens, rotate the signing key when it is due, prune the store.
    pub(super) async fn housekeeping(&self) {
        let now = self.clock.now();
        self.replica.forget_expired(now);
        self.secrets.forget_expired(now);
        self.replica.trusted.refresh_due();
        self.replica.trusted.forget_expired(now);
        self.rotate_if_due(now).await;
        self.prune_if_due(now).await;
    }

    /// Adds a fresh signing key when the newest is older than the rotation
    /// period. It signs only after `key_publish_ahead`, so verifiers fetch it first.
    async fn rotate_if_due(&self, now: UnixTime) {
        let Some(period) = self.config.key_rotation else {
            return;
        };
        // An HSM key is rotated in the HSM, by its operator, not here.
        if self.config.custody.hsm_key().is_some() {
            return;
        }
        let newest = self.replica.key_ring().newest().clone();
        if newest.created_at() + period.as_secs() as i64 > now {
            return;
        }
        let publish_ahead = self.config.key_publish_ahead.as_secs() as i64;
        // The algorithm the deployment signs with now, not the flag's
        // default: a restart without --signing-alg must not turn an RS256
        // deployment into an ES256 one at the next rotation.
        let alg = newest.algorithm();
        // A key sealed under a KEK the other replicas do not hold (this
        // replica's file not yet updated after a rewrap) would not load there.
        match self
            .store
            .signing_keys()
            .await
            .map(|stored| self.config.custody.check_matches(&stored))
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return warn!(error = %e, "scheduled key rotation skipped; will retry"),
            Err(e) => return warn!(error = %e, "scheduled key rotation failed; will retry"),
        }
        let custody = self.config.custody.clone();
        let fresh = tokio::task::spawn_blocking(move || {
            let mut record = SigningKey::generate(alg, now)?;
            record.activates_at = now + publish_ahead;
            custody.seal(record)
        })
        .await;
        match fresh {
            Ok(Ok(record)) => {
                // Only on top of the key we saw, so replicas rotating at once add one key.
                match self.store.add_signing_key(record.clone(), Some(newest.kid())).await {
                    Ok(true) => {
                        info!(target: "tessera::audit", event = crate::audit::SIGNING_KEY_ROTATED, kid = %record.kid, activates_at = record.activates_at)
                    }
                    Ok(false) => info!("scheduled key rotation: another process rotated first; reloading keys"),
                    Err(e) => warn!(error = %e, "scheduled key rotation failed; will retry"),
                }
            }
            Ok(Err(e)) => warn!(error = %e, "generating a signing key failed"),
            Err(e) => warn!(error = %e, "key generation task failed"),
        }
    }

    /// Deletes expired revocations from the store, once per period across
    /// the tasks of this process; a failure is retried next period.
    async fn prune_if_due(&self, now: UnixTime) {
        let last = self.last_prune.load(Ordering::Acquire);
        let due = now - last >= PRUNE_EVERY_SECS;
        if due
            && self
                .last_prune
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            && let Err(e) = self.store.prune_expired(now).await
        {
            warn!(error = %e, "pruning revoked tokens failed");
        }
    }
}

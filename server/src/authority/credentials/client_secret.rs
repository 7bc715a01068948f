//! Client secrets (`client_secret_basic`, `client_secret_post`, RFC 6749
//! section 2.3.1): argon2id at rest, a salted 64-bit check value beside each
//! hash that turns a wrong secret away before argon2, and a memory of
//! verified secrets that makes a warm client cost a MAC.
//! The hashing itself, and why a 64-bit check value gives nothing away, are
//! in [`crate::authority::secret`].

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;
use tracing::{info, warn};

use super::memory::VerificationMemory;
use super::truncate;
use crate::audit;
use crate::authority::secret::{self, ClientSecret, HashingGate, SecretCheck};
use crate::authority::throttle::{Throttle, ThrottleConfig};
use crate::authority::{AuthError, Authority, Challenge};
use crate::clock::UnixTime;
use crate::metrics::Metrics;
use crate::request_id::RequestId;
use crate::store::{ClientRecord, SecretRecord};

/// Verifications under way, by the MAC of the presented credentials.
type InFlight = DashMap<[u8; 32], Arc<tokio::sync::OnceCell<Option<usize>>>>;

/// Everything the secret check keeps between requests.
pub(in crate::authority) struct SecretVerifier {
    gate: HashingGate,
    memory: VerificationMemory,
    in_flight: InFlight,
    /// Failure limits, for secrets stored before check values existed only.
    throttle: Throttle,
    /// The check value of a random secret, checked when a request names no
    /// usable client, so that the refusal costs what a wrong secret costs.
    dummy_check: String,
}

/// Removes a shared verification from `in_flight` when its caller finishes,
/// or is cancelled mid-wait (a client that hung up, a gRPC deadline): an
/// entry must never outlive every caller that could use it.
struct InFlightEntry<'a> {
    map: &'a InFlight,
    mac: [u8; 32],
    cell: &'a Arc<tokio::sync::OnceCell<Option<usize>>>,
}

impl Drop for InFlightEntry<'_> {
    fn drop(&mut self) {
        self.map
            .remove_if(&self.mac, |_, current| Arc::ptr_eq(current, self.cell));
    }
}

impl SecretVerifier {
    pub(in crate::authority) fn new(gate: HashingGate, throttle: ThrottleConfig) -> Self {
        Self {
            gate,
            memory: VerificationMemory::new(),
            in_flight: DashMap::new(),
            throttle: Throttle::new(throttle),
            dummy_check: SecretCheck::new(&ClientSecret::generate()).into_inner(),
        }
    }

    /// argon2 verification batches run so far.
    pub(in crate::authority) fn hashing_runs(&self) -> u64 {
        self.gate.runs()
    }

    /// argon2 verifications running now.
    pub(in crate::authority) fn hashing_busy(&self) -> usize {
        self.gate.busy()
    }

    /// Remembered verifications.
    pub(in crate::authority) fn remembered_count(&self) -> usize {
        self.memory.count()
    }

    /// Shared verifications under way (a test hook: none may outlive its callers).
    #[cfg(test)]
    pub(in crate::authority) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Forgets failure windows that ended.
    pub(in crate::authority) fn forget_expired(&self, now: UnixTime) {
        self.throttle.forget_expired(now);
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
        metrics: &Metrics,
    ) -> Result<Option<usize>, AuthError> {
        let cell = self.in_flight.entry(mac).or_default().clone();
        let _entry = InFlightEntry {
            map: &self.in_flight,
            mac,
            cell: &cell,
        };
        cell.get_or_try_init(|| self.gate.verify_any(candidates, secret, metrics))
            .await
            .copied()
    }
}

impl Authority {
    /// Authenticates `client_id` by its secret. A secret remembered from an
    /// earlier success costs a MAC; argon2 runs only for a secret that passes
    /// its check value. Unknown, disabled and wrong-secret cases do the same
    /// work and fail with the same error.
    pub(super) async fn authenticate_secret(
        &self,
        client_id: String,
        secret: ClientSecret,
        challenge: Challenge,
        source: Option<IpAddr>,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let verifier = &self.secrets;
        let client = self.client(&client_id).await?;
        let now = self.clock.now();
        let mac = verifier.memory.mac(&client_id, &secret);
        let usable = client.as_ref().filter(|c| !c.disabled);
        if let Some(c) = usable
            && verifier.memory.recalls(c, &mac, now)
        {
            self.metrics.remembered_hit();
            return Ok(c.clone());
        }
        let live: Vec<&SecretRecord> = usable
            .map(|c| c.secrets.iter().filter(|s| s.is_live(now)).collect())
            .unwrap_or_default();
        let candidates = verifier.screen(&live, &secret);
        let refuse = || {
            warn!(target: "tessera::audit", event = audit::CLIENT_AUTHENTICATION_FAILED, request_id = %RequestId::current(), client_id = %truncate(&client_id));
            Err(AuthError::InvalidClient { challenge })
        };
        let (Some(client), false) = (usable, candidates.is_empty()) else {
            return refuse();
        };
        // Secrets stored before check values existed still cost argon2 to
        // refuse, so their failures stay throttled until each has verified
        // once after the upgrade and gained its check value.
        if candidates.iter().any(|c| c.check.is_none()) {
            if let Some(retry_after_secs) = verifier.throttle.retry_after(Some(&client_id), source, now) {
                return Err(AuthError::TooManyRequests { retry_after_secs });
            }
            // Counted before argon2 runs, so a caller that hangs up (or whose
            // gRPC deadline passes) mid-hash is counted all the same. A
            // legacy secret verifies at most once like this: it then gains
            // its check value.
            verifier.throttle.record_failure(Some(&client_id), source, now);
        }
        let phcs = candidates.iter().map(|c| c.phc.clone()).collect();
        let Some(matched) = verifier
            .verify_once(mac, phcs, secret.clone(), &self.metrics)
            .await?
            .and_then(|i| candidates.get(i))
        else {
            return refuse();
        };
        // Safe even if the client changed while argon2 ran: the memory is
        // checked against the client's record at each use.
        verifier.memory.remember(&client.client_id, mac, &matched.secret_id);
        if matched.check.is_none() {
            self.record_check(&client.client_id, &matched.secret_id, &secret).await;
        }
        Ok(client.clone())
    }

    /// Stores the check value of a secret that verified but had none. A
    /// failure only means argon2 runs again next time, so it is logged.
    async fn record_check(&self, client_id: &str, secret_id: &str, secret: &ClientSecret) {
        let check = SecretCheck::new(secret);
        match self.store.set_secret_check(client_id, secret_id, check.as_str()).await {
            Ok(_) => {
                info!(target: "tessera::audit", event = audit::SECRET_CHECK_RECORDED, client_id = %client_id, secret_id = %secret_id)
            }
            Err(e) => warn!(error = %e, "recording a secret's check value failed; it will be retried at its next use"),
        }
    }
}

//! Prometheus metrics, served on `GET /metrics` in the text exposition format.
//!
//! Counters and histograms are recorded as things happen; gauges that mirror
//! state the core already keeps (keys, deny-list, hashing queue) are read at
//! scrape time instead of being kept in step. Labels have bounded values
//! only: face, endpoint, OAuth outcome. Never a client id, which an
//! attacker could mint without bound.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Which face a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `tessera.v1.TokenService`.
    Grpc,
    /// The HTTP shim.
    Http,
}

impl Face {
    fn label(self) -> &'static str {
        match self {
            Face::Grpc => "grpc",
            Face::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    face: &'static str,
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    face: &'static str,
    endpoint: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~6.5 s: a warm issuance is well under a millisecond, a cold
    // one is an argon2 run (tens of ms), a queued one waits up to 500 ms.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 17,
    ))
}

/// State read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Signing keys that sign or verify now.
    pub signing_keys: usize,
    /// Revoked tokens not yet expired.
    pub denylist: usize,
    /// argon2 verifications running.
    pub hashing_busy: usize,
    /// Callers waiting for a verification slot.
    pub hashing_waiting: usize,
    /// Remembered secret verifications.
    pub remembered: usize,
    /// Tokens whose signature verified, cached.
    pub verified_tokens: usize,
    /// 1 while the store answers, 0 while it does not.
    pub store_reachable: bool,
    /// The trusted issuers' state.
    pub federation: crate::federation::FederationHealth,
}

/// Every metric Tessera exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    hashing_wait: Histogram,
    remembered_hits: Counter,
    store_errors: Counter,
    gauges: Mutex<Gauges>,
    waiting: AtomicU64,
}

struct Gauges {
    signing_keys: Gauge,
    denylist: Gauge,
    hashing_busy: Gauge,
    hashing_waiting: Gauge,
    remembered: Gauge,
    verified_tokens: Gauge,
    store_reachable: Gauge,
    trusted_issuers: Gauge,
    trusted_issuers_without_keys: Gauge,
    trusted_issuers_stale: Gauge,
    verified_platform_tokens: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set, every counter at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by face, endpoint and outcome (ok or the OAuth error code)",
            requests.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer, by face and endpoint",
            latency.clone(),
        );
        let hashing_wait = latency_histogram();
        registry.register(
            "hashing_wait_seconds",
            "Time a secret verification waited for an argon2 slot",
            hashing_wait.clone(),
        );
        let remembered_hits = Counter::default();
        registry.register(
            "remembered_secret_hits",
            "Secret checks answered from a remembered verification instead of argon2",
            remembered_hits.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Store calls that failed (unreachable, timed out)",
            store_errors.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let gauges = Gauges {
            signing_keys: gauge(&mut registry, "signing_keys_active", "Signing keys published now"),
            denylist: gauge(&mut registry, "denylist_size", "Revoked tokens not yet expired"),
            hashing_busy: gauge(&mut registry, "hashing_busy", "argon2 verifications running"),
            hashing_waiting: gauge(
                &mut registry,
                "hashing_queue_depth",
                "Secret verifications waiting for an argon2 slot",
            ),
            remembered: gauge(
                &mut registry,
                "remembered_secrets",
                "Secret verifications remembered in memory",
            ),
            verified_tokens: gauge(
                &mut registry,
                "verified_token_cache_size",
                "Tokens whose signature verified, cached for introspection",
            ),
            store_reachable: gauge(&mut registry, "store_reachable", "1 while the store answers"),
            trusted_issuers: gauge(
                &mut registry,
                "trusted_issuers",
                "Issuers whose tokens authenticate clients",
            ),
            trusted_issuers_without_keys: gauge(
                &mut registry,
                "trusted_issuers_without_keys",
                "Trusted issuers with no usable key: their tokens authenticate no one",
            ),
            trusted_issuers_stale: gauge(
                &mut registry,
                "trusted_issuers_stale",
                "Trusted issuers whose keys could not be fetched for two refresh periods (known keys still used)",
            ),
            verified_platform_tokens: gauge(
                &mut registry,
                "verified_platform_tokens",
                "Platform tokens whose signature verified, remembered until they expire",
            ),
        };
        Self {
            registry,
            requests,
            latency,
            hashing_wait,
            remembered_hits,
            store_errors,
            gauges: Mutex::new(gauges),
            waiting: AtomicU64::new(0),
        }
    }

    /// Records one answered request.
    pub fn observe(&self, face: Face, endpoint: &'static str, outcome: &'static str, elapsed: Duration) {
        let face = face.label();
        self.requests
            .get_or_create(&RequestLabels {
                face,
                endpoint,
                outcome,
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { face, endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// A secret check answered from memory.
    pub fn remembered_hit(&self) {
        self.remembered_hits.inc();
    }

    /// A store call failed.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// A verification starts waiting for an argon2 slot; the guard records
    /// the wait when it ends.
    pub fn hashing_wait(&self) -> HashingWait<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        HashingWait {
            metrics: self,
            started: std::time::Instant::now(),
        }
    }

    /// Callers waiting for an argon2 slot now.
    pub fn hashing_waiting(&self) -> usize {
        usize::try_from(self.waiting.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// The text exposition, with the gauges set from `snapshot`.
    pub fn render(&self, snapshot: Snapshot) -> String {
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let gauges = self.gauges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        gauges.signing_keys.set(as_gauge(snapshot.signing_keys));
        gauges.denylist.set(as_gauge(snapshot.denylist));
        gauges.hashing_busy.set(as_gauge(snapshot.hashing_busy));
        gauges.hashing_waiting.set(as_gauge(snapshot.hashing_waiting));
        gauges.remembered.set(as_gauge(snapshot.remembered));
        gauges.verified_tokens.set(as_gauge(snapshot.verified_tokens));
        let federation = snapshot.federation;
        gauges.trusted_issuers.set(as_gauge(federation.issuers));
        gauges
            .trusted_issuers_without_keys
            .set(as_gauge(federation.without_keys));
        gauges.trusted_issuers_stale.set(as_gauge(federation.stale));
        gauges
            .verified_platform_tokens
            .set(as_gauge(federation.verified_tokens));
        gauges.store_reachable.set(i64::from(snapshot.store_reachable));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        drop(gauges);
        text
    }
}

/// Measures one wait for an argon2 slot.
pub struct HashingWait<'a> {
    metrics: &'a Metrics,
    started: std::time::Instant,
}

impl Drop for HashingWait<'_> {
    fn drop(&mut self) {
        self.metrics.waiting.fetch_sub(1, Ordering::Relaxed);
        self.metrics.hashing_wait.observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observed_request_is_counted_by_face_endpoint_and_outcome() {
        let metrics = Metrics::new();
        metrics.observe(Face::Http, "token", "ok", Duration::from_millis(1));
        metrics.observe(Face::Http, "token", "invalid_client", Duration::from_millis(1));
        metrics.observe(Face::Http, "token", "invalid_client", Duration::from_millis(1));
        let text = metrics.render(Snapshot::default());
        assert!(
            text.contains(r#"tessera_requests_total{face="http",endpoint="token",outcome="invalid_client"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tessera_requests_total{face="http",endpoint="token",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains("tessera_request_duration_seconds_bucket"), "{text}");
    }

    #[test]
    fn gauges_show_the_snapshot() {
        let metrics = Metrics::new();
        let text = metrics.render(Snapshot {
            signing_keys: 2,
            denylist: 7,
            store_reachable: true,
            ..Snapshot::default()
        });
        assert!(text.contains("tessera_signing_keys_active 2"), "{text}");
        assert!(text.contains("tessera_denylist_size 7"), "{text}");
        assert!(text.contains("tessera_store_reachable 1"), "{text}");
    }
}

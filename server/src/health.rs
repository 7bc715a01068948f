//! Whether this process should get traffic: the store's health, which the
//! authority tracks, and whether the server is draining, which the server
//! decides. The HTTP readiness probe and the gRPC health service both read
//! [`Health::readiness`], so they always agree.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::authority::{Authority, StoreHealth};

/// The readiness of one server process.
#[derive(Debug)]
pub struct Health {
    authority: Arc<Authority>,
    draining: AtomicBool,
    /// Woken when draining begins.
    drain_started: tokio::sync::Notify,
}

/// What readiness probes report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Send traffic here.
    Ready,
    /// The store has been out of reach for longer than the staleness window.
    StoreStale,
    /// Shutting down: send traffic elsewhere.
    Draining,
}

impl Health {
    /// The health of a server answering for `authority`.
    pub fn new(authority: Arc<Authority>) -> Arc<Self> {
        Arc::new(Self {
            authority,
            draining: AtomicBool::new(false),
            drain_started: tokio::sync::Notify::new(),
        })
    }

    /// The authority this server answers for.
    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
    }

    /// Marks the server as shutting down: readiness probes and the gRPC
    /// health service report it at once, so load balancers stop sending.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::Release);
        self.drain_started.notify_waiters();
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Readiness now. A store that is briefly unreachable keeps the replica
    /// ready: failing readiness at once would take every replica out of the
    /// load balancer together at the first database hiccup.
    pub fn readiness(&self) -> Readiness {
        if self.is_draining() {
            Readiness::Draining
        } else if self.authority.store_health() == StoreHealth::Stale {
            Readiness::StoreStale
        } else {
            Readiness::Ready
        }
    }

    /// Keeps the gRPC health status in step with [`Health::readiness`]:
    /// SERVING only when ready. Reported for the server as a whole (`""`)
    /// and for each of `services`. Ends when the health is dropped.
    pub(crate) async fn report(
        health: std::sync::Weak<Health>,
        reporter: tonic_health::server::HealthReporter,
        services: &[&'static str],
    ) {
        use tonic_health::ServingStatus;
        let mut reported = None;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            let Some(health) = health.upgrade() else {
                return;
            };
            let status = match health.readiness() {
                Readiness::Ready => ServingStatus::Serving,
                Readiness::StoreStale | Readiness::Draining => ServingStatus::NotServing,
            };
            if reported != Some(status) {
                reporter.set_service_status("", status).await;
                for service in services {
                    reporter.set_service_status(*service, status).await;
                }
                reported = Some(status);
            }
            let store_changed = health.authority.health_changed();
            let drain_started = health.drain_started.notified();
            tokio::select! {
                _ = tick.tick() => {}
                () = store_changed.notified() => {}
                () = drain_started => {}
            }
        }
    }
}

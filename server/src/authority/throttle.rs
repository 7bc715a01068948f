//! Failure throttling, for the one case where a failure still costs argon2: a
//! secret stored before check values existed (see `secret`), until it has
//! verified once after the upgrade. After too many such failures a client id
//! or a source address is refused for the rest of a window without hashing.
//!
//! Everything else never meets the throttle: a secret with a check value is
//! refused in a microsecond when wrong and verified when right, and an
//! assertion is judged by its signature, so no one's failures can refuse
//! another caller's correct credential (docs/THREATS.md, row B-05).

use std::net::IpAddr;

use dashmap::DashMap;

use crate::clock::UnixTime;

/// Limits, per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures one client id may have per window; 0 disables the limit.
    pub client_failures: u32,
    /// Failures one source address may have per window; 0 disables the limit.
    pub source_failures: u32,
    /// Window length in seconds.
    pub window_secs: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            client_failures: 10,
            source_failures: 100,
            window_secs: 60,
        }
    }
}

/// Most keys tracked at once. A flood of random client ids cannot grow the
/// table past this; new ids are then counted by source address only.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(String),
    Source(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: UnixTime,
    failures: u32,
}

/// Failure counts per client id and per source address.
#[derive(Debug, Default)]
pub struct Throttle {
    config: ThrottleConfig,
    windows: DashMap<Key, Window>,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            windows: DashMap::new(),
        }
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Client(_) => self.config.client_failures,
            Key::Source(_) => self.config.source_failures,
        }
    }

    fn blocked_for(&self, key: &Key, now: UnixTime) -> Option<u64> {
        let limit = self.limit(key);
        let window = *self.windows.get(key)?;
        let ends = window.started + i64::from(self.config.window_secs);
        (limit > 0 && window.failures >= limit && now < ends).then(|| (ends - now).max(1) as u64)
    }

    /// Seconds until a request from this client id (if one is known) and
    /// source may be tried again, or `None` when it may be tried now.
    pub fn retry_after(&self, client_id: Option<&str>, source: Option<IpAddr>, now: UnixTime) -> Option<u64> {
        let by_client = client_id.and_then(|id| self.blocked_for(&Key::Client(id.to_owned()), now));
        let by_source = source.and_then(|ip| self.blocked_for(&Key::Source(ip), now));
        by_client.max(by_source)
    }

    /// Counts one failed authentication (however many secrets it tried).
    pub fn record_failure(&self, client_id: Option<&str>, source: Option<IpAddr>, now: UnixTime) {
        if let Some(id) = client_id {
            self.count(Key::Client(id.to_owned()), now);
        }
        if let Some(ip) = source {
            self.count(Key::Source(ip), now);
        }
    }

    fn count(&self, key: Key, now: UnixTime) {
        if self.limit(&key) == 0 {
            return;
        }
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_TRACKED {
            self.forget_expired(now);
            if self.windows.len() >= MAX_TRACKED {
                return;
            }
        }
        let window_secs = i64::from(self.config.window_secs);
        let mut window = self.windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= window.started + window_secs {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Drops windows that have ended.
    pub fn forget_expired(&self, now: UnixTime) {
        let window_secs = i64::from(self.config.window_secs);
        self.windows.retain(|_, w| now < w.started + window_secs);
    }

    /// Keys currently tracked.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_000;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig {
            client_failures: 3,
            source_failures: 5,
            window_secs: 60,
        })
    }

    #[test]
    fn a_client_is_throttled_after_its_limit_until_the_window_ends() {
        let t = throttle();
        for _ in 0..2 {
            t.record_failure(Some("svc"), None, NOW);
        }
        assert_eq!(t.retry_after(Some("svc"), None, NOW), None, "below the limit");
        t.record_failure(Some("svc"), None, NOW + 10);
        assert_eq!(t.retry_after(Some("svc"), None, NOW + 10), Some(50));
        assert_eq!(
            t.retry_after(Some("other"), None, NOW + 10),
            None,
            "other clients are not affected"
        );
        assert_eq!(t.retry_after(Some("svc"), None, NOW + 60), None, "the window ended");
    }

    #[test]
    fn a_source_is_throttled_across_client_ids() {
        let t = throttle();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..5 {
            t.record_failure(Some(&format!("id-{i}")), Some(ip), NOW);
        }
        assert!(t.retry_after(Some("never-seen"), Some(ip), NOW).is_some());
        assert_eq!(
            t.retry_after(Some("never-seen"), Some("192.0.2.8".parse().unwrap()), NOW),
            None
        );
    }

    #[test]
    fn a_zero_limit_disables_throttling() {
        let t = Throttle::new(ThrottleConfig {
            client_failures: 0,
            source_failures: 0,
            window_secs: 60,
        });
        for _ in 0..100 {
            t.record_failure(Some("svc"), None, NOW);
        }
        assert_eq!(t.retry_after(Some("svc"), None, NOW), None);
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn expired_windows_are_forgotten() {
        let t = throttle();
        t.record_failure(Some("svc"), None, NOW);
        t.forget_expired(NOW + 60);
        assert_eq!(t.tracked(), 0);
    }
}

//! A cached, always-fresh token for one (scopes, audiences) request.
//!
//! [`TokenSource::token`] is what a service calls before every outgoing
//! request. Its hot path, a valid token already cached, is one atomic load and
//! a reference-count increment: no lock, no allocation, no await. Refreshing
//! happens ahead of expiry in a background task, one at a time; callers keep
//! the current token meanwhile, and wait only when no valid token exists. A
//! failed refresh backs off exponentially with jitter (honouring the server's
//! retry hint) and the still-valid token keeps being served; the error reaches
//! callers only once no valid token is left.
//!
//! Expiry is computed from the local monotonic clock at the time of the
//! request plus `expires_in`, never from the token's `exp` against a possibly
//! skewed wall clock.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{AccessToken, Error, Token, TokenClient, TokenRequest};

/// When to refresh and how to back off. Every default is documented on its setter.
///
/// ```
/// use std::time::Duration;
/// use tessera_sdk::CachePolicy;
/// // Refresh when a third of the lifetime is left, never later than 30 s before expiry.
/// let policy = CachePolicy::default()
///     .refresh_share(0.33)
///     .min_refresh_ahead(Duration::from_secs(30));
/// # let _ = policy;
/// ```
#[derive(Debug, Clone)]
pub struct CachePolicy {
    refresh_share: f64,
    min_refresh_ahead: Duration,
    max_refresh_ahead: Duration,
    jitter: f64,
    min_backoff: Duration,
    max_backoff: Duration,
    min_forced_refresh_interval: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            refresh_share: 0.2,
            min_refresh_ahead: Duration::from_secs(5),
            max_refresh_ahead: Duration::from_secs(300),
            jitter: 0.1,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            min_forced_refresh_interval: Duration::from_secs(10),
        }
    }
}

impl CachePolicy {
    /// Refresh when this share of the lifetime remains. Default 0.2 (a one-hour
    /// token is refreshed with 12 minutes left, subject to the clamps below).
    pub fn refresh_share(mut self, share: f64) -> Self {
        self.refresh_share = share.clamp(0.0, 0.9);
        self
    }

    /// Refresh at least this long before expiry. Default 5 s.
    pub fn min_refresh_ahead(mut self, ahead: Duration) -> Self {
        self.min_refresh_ahead = ahead;
        self
    }

    /// Refresh at most this long before expiry. Default 5 minutes.
    pub fn max_refresh_ahead(mut self, ahead: Duration) -> Self {
        self.max_refresh_ahead = ahead;
        self
    }

    /// Random spread of the refresh moment, as a share of the refresh-ahead
    /// time, so a fleet started together does not refresh together. Default 0.1.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// First wait after a failed refresh; doubles per failure. Default 200 ms.
    pub fn min_backoff(mut self, backoff: Duration) -> Self {
        self.min_backoff = backoff;
        self
    }

    /// Longest wait between failed refreshes. Default 30 s.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// [`TokenSource::invalidate`] forces a refresh at most this often, so a
    /// resource server that rejects every token cannot drive a refresh loop.
    /// Default 10 s.
    pub fn min_forced_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_forced_refresh_interval = interval;
        self
    }

    fn refresh_ahead(&self, lifetime: Duration) -> Duration {
        let ahead = lifetime
            .mul_f64(self.refresh_share)
            .clamp(self.min_refresh_ahead, self.max_refresh_ahead);
        // Never ahead by more than half the lifetime: a 6 s token is not refreshed at once.
        let ahead = ahead.min(lifetime / 2);
        ahead + ahead.mul_f64(self.jitter * random_unit())
    }

    fn backoff(&self, failures: u32, hint: Option<Duration>) -> Duration {
        let exponential = self
            .min_backoff
            .saturating_mul(1u32 << failures.min(16))
            .min(self.max_backoff);
        let jittered = exponential.mul_f64(0.5 + random_unit() / 2.0);
        hint.map_or(jittered, |hint| jittered.max(hint))
    }
}

/// A number in [0, 1) from the OS's randomness via the standard library's
/// hasher seed: good enough to spread refreshes, not for cryptography.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Where tokens come from. Implemented by [`TokenClient`]; the cache logic is
/// generic so that it can be tested against any source.
pub trait FetchToken: Send + Sync + 'static {
    /// Fetches a new token.
    fn fetch(&self, request: &TokenRequest) -> impl std::future::Future<Output = Result<Token, Error>> + Send;
}

impl FetchToken for TokenClient {
    async fn fetch(&self, request: &TokenRequest) -> Result<Token, Error> {
        self.issue_token(request).await
    }
}

struct Current {
    token: AccessToken,
    expires_at: Instant,
    refresh_at: Instant,
}

#[derive(Default)]
struct Failures {
    count: u32,
    next_attempt: Option<Instant>,
    last_error: Option<Error>,
    last_forced: Option<Instant>,
}

struct Shared<F> {
    fetcher: F,
    request: TokenRequest,
    policy: CachePolicy,
    current: ArcSwapOption<Current>,
    refreshing: AtomicBool,
    refreshed: Notify,
    failures: Mutex<Failures>,
}

/// A cached token for one request, refreshed ahead of expiry. Cloning is
/// shallow: clones share the cache and its single refresh.
///
/// ```no_run
/// use tessera_sdk::{CachePolicy, TokenClient, TokenRequest};
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let client = TokenClient::builder("http://tessera:8080").client_secret("billing", "…").build()?;
/// let ledger = client.token_source(
///     TokenRequest::new().scope("ledger:write").audience("https://ledger.internal"),
///     CachePolicy::default(),
/// );
/// let token = ledger.token().await?; // cached after the first call
/// // … send it; if the resource server answers 401 to it:
/// ledger.invalidate(&token);
/// # Ok(())
/// # }
/// ```
pub struct TokenSource<F: FetchToken = TokenClient> {
    shared: Arc<Shared<F>>,
}

impl<F: FetchToken> Clone for TokenSource<F> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<F: FetchToken> fmt::Debug for TokenSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("request", &self.shared.request)
            .finish_non_exhaustive()
    }
}

impl<F: FetchToken> TokenSource<F> {
    /// A source of tokens for `request`, fetched from `fetcher`.
    pub fn new(fetcher: F, request: TokenRequest, policy: CachePolicy) -> Self {
        Self {
            shared: Arc::new(Shared {
                fetcher,
                request,
                policy,
                current: ArcSwapOption::empty(),
                refreshing: AtomicBool::new(false),
                refreshed: Notify::new(),
                failures: Mutex::new(Failures::default()),
            }),
        }
    }

    /// A valid token: the cached one when it has time left (starting a
    /// background refresh if it is due), else a fresh one, shared with every
    /// other caller waiting at the same moment.
    ///
    /// # Errors
    /// The last refresh's error, when no valid token is left.
    pub async fn token(&self) -> Result<AccessToken, Error> {
        let now = Instant::now();
        if let Some(current) = self.shared.current.load().as_ref()
            && now < current.expires_at
        {
            if now >= current.refresh_at {
                self.start_refresh(now);
            }
            return Ok(current.token.clone());
        }
        self.wait_for_fresh().await
    }

    /// Drops the cached token if it is `rejected` (a resource server answered
    /// 401 to it), so the next [`TokenSource::token`] fetches a new one. At
    /// most one forced refresh per [`CachePolicy::min_forced_refresh_interval`]:
    /// beyond that, the current token stays, so a misconfigured resource
    /// server cannot drive a refresh loop. Returns whether it was dropped.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        let now = Instant::now();
        let mut failures = self.shared.failures.lock().unwrap_or_else(|p| p.into_inner());
        let too_soon = failures
            .last_forced
            .is_some_and(|at| now < at + self.shared.policy.min_forced_refresh_interval);
        let is_current = self
            .shared
            .current
            .load()
            .as_ref()
            .is_some_and(|c| &c.token == rejected);
        if too_soon || !is_current {
            return false;
        }
        failures.last_forced = Some(now);
        drop(failures);
        self.shared.current.store(None);
        true
    }

    /// Starts a background refresh unless one is running or a backoff is in force.
    fn start_refresh(&self, now: Instant) {
        let backing_off = {
            let failures = self.shared.failures.lock().unwrap_or_else(|p| p.into_inner());
            failures.next_attempt.is_some_and(|at| now < at)
        };
        if backing_off || self.shared.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        // A task of its own: no caller's cancellation or deadline can stop it.
        tokio::spawn(async move { refresh(shared).await });
    }

    async fn wait_for_fresh(&self) -> Result<AccessToken, Error> {
        loop {
            // Registered before checking, so a refresh finishing in between is not missed.
            let refreshed = self.shared.refreshed.notified();
            tokio::pin!(refreshed);
            refreshed.as_mut().enable();
            let now = Instant::now();
            if let Some(current) = self.shared.current.load().as_ref()
                && now < current.expires_at
            {
                return Ok(current.token.clone());
            }
            let in_backoff = {
                let failures = self.shared.failures.lock().unwrap_or_else(|p| p.into_inner());
                match (failures.next_attempt, &failures.last_error) {
                    (Some(at), Some(error)) if now < at => Some(error.clone()),
                    _ => None,
                }
            };
            if let Some(error) = in_backoff {
                return Err(error);
            }
            self.start_refresh(now);
            refreshed.await;
            // After a failed refresh with no token left, report it rather than retry at once.
            let failures = self.shared.failures.lock().unwrap_or_else(|p| p.into_inner());
            let valid = self
                .shared
                .current
                .load()
                .as_ref()
                .is_some_and(|c| Instant::now() < c.expires_at);
            if !valid && let Some(error) = &failures.last_error {
                return Err(error.clone());
            }
        }
    }
}

async fn refresh<F: FetchToken>(shared: Arc<Shared<F>>) {
    // The lifetime counts from before the request: the token may have been
    // minted at any moment until the answer, so this errs on the safe side.
    let sent_at = Instant::now();
    let outcome = shared.fetcher.fetch(&shared.request).await;
    {
        let mut failures = shared.failures.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(token) => {
                let lifetime = token.expires_in();
                let expires_at = sent_at + lifetime;
                let refresh_at = expires_at
                    .checked_sub(shared.policy.refresh_ahead(lifetime))
                    .unwrap_or(sent_at);
                let cached = token.access_token().clone();
                shared.current.store(Some(Arc::new(Current {
                    token: cached,
                    expires_at,
                    refresh_at,
                })));
                failures.count = 0;
                failures.next_attempt = None;
                failures.last_error = None;
            }
            Err(error) => {
                let hint = match &error {
                    Error::Rejected { retry_after, .. } => *retry_after,
                    _ => None,
                };
                failures.next_attempt = Some(Instant::now() + shared.policy.backoff(failures.count, hint));
                failures.count = failures.count.saturating_add(1);
                failures.last_error = Some(error);
            }
        }
    }
    shared.refreshing.store(false, Ordering::Release);
    shared.refreshed.notify_waiters();
}

#[cfg(test)]
mod tests {
    //! The cache's rules under paused tokio time, with a counting source.
    //! Against a real Tessera server, see the root package's `tests/sdk.rs`.

    use std::sync::atomic::AtomicU32;

    use super::*;

    /// Counts fetches; answers after `delay` with a token of `lifetime`, or
    /// with an error while `failing` is set.
    struct Counting {
        fetches: Arc<AtomicU32>,
        delay: Duration,
        lifetime: Duration,
        failing: Arc<AtomicBool>,
    }

    impl FetchToken for Counting {
        async fn fetch(&self, _request: &TokenRequest) -> Result<Token, Error> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::Transport(tonic::Status::unavailable("server down")));
            }
            Ok(Token::new(format!("token-{n}"), self.lifetime))
        }
    }

    struct Fixture {
        source: TokenSource<Counting>,
        fetches: Arc<AtomicU32>,
        failing: Arc<AtomicBool>,
    }

    fn fixture(delay_ms: u64, lifetime_secs: u64) -> Fixture {
        let fetches = Arc::new(AtomicU32::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let fetcher = Counting {
            fetches: fetches.clone(),
            delay: Duration::from_millis(delay_ms),
            lifetime: Duration::from_secs(lifetime_secs),
            failing: failing.clone(),
        };
        let policy = CachePolicy::default().jitter(0.0);
        Fixture {
            source: TokenSource::new(fetcher, TokenRequest::new(), policy),
            fetches,
            failing,
        }
    }

    impl Fixture {
        fn fetches(&self) -> u32 {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_token_is_served_without_fetching_again() {
        let f = fixture(10, 3600);
        let first = f.source.token().await.unwrap();
        for _ in 0..100 {
            assert_eq!(f.source.token().await.unwrap(), first);
        }
        assert_eq!(f.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_callers_without_a_token_cause_exactly_one_fetch() {
        let f = fixture(50, 3600);
        let callers: Vec<_> = (0..1000)
            .map(|_| {
                let source = f.source.clone();
                tokio::spawn(async move { source.token().await.unwrap() })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().expose(), "token-1");
        }
        assert_eq!(f.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_ahead_runs_in_the_background_while_callers_keep_the_current_token() {
        // 100 s lifetime: refresh 20 s ahead (the share), i.e. from 80 s on.
        let f = fixture(5_000, 100);
        let first = f.source.token().await.unwrap();
        tokio::time::advance(Duration::from_secs(81)).await;
        // A slow server (5 s): nobody holding a valid token waits for it.
        let callers: Vec<_> = (0..1000)
            .map(|_| {
                let source = f.source.clone();
                tokio::spawn(async move { tokio::time::timeout(Duration::from_millis(1), source.token()).await })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().expect("no caller blocked").unwrap(), first);
        }
        assert_eq!(f.fetches(), 2, "exactly one refresh in flight");
        tokio::time::advance(Duration::from_secs(6)).await;
        tokio::task::yield_now().await;
        assert_eq!(f.source.token().await.unwrap().expose(), "token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn with_the_server_down_the_valid_token_is_served_and_the_error_comes_only_after_expiry() {
        let f = fixture(10, 100);
        let first = f.source.token().await.unwrap();
        f.failing.store(true, Ordering::SeqCst);
        // Refresh is due from 80 s (20 % of 100 s ahead of expiry).
        tokio::time::advance(Duration::from_secs(80)).await;
        for second in 81..100 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert_eq!(f.source.token().await.unwrap(), first, "still valid at {second} s");
            tokio::task::yield_now().await;
        }
        let refreshes = f.fetches() - 1;
        assert!(
            (2..19).contains(&refreshes),
            "failed refreshes back off ({refreshes} in 19 s)"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let err = f.source.token().await.unwrap_err();
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
        f.failing.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(
            f.source.token().await.is_ok(),
            "recovers once the server is back and the backoff passed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_callers_deadline_does_not_cancel_the_shared_refresh() {
        let f = fixture(1_000, 3600);
        let impatient = tokio::time::timeout(Duration::from_millis(10), f.source.token()).await;
        assert!(impatient.is_err(), "the caller gave up");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            f.source.token().await.unwrap().expose(),
            "token-1",
            "the refresh it started finished anyway"
        );
        assert_eq!(f.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_forces_one_refresh_and_is_guarded_against_loops() {
        let f = fixture(10, 3600);
        let first = f.source.token().await.unwrap();
        assert!(f.source.invalidate(&first));
        let second = f.source.token().await.unwrap();
        assert_ne!(second, first);
        assert!(
            !f.source.invalidate(&second),
            "a second forced refresh within 10 s is refused"
        );
        assert!(
            !f.source.invalidate(&first),
            "a stale token cannot invalidate the current one"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(f.source.invalidate(&second));
        assert_eq!(f.fetches(), 2);
    }

    #[test]
    fn refresh_ahead_is_a_share_of_the_lifetime_clamped() {
        let policy = CachePolicy::default().jitter(0.0);
        assert_eq!(
            policy.refresh_ahead(Duration::from_secs(3600)),
            Duration::from_secs(300),
            "capped at 5 min"
        );
        assert_eq!(
            policy.refresh_ahead(Duration::from_secs(600)),
            Duration::from_secs(120),
            "20 %"
        );
        assert_eq!(
            policy.refresh_ahead(Duration::from_secs(20)),
            Duration::from_secs(5),
            "at least 5 s"
        );
        assert_eq!(
            policy.refresh_ahead(Duration::from_secs(6)),
            Duration::from_secs(3),
            "at most half"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_the_servers_hint() {
        let policy = CachePolicy::default();
        assert!(policy.backoff(0, None) <= Duration::from_millis(200));
        assert!(policy.backoff(20, None) <= Duration::from_secs(30));
        assert!(policy.backoff(0, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
    }
}

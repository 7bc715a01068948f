//! Local validation of Tessera's access tokens, for resource servers.
//!
//! [`Verifier::verify`] checks a token against Tessera's published keys
//! without a network call in the common case: the signature with the
//! algorithm of the key its `kid` names (never the algorithm its header
//! claims), from an allow-list; `typ: at+jwt` (RFC 9068); `iss`; `aud`; and
//! the times, by the rule the server applies too
//! ([`tessera_proto::claims::AccessTokenClaims::check_times`]): `nbf` and `iat`
//! with a small leeway, `exp` exactly. Keys are cached; a token naming an unknown
//! `kid` (a key rotated in since the last fetch) triggers one refetch, at most
//! once per [`VerifierBuilder::min_refetch_interval`] (default 1 s), so a flood
//! of forged `kid`s cannot hammer Tessera. The key set is also refetched in the
//! background once it is older than Tessera's `cache-control: max-age` (five
//! minutes), bounded by [`VerifierBuilder::max_key_age`]: a key revoked with
//! `tessera keys revoke` leaves the set, and its tokens are refused, within
//! that bound. If Tessera cannot be reached, the keys in hand keep working.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use tessera_proto::claims::{AccessTokenClaims, REQUIRED_CLAIMS, TimeError};
use tessera_proto::oauth::is_access_token_typ;

use crate::{CallerCertificate, Error, KeyAlgorithm, PublicJwk, TokenClient};

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a compact JWS, or its header or claims are not what Tessera issues.
    #[error("malformed token")]
    Malformed,
    /// The header's `typ` is not `at+jwt` (RFC 9068 §4).
    #[error("not an access token (typ is not at+jwt)")]
    WrongType,
    /// No published key has the token's `kid`, even after refetching.
    #[error("signed by an unknown key")]
    UnknownKey,
    /// The header names an algorithm other than the key's, or one not allowed.
    #[error("algorithm not allowed for this key")]
    Algorithm,
    /// The signature does not verify.
    #[error("invalid signature")]
    Signature,
    /// Issued by someone else.
    #[error("wrong issuer")]
    Issuer,
    /// Not meant for this resource server (`aud`).
    #[error("wrong audience")]
    Audience,
    /// Past `exp`.
    #[error("expired")]
    Expired,
    /// Before `nbf`.
    #[error("not valid yet")]
    NotYetValid,
    /// Tessera says the token is no longer active (revoked, or its client disabled).
    #[error("no longer active")]
    Inactive,
    /// The token is bound to a client certificate (RFC 8705 section 3) that
    /// the caller did not present: it was presented by someone else.
    #[error("bound to a certificate the caller did not present")]
    CertificateMismatch,
    /// The keys (or the introspection answer) could not be fetched; the token may be fine.
    #[error("cannot reach Tessera to check the token: {0}")]
    Unavailable(String),
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// The client the token was issued to.
    pub client_id: String,
    /// `sub` (the client id, for client-credentials tokens).
    pub subject: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `iss`.
    pub issuer: String,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// `jti`.
    pub token_id: String,
    /// For a token bound to a client certificate (RFC 8705 section 3), the
    /// certificate's `x5t#S256`; the caller presented that certificate.
    pub certificate_thumbprint: Option<String>,
}

impl Claims {
    /// True when every one of `required` was granted.
    pub fn has_scopes<S: AsRef<str>>(&self, required: &[S]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r.as_ref()))
    }
}

struct Key {
    decoding: DecodingKey,
    algorithm: KeyAlgorithm,
}

/// Seconds since the Unix epoch by the system clock (0 if it is before 1970,
/// which makes every token not yet valid rather than valid).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The keys in hand, and when to fetch them again.
struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    refresh_at: Instant,
}

/// How long a key set is kept when Tessera names no `max-age`.
const DEFAULT_KEY_AGE: Duration = Duration::from_secs(300);

/// Builds a [`Verifier`].
#[must_use]
pub struct VerifierBuilder {
    client: TokenClient,
    issuer: String,
    audience: String,
    algorithms: Vec<KeyAlgorithm>,
    leeway: Duration,
    min_refetch_interval: Duration,
    max_key_age: Duration,
    introspect: bool,
    initial_keys: HashMap<String, Arc<Key>>,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl VerifierBuilder {
    /// Algorithms accepted. Default: ES256, EdDSA and RS256 (never HS*, never none).
    pub fn algorithms(mut self, algorithms: &[KeyAlgorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Clock difference tolerated on `exp` and `nbf`. Default 5 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// An unknown `kid` refetches the keys at most this often. Default 1 s:
    /// forged `kid`s cost Tessera at most one fetch a second, while a key that
    /// starts signing at once (after `tessera keys revoke`) is picked up within
    /// a second.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// The longest the key set is kept before it is fetched again, whatever
    /// Tessera's `cache-control: max-age` says. Default 5 minutes; a
    /// `max-age` shorter than [`VerifierBuilder::min_refetch_interval`] counts
    /// as that interval. A revoked signing key's tokens are refused within
    /// this bound (plus one fetch).
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// Also ask Tessera (IntrospectToken) whether each token is still active,
    /// with answers cached for a few seconds: for revocation-sensitive calls.
    /// The client must have been created with `--scope tessera:introspect`.
    /// Default off.
    pub fn introspect(mut self, introspect: bool) -> Self {
        self.introspect = introspect;
        self
    }

    /// Keys to start with (e.g. a JWK set shipped with the service), so the
    /// first tokens verify without a fetch. An unknown `kid` still triggers a
    /// fetch through the client. Keys of unsupported types are ignored.
    pub fn keys(mut self, jwks: &[PublicJwk]) -> Self {
        self.initial_keys = jwks
            .iter()
            .filter_map(|jwk| Some((jwk.kid.clone(), Arc::new(key_of(jwk)?))))
            .collect();
        self
    }

    /// Builds the verifier. Keys are fetched on first use, unless given with [`VerifierBuilder::keys`].
    pub fn build(self) -> Verifier {
        Verifier {
            inner: Arc::new(Inner {
                client: self.client,
                issuer: self.issuer,
                audience: self.audience,
                algorithms: self.algorithms,
                leeway: self.leeway,
                min_refetch_interval: self.min_refetch_interval,
                keys: ArcSwap::from_pointee(KeySet {
                    by_kid: self.initial_keys,
                    // Keys shipped with the service are checked against
                    // Tessera's once they are as old as a fetched set may be.
                    refresh_at: Instant::now() + self.max_key_age.min(DEFAULT_KEY_AGE),
                }),
                max_key_age: self.max_key_age,
                refreshing: AtomicBool::new(false),
                last_fetch: std::sync::Mutex::new(None),
                fetching: tokio::sync::Mutex::new(()),
                fetches: std::sync::atomic::AtomicU64::new(0),
                introspect: self.introspect,
                introspected: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }
}

struct Inner {
    client: TokenClient,
    issuer: String,
    audience: String,
    algorithms: Vec<KeyAlgorithm>,
    leeway: Duration,
    min_refetch_interval: Duration,
    max_key_age: Duration,
    keys: ArcSwap<KeySet>,
    /// A background refresh is under way.
    refreshing: AtomicBool,
    last_fetch: std::sync::Mutex<Option<Instant>>,
    /// One fetch at a time; concurrent unknown-kid tokens wait for it.
    fetching: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
    introspect: bool,
    /// Introspection answers by SHA-256 of the token (the token itself is a
    /// credential, not a key to keep), kept briefly; one request per token
    /// at a time, however many callers ask.
    introspected: std::sync::Mutex<HashMap<[u8; 32], Arc<Introspected>>>,
}

/// One token's introspection answer, shared by concurrent callers.
struct Introspected {
    answer: tokio::sync::OnceCell<bool>,
    asked_at: Instant,
}

/// Validates Tessera's tokens locally. Cloning is shallow: clones share keys.
///
/// ```no_run
/// use tessera_sdk::{TokenClient, Verifier, VerifyError};
/// # async fn example(bearer: &str) -> Result<(), Box<dyn std::error::Error>> {
/// // Fetching Tessera's public keys needs no credentials.
/// let client = TokenClient::builder("http://tessera:8080").build_keys_only()?;
/// let verifier = Verifier::builder(client, "http://tessera:8080", "https://invoices.internal").build();
/// match verifier.verify(bearer).await {
///     Ok(claims) if claims.has_scopes(&["invoices:read"]) => println!("hello {}", claims.client_id),
///     Ok(_) => println!("403 insufficient_scope"),
///     Err(VerifyError::Unavailable(_)) => println!("503: cannot check now"),
///     Err(_) => println!("401 invalid_token"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish()
    }
}

/// How long an introspection answer is reused.
const INTROSPECTION_CACHE: Duration = Duration::from_secs(5);
/// Introspection answers kept at most; past it, stale ones go, then all.
const MAX_INTROSPECTED: usize = 10_000;

impl Verifier {
    /// A verifier of tokens issued by `issuer` for `audience`, fetching keys
    /// through `client` (gRPC `GetJwks`). A client built with
    /// [`crate::TokenClientBuilder::build_keys_only`] will do, unless
    /// [`VerifierBuilder::introspect`] is on (introspection authenticates).
    pub fn builder(client: TokenClient, issuer: impl Into<String>, audience: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            client,
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: KeyAlgorithm::ALL.to_vec(),
            leeway: Duration::from_secs(5),
            min_refetch_interval: Duration::from_secs(1),
            max_key_age: DEFAULT_KEY_AGE,
            introspect: false,
            initial_keys: HashMap::new(),
        }
    }

    /// How many times the keys were fetched (for monitoring, and tests).
    pub fn key_fetches(&self) -> u64 {
        self.inner.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Validates `token` and returns its claims. A token bound to a client
    /// certificate is refused ([`VerifyError::CertificateMismatch`]): with no
    /// caller certificate to compare, it would be honoured from anyone who
    /// copied it. Use [`Verifier::verify_from`] where callers present certificates.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the token is not accepted.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_from(token, None).await
    }

    /// Validates `token` presented by a caller with this TLS client
    /// certificate (or none): as [`Verifier::verify`], and a token bound to
    /// a certificate (`cnf.x5t#S256`, RFC 8705 section 3) is accepted only
    /// when it is the caller's.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the token is not accepted.
    pub async fn verify_from(&self, token: &str, caller: Option<&CallerCertificate>) -> Result<Claims, VerifyError> {
        self.verify_bound(token, || caller.cloned()).await
    }

    /// As [`Verifier::verify_from`], asking for the caller's certificate
    /// only when the token is bound: most tokens are not, and finding the
    /// certificate costs a hash of it.
    pub(crate) async fn verify_bound(
        &self,
        token: &str,
        caller: impl FnOnce() -> Option<CallerCertificate>,
    ) -> Result<Claims, VerifyError> {
        let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // RFC 9068 §2.1 names `at+jwt`; `application/at+jwt` is the same
        // media type written in full (RFC 7515 §4.1.9), as the server accepts.
        if !is_access_token_typ(header.typ.as_deref()) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let found = {
            let set = self.inner.keys.load();
            if set.refresh_at <= Instant::now() {
                self.refresh_in_background();
            }
            set.by_kid.get(&kid).cloned()
        };
        let key = match found {
            Some(key) => key,
            None => self.refetch_for(&kid).await?,
        };
        if header.alg != key.algorithm.jwt() || !self.inner.algorithms.contains(&key.algorithm) {
            return Err(VerifyError::Algorithm);
        }
        let mut validation = Validation::new(key.algorithm.jwt());
        validation.set_issuer(&[self.inner.issuer.as_str()]);
        validation.set_audience(&[self.inner.audience.as_str()]);
        validation.set_required_spec_claims(&REQUIRED_CLAIMS);
        // Times are checked below by the contract's rule, the server's too.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = decode::<AccessTokenClaims>(token, &key.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidAudience => VerifyError::Audience,
                ErrorKind::InvalidIssuer => VerifyError::Issuer,
                ErrorKind::InvalidSignature => VerifyError::Signature,
                _ => VerifyError::Malformed,
            }
        })?;
        let claims = claims.claims;
        claims
            .check_times(unix_now(), self.inner.leeway.as_secs() as i64)
            .map_err(|e| match e {
                TimeError::Expired => VerifyError::Expired,
                TimeError::NotYetValid => VerifyError::NotYetValid,
            })?;
        if let Some(cnf) = &claims.cnf
            && !cnf.is_bound_to(caller().as_ref().map(CallerCertificate::thumbprint))
        {
            return Err(VerifyError::CertificateMismatch);
        }
        if self.inner.introspect && !self.still_active(token).await? {
            return Err(VerifyError::Inactive);
        }
        Ok(Claims {
            scopes: claims.scopes(),
            client_id: claims.client_id,
            subject: claims.sub,
            audiences: claims.aud,
            issuer: claims.iss,
            expires_at: claims.exp,
            token_id: claims.jti,
            certificate_thumbprint: claims.cnf.and_then(|cnf| cnf.x5t_s256),
        })
    }

    /// Refetches the keys for an unknown `kid`, unless that was done less than
    /// `min_refetch_interval` ago.
    async fn refetch_for(&self, kid: &str) -> Result<Arc<Key>, VerifyError> {
        let _one_at_a_time = self.inner.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(key) = self.inner.keys.load().by_kid.get(kid) {
            return Ok(key.clone());
        }
        let recently = self
            .inner
            .last_fetch
            .lock()
            .map(|last| last.is_some_and(|at| at.elapsed() < self.inner.min_refetch_interval))
            .unwrap_or(false);
        if recently {
            return Err(VerifyError::UnknownKey);
        }
        self.inner.fetch().await?;
        self.inner
            .keys
            .load()
            .by_kid
            .get(kid)
            .cloned()
            .ok_or(VerifyError::UnknownKey)
    }

    /// Starts one background refetch of the whole key set, unless one is
    /// under way. Verification goes on with the keys in hand meanwhile.
    fn refresh_in_background(&self) {
        if self.inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            {
                let _one_at_a_time = inner.fetching.lock().await;
                if inner.keys.load().refresh_at <= Instant::now() && inner.fetch().await.is_err() {
                    // Tessera is out of reach: keep the keys, look again soon.
                    let set = inner.keys.load();
                    inner.keys.store(Arc::new(KeySet {
                        by_kid: set.by_kid.clone(),
                        refresh_at: Instant::now() + inner.min_refetch_interval,
                    }));
                }
            }
            inner.refreshing.store(false, Ordering::Release);
        });
    }

    async fn still_active(&self, token: &str) -> Result<bool, VerifyError> {
        let digest: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| VerifyError::Malformed)?;
        let entry = {
            let mut cache = self.inner.introspected.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&digest) {
                Some(entry) if entry.asked_at.elapsed() < INTROSPECTION_CACHE => entry.clone(),
                _ => {
                    // Amortised: the map is swept only when it is full.
                    if cache.len() >= MAX_INTROSPECTED {
                        cache.retain(|_, e| e.asked_at.elapsed() < INTROSPECTION_CACHE);
                        if cache.len() >= MAX_INTROSPECTED {
                            cache.clear();
                        }
                    }
                    let entry = Arc::new(Introspected {
                        answer: tokio::sync::OnceCell::new(),
                        asked_at: Instant::now(),
                    });
                    cache.insert(digest, entry.clone());
                    entry
                }
            }
        };
        // Concurrent callers wait for the one request; a failed request is
        // not shared, and the next caller asks again.
        entry
            .answer
            .get_or_try_init(|| async {
                self.inner
                    .client
                    .introspect(token)
                    .await
                    .map_err(|e: Error| VerifyError::Unavailable(e.to_string()))
            })
            .await
            .copied()
    }
}

impl Inner {
    /// Fetches the key set and replaces the one in hand: keys that left
    /// Tessera's set (revoked ones) are dropped. The caller holds `fetching`.
    async fn fetch(&self) -> Result<(), VerifyError> {
        *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (jwks, max_age) = self
            .client
            .jwks_with_max_age()
            .await
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        let by_kid = jwks
            .iter()
            .filter_map(|jwk| Some((jwk.kid.clone(), Arc::new(key_of(jwk)?))))
            .collect();
        let age = max_age.unwrap_or(DEFAULT_KEY_AGE).clamp(
            self.min_refetch_interval,
            self.max_key_age.max(self.min_refetch_interval),
        );
        self.keys.store(Arc::new(KeySet {
            by_kid,
            refresh_at: Instant::now() + age,
        }));
        Ok(())
    }
}

/// A published key, if it is of a type and algorithm the verifier knows.
fn key_of(jwk: &PublicJwk) -> Option<Key> {
    let algorithm = jwk.algorithm()?;
    let decoding = match algorithm {
        KeyAlgorithm::Es256 => DecodingKey::from_ec_components(&jwk.x, &jwk.y).ok()?,
        KeyAlgorithm::EdDsa => DecodingKey::from_ed_components(&jwk.x).ok()?,
        KeyAlgorithm::Rs256 => DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()?,
    };
    Some(Key { decoding, algorithm })
}

//! Local validation of Tessera's access tokens, for resource servers.
//!
//! [`Verifier::verify`] checks a token against Tessera's published keys
//! without a network call in the common case: the signature with the
//! algorithm of the key its `kid` names (never the algorithm its header
//! claims), from an allow-list; `typ: at+jwt` (RFC 9068); `iss`; `aud`; and
//! `exp`/`nbf` with a small leeway. Keys are cached; a token naming an unknown
//! `kid` (a key rotated in since the last fetch) triggers one refetch, at most
//! once per [`VerifierBuilder::min_refetch_interval`] (default 1 s), so a flood
//! of forged `kid`s cannot hammer Tessera.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::{Error, TokenClient};

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
}

impl Claims {
    /// True when every one of `required` was granted.
    pub fn has_scopes<S: AsRef<str>>(&self, required: &[S]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r.as_ref()))
    }
}

#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    client_id: String,
    iss: String,
    aud: OneOrMany,
    #[serde(default)]
    scope: Option<String>,
    exp: i64,
    #[allow(dead_code)]
    nbf: i64,
    jti: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

/// Builds a [`Verifier`].
#[must_use]
pub struct VerifierBuilder {
    client: TokenClient,
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    min_refetch_interval: Duration,
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
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms
            .iter()
            .copied()
            .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
            .collect();
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
    pub fn keys(mut self, jwks: &[tessera_proto::pb::JsonWebKey]) -> Self {
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
                keys: ArcSwap::from_pointee(self.initial_keys),
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
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    min_refetch_interval: Duration,
    keys: ArcSwap<HashMap<String, Arc<Key>>>,
    last_fetch: std::sync::Mutex<Option<Instant>>,
    /// One fetch at a time; concurrent unknown-kid tokens wait for it.
    fetching: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
    introspect: bool,
    /// Introspection answers by token, kept briefly.
    introspected: std::sync::Mutex<HashMap<String, (bool, Instant)>>,
}

/// Validates Tessera's tokens locally. Cloning is shallow: clones share keys.
///
/// ```no_run
/// use tessera_sdk::{TokenClient, Verifier, VerifyError};
/// # async fn example(bearer: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let client = TokenClient::builder("http://tessera:8080").client_secret("invoices", "…").build()?;
/// let jwks = client.jwks().await?;
/// let verifier = Verifier::builder(client, "http://tessera:8080", "https://invoices.internal")
///     .keys(&jwks)
///     .build();
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

impl Verifier {
    /// A verifier of tokens issued by `issuer` for `audience`, fetching keys
    /// through `client` (gRPC `GetJwks`).
    pub fn builder(client: TokenClient, issuer: impl Into<String>, audience: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            client,
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
            leeway: Duration::from_secs(5),
            min_refetch_interval: Duration::from_secs(1),
            introspect: false,
            initial_keys: HashMap::new(),
        }
    }

    /// How many times the keys were fetched (for monitoring, and tests).
    pub fn key_fetches(&self) -> u64 {
        self.inner.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Validates `token` and returns its claims.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the token is not accepted.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = match self.inner.keys.load().get(&kid) {
            Some(key) => key.clone(),
            None => self.refetch_for(&kid).await?,
        };
        if header.alg != key.algorithm || !self.inner.algorithms.contains(&key.algorithm) {
            return Err(VerifyError::Algorithm);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[self.inner.issuer.as_str()]);
        validation.set_audience(&[self.inner.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.leeway = self.inner.leeway.as_secs();
        validation.validate_nbf = true;
        let claims = decode::<TokenClaims>(token, &key.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
                ErrorKind::InvalidAudience => VerifyError::Audience,
                ErrorKind::InvalidIssuer => VerifyError::Issuer,
                ErrorKind::InvalidSignature => VerifyError::Signature,
                _ => VerifyError::Malformed,
            }
        })?;
        let claims = claims.claims;
        if self.inner.introspect && !self.still_active(token).await? {
            return Err(VerifyError::Inactive);
        }
        Ok(Claims {
            client_id: claims.client_id,
            subject: claims.sub,
            scopes: claims
                .scope
                .map(|s| s.split(' ').map(str::to_owned).collect())
                .unwrap_or_default(),
            audiences: match claims.aud {
                OneOrMany::One(aud) => vec![aud],
                OneOrMany::Many(auds) => auds,
            },
            issuer: claims.iss,
            expires_at: claims.exp,
            token_id: claims.jti,
        })
    }

    /// Refetches the keys for an unknown `kid`, unless that was done less than
    /// `min_refetch_interval` ago.
    async fn refetch_for(&self, kid: &str) -> Result<Arc<Key>, VerifyError> {
        let _one_at_a_time = self.inner.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(key) = self.inner.keys.load().get(kid) {
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
        *self.inner.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.inner.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let jwks = self
            .inner
            .client
            .jwks()
            .await
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        let keys: HashMap<String, Arc<Key>> = jwks
            .iter()
            .filter_map(|jwk| Some((jwk.kid.clone(), Arc::new(key_of(jwk)?))))
            .collect();
        let found = keys.get(kid).cloned();
        self.inner.keys.store(Arc::new(keys));
        found.ok_or(VerifyError::UnknownKey)
    }

    async fn still_active(&self, token: &str) -> Result<bool, VerifyError> {
        {
            let cache = self.inner.introspected.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((active, at)) = cache.get(token)
                && at.elapsed() < INTROSPECTION_CACHE
            {
                return Ok(*active);
            }
        }
        let active = self
            .inner
            .client
            .introspect(token)
            .await
            .map_err(|e: Error| VerifyError::Unavailable(e.to_string()))?;
        let mut cache = self.inner.introspected.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (_, at)| at.elapsed() < INTROSPECTION_CACHE);
        cache.insert(token.to_owned(), (active, Instant::now()));
        Ok(active)
    }
}

/// A published key, if it is of a type and algorithm the verifier knows.
fn key_of(jwk: &tessera_proto::pb::JsonWebKey) -> Option<Key> {
    let (decoding, algorithm) = match (jwk.kty.as_str(), jwk.alg.as_str()) {
        ("EC", "ES256") => (DecodingKey::from_ec_components(&jwk.x, &jwk.y).ok()?, Algorithm::ES256),
        ("OKP", "EdDSA") => (DecodingKey::from_ed_components(&jwk.x).ok()?, Algorithm::EdDSA),
        ("RSA", "RS256") => (DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()?, Algorithm::RS256),
        _ => return None,
    };
    Some(Key { decoding, algorithm })
}

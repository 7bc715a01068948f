//! Where Tessera keeps what must survive a restart: clients and their secret
//! hashes, and signing keys.
//!
//! [`Store`] is the one interface the core and the CLI use. Implementations
//! acknowledge a write only once it is durable, and bump a change counter
//! ([`Store::generations`]) on every write, so that a running server notices
//! changes made by another process (the CLI, another replica) by polling one
//! integer.

mod postgres;
mod sqlite;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
pub use crate::keys::custody::KeyMaterialChange;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A registered client as stored: its policy and its secret hashes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The public identifier the client authenticates with.
    pub client_id: String,
    /// Scopes the client may be granted; also its default when it asks for none.
    pub scopes: Vec<String>,
    /// Audiences the client may ask for; also its default when it asks for none.
    pub audiences: Vec<String>,
    /// Lifetime of its tokens in seconds; `None` uses the server's default.
    /// The server's cap applies either way.
    pub token_ttl: Option<u32>,
    /// A disabled client gets no token (and answers as an unknown one would).
    pub disabled: bool,
    /// When the client was registered.
    pub created_at: UnixTime,
    /// The client's secrets, newest first.
    pub secrets: Vec<SecretRecord>,
    /// Public keys the client signs assertions with (`private_key_jwt`).
    pub keys: Vec<ClientKeyRecord>,
    /// Platform identities (a trusted issuer's `sub`) that authenticate as
    /// this client, ordered by issuer and subject.
    pub federated: Vec<FederatedIdentityRecord>,
    /// TLS client certificates that authenticate as this client (RFC 8705
    /// section 2), ordered by kind and value.
    pub certificates: Vec<ClientCertificateRecord>,
    /// Whether its tokens are bound to the TLS client certificate of the
    /// connection they were asked for on (RFC 8705 section 3), however the
    /// client authenticated. Tokens of a client that authenticated by
    /// certificate are bound regardless.
    pub bind_to_certificate: bool,
}

/// A TLS client certificate registered for a client.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificateRecord {
    /// Which certificates match.
    pub matcher: CertificateMatch,
    /// When it was registered.
    pub created_at: UnixTime,
}

/// How a presented certificate is matched to a client (RFC 8705 section 2).
/// The first three need a certificate that chains to the listener's client
/// CA (`tls_client_auth`); a thumbprint needs none (`self_signed_tls_client_auth`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum CertificateMatch {
    /// A URI subject alternative name, exactly (a SPIFFE ID is one).
    SanUri(String),
    /// A DNS subject alternative name, exactly (compared without regard to ASCII case).
    SanDns(String),
    /// The subject distinguished name, in its RFC 4514 string form, as
    /// [`crate::tls::names::canonical_dn`] writes it.
    SubjectDn(String),
    /// The base64url SHA-256 of the certificate's DER: one certificate,
    /// which need not chain to any CA.
    #[serde(rename = "self_signed")]
    Thumbprint(String),
}

impl CertificateMatch {
    /// The name stored for the kind of match (RFC 8705 section 2.1.2's
    /// metadata names, without their prefix, and `self_signed`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SanUri(_) => "san_uri",
            Self::SanDns(_) => "san_dns",
            Self::SubjectDn(_) => "subject_dn",
            Self::Thumbprint(_) => "self_signed",
        }
    }

    /// The value matched.
    pub fn value(&self) -> &str {
        match self {
            Self::SanUri(v) | Self::SanDns(v) | Self::SubjectDn(v) | Self::Thumbprint(v) => v,
        }
    }

    /// Reads the stored kind and value back.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an unknown kind.
    pub fn from_stored(kind: &str, value: String) -> Result<Self, StoreError> {
        match kind {
            "san_uri" => Ok(Self::SanUri(value)),
            "san_dns" => Ok(Self::SanDns(value)),
            "subject_dn" => Ok(Self::SubjectDn(value)),
            "self_signed" => Ok(Self::Thumbprint(value)),
            kind => Err(StoreError::Corrupt(format!("client certificate kind {kind:?}"))),
        }
    }
}

impl fmt::Display for CertificateMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SanUri(v) => write!(f, "URI SAN {v}"),
            Self::SanDns(v) => write!(f, "DNS SAN {v}"),
            Self::SubjectDn(v) => write!(f, "subject {v}"),
            Self::Thumbprint(v) => write!(f, "self-signed certificate x5t#S256 {v}"),
        }
    }
}

/// A change to a client's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientUpdate {
    /// New scopes.
    pub scopes: Option<Vec<String>>,
    /// New audiences.
    pub audiences: Option<Vec<String>>,
    /// New token lifetime; `Some(None)` returns to the server's default.
    pub token_ttl: Option<Option<u32>>,
    /// Whether its tokens are bound to the connection's certificate.
    pub bind_to_certificate: Option<bool>,
}

/// A platform identity bound to a client: a token from `issuer` whose `sub`
/// is exactly `subject` authenticates as the client. One (issuer, subject)
/// belongs to one client at most.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FederatedIdentityRecord {
    /// The trusted issuer, as it names itself in `iss` (or a SPIFFE trust
    /// domain, `spiffe://example.org`).
    pub issuer: String,
    /// The token's `sub`, matched byte for byte.
    pub subject: String,
    /// When it was bound.
    pub created_at: UnixTime,
}

/// An issuer whose tokens may stand as client credentials (RFC 7523 client
/// assertions issued by a platform: Kubernetes, SPIRE, a CI system).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuerRecord {
    /// The issuer as its tokens name it in `iss`, or a SPIFFE trust domain
    /// (`spiffe://example.org`).
    pub issuer: String,
    /// Where its signing keys come from.
    pub jwks: JwksSource,
    /// Audiences its tokens may carry besides Tessera's issuer and token
    /// endpoint URL.
    pub audiences: Vec<String>,
    /// The longest lifetime (`exp` minus `iat`, or minus now) a token of
    /// this issuer may have.
    pub max_lifetime_secs: u32,
    /// PEM certificates that alone are trusted for the JWKS and discovery
    /// URLs' TLS; `None` uses the system's roots.
    pub ca_pem: Option<String>,
    /// A file the server reads a bearer token from, freshly before each
    /// fetch, to present to the JWKS URL (a Kubernetes API server's
    /// service-account token). The path, never the token, is stored.
    pub bearer_token_file: Option<String>,
    /// When it was added.
    pub created_at: UnixTime,
}

/// Where a trusted issuer's keys come from.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum JwksSource {
    /// A JWKS (or SPIFFE bundle) stored as given; changed by removing and
    /// adding the trust again.
    Inline(String),
    /// An `https://` URL serving the JWKS.
    Url(String),
    /// The `jwks_uri` of the issuer's `/.well-known/openid-configuration`.
    Discovery,
}

impl JwksSource {
    /// The name stored for the kind of source.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Inline(_) => "inline",
            Self::Url(_) => "url",
            Self::Discovery => "discovery",
        }
    }

    /// The stored value: the JWKS, the URL, or nothing.
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Inline(jwks) => Some(jwks),
            Self::Url(url) => Some(url),
            Self::Discovery => None,
        }
    }

    /// Reads the stored kind and value back.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an unknown kind or a missing value.
    pub fn from_stored(kind: &str, value: Option<String>) -> Result<Self, StoreError> {
        match (kind, value) {
            ("inline", Some(jwks)) => Ok(Self::Inline(jwks)),
            ("url", Some(url)) => Ok(Self::Url(url)),
            ("discovery", _) => Ok(Self::Discovery),
            (kind, _) => Err(StoreError::Corrupt(format!("trusted issuer JWKS source {kind:?}"))),
        }
    }
}

/// A public key a client registered for `private_key_jwt` (RFC 7523).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyRecord {
    /// The key id assertions name in their header.
    pub kid: String,
    /// The one JWS algorithm assertions signed with this key may use.
    pub alg: String,
    /// The public key as a JWK (JSON), public members only.
    pub jwk: String,
    /// When it was registered.
    pub created_at: UnixTime,
}

/// Change counters, one per kind of state, so that each hot copy is
/// refreshed only when its own kind changed (a revocation must not flush the
/// client cache, and with it every remembered secret verification).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generations {
    /// Clients, their secrets and their keys.
    pub clients: u64,
    /// Signing keys.
    pub keys: u64,
    /// Revoked tokens.
    pub revocations: u64,
    /// Trusted issuers.
    pub trust: u64,
}

/// One secret of a client, as its argon2id hash.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// A short random id, so that operators can tell secrets apart without seeing them.
    pub secret_id: String,
    /// The argon2id PHC string.
    pub phc: String,
    /// A short salted check value of the secret (`authority::secret::SecretCheck`),
    /// which turns a wrong secret away before argon2 runs. `None` for a
    /// secret stored before check values existed, until it next verifies.
    pub check: Option<String>,
    /// When the secret was created.
    pub created_at: UnixTime,
    /// After this instant the secret no longer authenticates; `None` never expires.
    pub expires_at: Option<UnixTime>,
}

impl fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRecord")
            .field("secret_id", &self.secret_id)
            .field("phc", &"<redacted>")
            .field("check", &self.check.as_ref().map(|_| "<redacted>"))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl SecretRecord {
    /// True while the secret may still authenticate.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// A signing key as stored, private half included.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key id, the RFC 7638 thumbprint of its public key.
    pub kid: String,
    /// The JWS algorithm the key signs with (`ES256`, `EdDSA`).
    pub alg: String,
    /// The private key as PKCS#8 DER, or sealed under a KEK
    /// ([`crate::keys::custody`]); base64 in an export.
    #[serde(with = "base64_bytes")]
    pub private_pkcs8: zeroize::Zeroizing<Vec<u8>>,
    /// When the key was created (and published in the JWKS).
    pub created_at: UnixTime,
    /// When it starts signing. A rotation publishes a key ahead of this, so
    /// verifiers' JWKS caches know it before the first token it signs.
    pub activates_at: UnixTime,
    /// When it was revoked as compromised; a revoked key neither signs nor
    /// verifies and is not published.
    pub revoked_at: Option<UnixTime>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pkcs8", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// A revoked access token, remembered until it would have expired anyway.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    /// The token's `jti`.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The token's `exp`: after it the entry can be forgotten.
    pub expires_at: UnixTime,
    /// When it was revoked.
    pub revoked_at: UnixTime,
}

/// An assertion id remembered so that its assertion authenticates once.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SeenAssertion {
    /// The client the assertion authenticated.
    pub client_id: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`: after it the entry can be forgotten.
    pub expires_at: UnixTime,
}

/// Everything a store holds, read at one instant: what `tessera
/// export-store` writes and `import-store` loads.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoreSnapshot {
    /// Every client, with its secret hashes, keys, identities and certificates.
    pub clients: Vec<ClientRecord>,
    /// Every trusted issuer.
    pub trusted_issuers: Vec<TrustedIssuerRecord>,
    /// Every signing key, revoked ones included, in the store's order.
    pub signing_keys: Vec<SigningKeyRecord>,
    /// Revocations of tokens not yet expired.
    pub revoked_tokens: Vec<RevokedToken>,
    /// Assertion ids not yet expired.
    pub seen_assertions: Vec<SeenAssertion>,
}

/// The tables a restore requires empty, with what their rows are, for the
/// refusal's message. Both stores check these, under their write lock.
pub(crate) const MUST_BE_EMPTY_TO_RESTORE: [(&str, &str); 4] = [
    ("clients", "client(s)"),
    ("signing_keys", "signing key(s)"),
    ("trusted_issuers", "trusted issuer(s)"),
    ("revoked_tokens", "revoked token(s)"),
];

/// Bytes as standard base64 in serialised records.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &zeroize::Zeroizing<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&zeroize::Zeroizing::new(STANDARD.encode(bytes.as_slice())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<zeroize::Zeroizing<Vec<u8>>, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
        STANDARD
            .decode(text.as_bytes())
            .map(zeroize::Zeroizing::new)
            .map_err(serde::de::Error::custom)
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing being created exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The store cannot be reached or failed to answer; the write, if any, was not made.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with data Tessera cannot read.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    /// The store's files can be read by other local users, who could take
    /// the signing keys from them; the message says how to fix it.
    #[error("{0}")]
    Insecure(String),
    /// A restore into a store that holds data already.
    #[error("the store is not empty ({0}); import-store loads only into an empty store")]
    NotEmpty(String),
}

/// Persistent state shared by the server, the CLI and (with a shared database)
/// every replica.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Registers a client with its first secret. Fails with
    /// [`StoreError::AlreadyExists`] if the id is taken.
    async fn create_client(&self, client: ClientRecord) -> Result<(), StoreError>;

    /// The client with this exact id (byte for byte), if any.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;

    /// Every client, ordered by id.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;

    /// Disables or re-enables a client. False when there is no such client.
    async fn set_client_disabled(&self, client_id: &str, disabled: bool) -> Result<bool, StoreError>;

    /// Deletes a client and its secrets. False when there is no such client.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;

    /// Adds a secret to a client; with `others_expire_at`, every other secret
    /// that would live longer expires then (rotation). False when there is no
    /// such client.
    async fn add_secret(
        &self,
        client_id: &str,
        secret: SecretRecord,
        others_expire_at: Option<UnixTime>,
    ) -> Result<bool, StoreError>;

    /// Records the check value of a secret that has none yet (one stored
    /// before check values existed, seen to verify). False when there is no
    /// such secret or it has a check value already.
    async fn set_secret_check(&self, client_id: &str, secret_id: &str, check: &str) -> Result<bool, StoreError>;

    /// Registers a public key for a client. False when there is no such
    /// client; [`StoreError::AlreadyExists`] when it has a key with that `kid`.
    async fn add_client_key(&self, client_id: &str, key: ClientKeyRecord) -> Result<bool, StoreError>;

    /// Removes a client's public key; `false` when the client has no key `kid`.
    async fn remove_client_key(&self, client_id: &str, kid: &str) -> Result<bool, StoreError>;

    /// Binds a platform identity to a client. False when there is no such
    /// client; [`StoreError::AlreadyExists`] when the (issuer, subject) is
    /// bound already, to this client or another.
    async fn add_federated_identity(
        &self,
        client_id: &str,
        identity: FederatedIdentityRecord,
    ) -> Result<bool, StoreError>;

    /// Unbinds a platform identity from a client. False when the client has
    /// no such binding.
    async fn remove_federated_identity(&self, client_id: &str, issuer: &str, subject: &str)
    -> Result<bool, StoreError>;

    /// The client a platform identity is bound to, if any.
    async fn client_for_federated_identity(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError>;

    /// Changes a client's settings. False when there is no such client.
    async fn update_client(&self, client_id: &str, update: ClientUpdate) -> Result<bool, StoreError>;

    /// Registers a TLS client certificate for a client. False when there is
    /// no such client; [`StoreError::AlreadyExists`] when it has that one already.
    async fn add_client_certificate(
        &self,
        client_id: &str,
        certificate: ClientCertificateRecord,
    ) -> Result<bool, StoreError>;

    /// Removes a client's certificate registration. False when it has no such one.
    async fn remove_client_certificate(&self, client_id: &str, matcher: &CertificateMatch) -> Result<bool, StoreError>;

    /// Trusts an issuer. [`StoreError::AlreadyExists`] when it is trusted already.
    async fn add_trusted_issuer(&self, issuer: TrustedIssuerRecord) -> Result<(), StoreError>;

    /// Every trusted issuer, ordered by issuer.
    async fn trusted_issuers(&self) -> Result<Vec<TrustedIssuerRecord>, StoreError>;

    /// Stops trusting an issuer; bindings to it stay, inert, until it is
    /// trusted again. False when it was not trusted.
    async fn remove_trusted_issuer(&self, issuer: &str) -> Result<bool, StoreError>;

    /// Records that an assertion `jti` of a client was used, atomically: true
    /// the first time, false for a replay, across processes and restarts.
    async fn remember_assertion(&self, client_id: &str, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError>;

    /// Every signing key, in activation order; keys activating in the same
    /// second are in the order they were added.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Stores `key` only if the store holds no signing key yet, atomically, and
    /// returns the keys the store then holds. Several processes starting on an
    /// empty store therefore end up with one and the same key.
    async fn insert_first_signing_key(&self, key: SigningKeyRecord) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Adds a signing key. With `if_newest` set, only if the newest key not
    /// revoked (by activation) is that one, so replicas rotating at once add
    /// one key, not several. Returns whether the key was added.
    async fn add_signing_key(&self, key: SigningKeyRecord, if_newest: Option<&str>) -> Result<bool, StoreError>;

    /// Replaces the stored private material of signing keys, all or none in
    /// one transaction: each change applies only if the key still holds its
    /// `from` bytes, else nothing changes and `false` is returned. Encrypting
    /// keys at rest and `tessera keys rewrap` use it.
    async fn replace_signing_key_material(&self, changes: Vec<KeyMaterialChange>) -> Result<bool, StoreError>;

    /// Everything in the store, read in one transaction. Revocations and
    /// assertion ids expired by `now` are left out.
    async fn snapshot(&self, now: UnixTime) -> Result<StoreSnapshot, StoreError>;

    /// Loads `snapshot` into an empty store in one transaction: all of it,
    /// or (on any failure, a crash included) none of it.
    ///
    /// # Errors
    /// [`StoreError::NotEmpty`] when the store holds any client, signing
    /// key, trusted issuer or revocation.
    async fn restore(&self, snapshot: StoreSnapshot) -> Result<(), StoreError>;

    /// Marks a key revoked. False when there is no such key or it was revoked already.
    async fn revoke_signing_key(&self, kid: &str, at: UnixTime) -> Result<bool, StoreError>;

    /// Records a revoked token, durably. Revoking a revoked token again is not an error.
    async fn revoke_token(&self, revoked: RevokedToken) -> Result<(), StoreError>;

    /// Revoked tokens that have not expired by `now`.
    async fn revoked_tokens(&self, now: UnixTime) -> Result<Vec<RevokedToken>, StoreError> {
        self.revoked_tokens_after(now, 0).await.map(|(tokens, _)| tokens)
    }

    /// Revoked tokens that have not expired by `now`, recorded after the
    /// position `after` (0 for all), and the position of the newest one, to
    /// pass next time: a replica reads each revocation once, not the whole
    /// deny-list on every change. Positions grow in the order revocations
    /// became visible.
    async fn revoked_tokens_after(&self, now: UnixTime, after: u64) -> Result<(Vec<RevokedToken>, u64), StoreError>;

    /// Forgets revoked tokens and used assertion ids that expired before
    /// `now`: neither can matter after. Returns how many entries went.
    async fn prune_expired(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// The change counters, which grow with every write by anyone to the store.
    async fn generations(&self) -> Result<Generations, StoreError>;

    /// Woken soon after anyone commits a change, where the store can push
    /// changes (PostgreSQL's LISTEN/NOTIFY); `None` where only polling
    /// [`Store::generations`] notices them. A wake-up may be spurious, and a
    /// change may go unsignalled while the store is unreachable: it is a
    /// hint to look now, not a replacement for the poll.
    fn change_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}

/// Opens the store named by a URL: `sqlite://PATH` (created if absent) or
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (the database must exist;
/// its tables are created or migrated).
///
/// # Errors
/// A clear message when the URL names no supported store or the store cannot
/// be opened.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
    match StoreUrl::parse(url)? {
        StoreUrl::Sqlite(path) => {
            let store = SqliteStore::open(&path)
                .await
                .map_err(|e| format!("cannot open SQLite store {path:?}: {e}"))?;
            Ok(Arc::new(store))
        }
        StoreUrl::Postgres(url) => {
            let store = PostgresStore::open(&url)
                .await
                .map_err(|e| format!("cannot open PostgreSQL store: {e}"))?;
            Ok(Arc::new(store))
        }
    }
}

/// A parsed `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH`: a SQLite file (relative paths are from the working directory).
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`: a PostgreSQL database shared by replicas.
    Postgres(String),
}

impl StoreUrl {
    /// Parses a store URL, saying what is accepted when it is not one.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(format!(
                    "store URL {url:?} names no file: use sqlite://PATH, e.g. sqlite://tessera.db"
                ));
            }
            return Ok(Self::Sqlite(path.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Checked here, before anything connects, so a typo is reported as one.
            // The message never repeats the URL: it may carry a password.
            let (without_tls, _) = postgres::tls::split_url(url).map_err(|e| format!("PostgreSQL URL: {e}"))?;
            without_tls.parse::<tokio_postgres::Config>().map_err(|e| {
                format!("malformed PostgreSQL URL ({e}): use postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
            })?;
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(format!(
            "store URL {:?} is not supported: use sqlite://PATH (e.g. sqlite://tessera.db) \
             or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            redacted(url)
        ))
    }
}

/// `url` fit for a message or a log line: a password in its user
/// information (`user:PASSWORD@host`) or in a `password=` query parameter
/// is replaced by `***`. Every message that shows a store URL uses this.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
pub(crate) mod contract;

#[cfg(test)]
mod tests {
    use super::*;

    /// A mistyped scheme used to echo the whole URL, password included.
    #[test]
    fn a_mistyped_store_url_is_refused_without_its_password() {
        for url in [
            "postgress://tessera:hunter2@db/tessera",
            "mysql://tessera:hunter2@db:3306/tessera?sslmode=disable",
            "postgress://db/tessera?user=tessera&password=hunter2",
        ] {
            let message = StoreUrl::parse(url).unwrap_err();
            assert!(!message.contains("hunter2"), "{message}");
            assert!(message.contains("***"), "{message}");
        }
    }

    #[test]
    fn redaction_keeps_everything_but_the_password() {
        assert_eq!(
            redacted("postgres://tessera:s3cret@db.internal:5432/tessera?sslmode=require&password=x"),
            "postgres://tessera:***@db.internal:5432/tessera?sslmode=require&password=***"
        );
        assert_eq!(redacted("postgres://tessera@db/t"), "postgres://tessera@db/t");
        assert_eq!(redacted("sqlite://tessera.db"), "sqlite://tessera.db");
    }
}

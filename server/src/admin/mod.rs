//! Administration of the store: what `tessera client …` and `tessera serve
//! --demo` do. Works on the store directly, so it runs beside a live server;
//! the server notices through the store's change counter.

pub mod api;
pub mod backup;
mod certificates;
mod federation;
pub mod gate;

pub use certificates::{CertificateSpec, add_client_certificate, remove_client_certificate, update_client};
pub use federation::{
    NewTrust, add_federated_identity, add_trusted_issuer, remove_federated_identity, remove_trusted_issuer,
};

use crate::authority::{ClientSecret, is_valid_audience, is_valid_scope_token, secret};
use crate::clock::UnixTime;
use crate::keys::{KeyAlgorithm, KeyCustody, SigningKey};
use crate::store::{ClientKeyRecord, ClientRecord, SecretRecord, SigningKeyRecord, Store, StoreError};

/// Why an administrative change was not made. The messages name what is
/// wrong, never a flag: the CLI, or an API face, adds how to say it there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A client id outside the registration grammar.
    #[error("client id {0:?} is not valid: use 1 to {MAX_CLIENT_ID_LEN} characters from A-Z a-z 0-9 - . _ ~ : @ /")]
    InvalidClientId(String),
    /// A client with no scope.
    #[error("a client needs at least one scope")]
    NoScope,
    /// A scope outside RFC 6749 section 3.3.
    #[error(
        "scope {0:?} is not valid: visible ASCII without spaces, '\"' or '\\' (RFC 6749 section 3.3), at most {MAX_SCOPE_LEN} characters"
    )]
    InvalidScope(String),
    /// An audience that is not visible ASCII, or too long.
    #[error("audience {0:?} is not valid: visible ASCII without spaces, at most {MAX_AUDIENCE_LEN} characters")]
    InvalidAudience(String),
    /// A token lifetime of zero.
    #[error("a client's token lifetime must be at least 1 second")]
    ZeroTokenLifetime,
    /// The id is taken.
    #[error("client {0:?} already exists; choose another id, or delete it first")]
    ClientExists(String),
    /// No such client.
    #[error("no client {0:?} in the store")]
    UnknownClient(String),
    /// Rotation would leave the client more live secrets than allowed.
    #[error(
        "client {client_id:?} already has {live} live secrets (at most {MAX_LIVE_SECRETS}); wait for one to expire, or rotate keeping none of the old ones"
    )]
    TooManySecrets {
        /// The client.
        client_id: String,
        /// Its live secrets.
        live: usize,
    },
    /// A client key that cannot be registered (private, weak, unsupported, malformed).
    #[error("{0}")]
    InvalidKey(String),
    /// The client already has a key with this id.
    #[error("client {client_id:?} already has a key {kid:?}; choose another key id")]
    DuplicateKeyId {
        /// The client.
        client_id: String,
        /// The key id taken.
        kid: String,
    },
    /// The client has no key with this id.
    #[error("client {client_id:?} has no key {kid:?}")]
    UnknownClientKey {
        /// The client.
        client_id: String,
        /// The key id.
        kid: String,
    },
    /// A request the admin API cannot carry out as asked (two credentials kinds at once, a paging token it never gave …).
    #[error("{0}")]
    InvalidRequest(String),
    /// A signing key cannot be encrypted or decrypted with the KEK given.
    #[error(transparent)]
    Custody(#[from] crate::keys::CustodyError),
    /// No signing key with this id.
    #[error("no signing key {0:?}; see the list of signing keys")]
    UnknownSigningKey(String),
    /// The signing key was revoked before (or while) this request ran.
    #[error("signing key {0:?} is revoked already")]
    SigningKeyRevoked(String),
    /// An issuer name that is neither an `https://` URL nor a SPIFFE trust domain.
    #[error("{0}")]
    InvalidIssuer(String),
    /// Trusting this issuer would let Tessera's own tokens authenticate clients.
    #[error("{0:?} is this server's own issuer: its access tokens are never client credentials")]
    OwnIssuer(String),
    /// Keys or their source that cannot serve (no usable key, a URL that is not https, an unreadable CA).
    #[error("{0}")]
    InvalidJwks(String),
    /// The issuer is trusted already.
    #[error("issuer {0:?} is trusted already; remove it first to change it")]
    IssuerTrusted(String),
    /// The issuer is not trusted.
    #[error("issuer {0:?} is not trusted")]
    UnknownIssuer(String),
    /// A subject that cannot be matched (empty, too long, control characters, outside its trust domain).
    #[error("{0}")]
    InvalidSubject(String),
    /// The (issuer, subject) is bound to a client already.
    #[error(
        "subject {subject:?} of issuer {issuer:?} is bound to a client already; one identity authenticates as one client"
    )]
    IdentityTaken {
        /// The issuer.
        issuer: String,
        /// The subject.
        subject: String,
    },
    /// The client has no such binding.
    #[error("client {client_id:?} has no subject {subject:?} of issuer {issuer:?}")]
    UnknownIdentity {
        /// The client.
        client_id: String,
        /// The issuer.
        issuer: String,
        /// The subject.
        subject: String,
    },
    /// A certificate registration that cannot be matched (a malformed name, a file that is no certificate).
    #[error("{0}")]
    InvalidCertificate(String),
    /// The client has this certificate registration already.
    #[error("client {client_id:?} has {registration} already")]
    CertificateRegistered {
        /// The client.
        client_id: String,
        /// What is registered.
        registration: String,
    },
    /// The client has no such certificate registration.
    #[error("client {client_id:?} has no {registration}")]
    UnknownCertificate {
        /// The client.
        client_id: String,
        /// What was to be removed.
        registration: String,
    },
    /// An update that changes nothing.
    #[error("nothing to change: name at least one setting")]
    EmptyUpdate,
    /// A duration that does not parse.
    #[error("invalid duration {0:?}: use e.g. 0, 90s, 30m, 1h or 2d")]
    InvalidDuration(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// Generating or hashing failed inside Tessera.
    #[error("{0}")]
    Internal(String),
}

pub use tessera_proto::limits::MAX_CLIENT_ID_LEN;
use tessera_proto::limits::{MAX_AUDIENCE_LEN, MAX_SCOPE_LEN, MIN_RSA_BITS};

/// What to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The id, 1 to 128 of `A-Z a-z 0-9 - . _ ~ : @ /`.
    pub client_id: String,
    /// Scopes it may hold (at least one).
    pub scopes: Vec<String>,
    /// Audiences it may ask for; none means tokens for Tessera itself.
    pub audiences: Vec<String>,
    /// Token lifetime override in seconds.
    pub token_ttl: Option<u32>,
    /// Bind its tokens to the certificate of the connection they are asked
    /// for on (RFC 8705 section 3), however it authenticates.
    pub bind_to_certificate: bool,
}

/// Checks a client id for registration. Requests may name any id (and are
/// simply refused), but registered ids stay unambiguous in logs and URLs.
pub fn check_new_client_id(id: &str) -> Result<(), AdminError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._~:@/".contains(c);
    if id.is_empty() || id.len() > MAX_CLIENT_ID_LEN || !id.chars().all(ok_char) {
        return Err(AdminError::InvalidClientId(id.to_owned()));
    }
    Ok(())
}

/// A fresh secret and its stored form, hashed off the async runtime.
///
/// # Errors
/// When hashing fails.
pub async fn new_secret(
    now: UnixTime,
    expires_at: Option<UnixTime>,
) -> Result<(ClientSecret, SecretRecord), AdminError> {
    let secret = ClientSecret::generate();
    let check = secret::SecretCheck::new(&secret).into_inner();
    let to_hash = secret.clone();
    let phc = tokio::task::spawn_blocking(move || secret::hash_secret(&to_hash))
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let secret_id = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        secret::random_bytes::<8>(),
    );
    Ok((
        secret,
        SecretRecord {
            secret_id,
            phc,
            check: Some(check),
            created_at: now,
            expires_at,
        },
    ))
}

/// Validates and registers a client with a generated secret, which is
/// returned: this is the only time it exists in the clear.
///
/// # Errors
/// A message saying what to fix, or that the id is taken.
pub async fn create_client(store: &dyn Store, new: NewClient, now: UnixTime) -> Result<ClientSecret, AdminError> {
    let secret = create_client_with(store, new, true, now).await?;
    secret.ok_or_else(|| AdminError::Internal("a client created with a secret has none".into()))
}

/// Validates and registers a client, with a generated secret (returned) or
/// with none: a client that will authenticate only by a key, a platform
/// identity or a certificate needs no secret lying about.
///
/// # Errors
/// A message saying what to fix, or that the id is taken.
pub async fn create_client_with(
    store: &dyn Store,
    new: NewClient,
    with_secret: bool,
    now: UnixTime,
) -> Result<Option<ClientSecret>, AdminError> {
    check_new_client_id(&new.client_id)?;
    check_scopes(&new.scopes)?;
    check_audiences(&new.audiences)?;
    check_token_ttl(new.token_ttl)?;
    let (secret, records) = if with_secret {
        let (secret, record) = new_secret(now, None).await?;
        (Some(secret), vec![record])
    } else {
        (None, vec![])
    };
    // Order kept, every repeat dropped (`Vec::dedup` drops adjacent ones only).
    let scopes = first_of_each(new.scopes);
    let audiences = first_of_each(new.audiences);
    let client = ClientRecord {
        client_id: new.client_id.clone(),
        scopes,
        audiences,
        token_ttl: new.token_ttl,
        disabled: false,
        created_at: now,
        secrets: records,
        keys: vec![],
        federated: vec![],
        certificates: vec![],
        bind_to_certificate: new.bind_to_certificate,
    };
    match store.create_client(client).await {
        Ok(()) => {
            tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_CREATED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %new.client_id, with_secret, bind_to_certificate = new.bind_to_certificate);
            Ok(secret)
        }
        Err(StoreError::AlreadyExists(_)) => Err(AdminError::ClientExists(new.client_id)),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn check_scopes(scopes: &[String]) -> Result<(), AdminError> {
    if scopes.is_empty() {
        return Err(AdminError::NoScope);
    }
    if let Some(bad) = scopes.iter().find(|s| !is_valid_scope_token(s)) {
        return Err(AdminError::InvalidScope(bad.clone()));
    }
    Ok(())
}

pub(crate) fn check_audiences(audiences: &[String]) -> Result<(), AdminError> {
    if let Some(bad) = audiences.iter().find(|a| !is_valid_audience(a)) {
        return Err(AdminError::InvalidAudience(bad.clone()));
    }
    Ok(())
}

pub(crate) fn check_token_ttl(ttl: Option<u32>) -> Result<(), AdminError> {
    if ttl == Some(0) {
        return Err(AdminError::ZeroTokenLifetime);
    }
    Ok(())
}

/// `items` with every repeat removed, in the order of first appearance.
pub(crate) fn first_of_each(items: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept
}

/// Registers the demo client, or gives the existing one a new secret and
/// enables it. For trying Tessera out, never for production.
///
/// # Errors
/// When the store fails.
pub async fn ensure_demo_client(store: &dyn Store, now: UnixTime) -> Result<(String, ClientSecret), AdminError> {
    const DEMO_ID: &str = "demo";
    let new = NewClient {
        client_id: DEMO_ID.into(),
        scopes: vec!["demo:read".into(), "demo:write".into()],
        audiences: vec![],
        token_ttl: None,
        bind_to_certificate: false,
    };
    match create_client(store, new, now).await {
        Ok(secret) => Ok((DEMO_ID.into(), secret)),
        Err(_) if store.client(DEMO_ID).await?.is_some() => {
            let (secret, record) = new_secret(now, None).await?;
            // The demo's earlier secrets expire now: only the one printed works.
            store.add_secret(DEMO_ID, record, Some(now)).await?;
            store.set_client_disabled(DEMO_ID, false).await?;
            Ok((DEMO_ID.into(), secret))
        }
        Err(e) => Err(e),
    }
}

/// Where a signing key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// Signing new tokens.
    Active,
    /// Replaced; still verifies tokens it signed until they expire.
    Retired,
    /// Revoked as compromised: neither signs nor verifies.
    Revoked,
}

impl KeyState {
    /// Lower-case name, as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        }
    }
}

/// Every stored key with its state at `now`, in activation order.
pub fn key_states(records: &[SigningKeyRecord], now: UnixTime) -> Vec<(SigningKeyRecord, KeyState)> {
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|k| (k.activates_at, k.created_at)); // stable: ties keep the order added
    let signer = sorted
        .iter()
        .rev()
        .find(|k| k.revoked_at.is_none() && k.activates_at <= now)
        .map(|k| k.kid.clone());
    sorted
        .into_iter()
        .map(|k| {
            let state = if k.revoked_at.is_some() {
                KeyState::Revoked
            } else if k.activates_at > now {
                KeyState::Pending
            } else if Some(&k.kid) == signer.as_ref() {
                KeyState::Active
            } else {
                KeyState::Retired
            };
            (k, state)
        })
        .collect()
}

/// Generates a key off the async runtime (RSA generation takes a while),
/// sealed as `custody` keeps keys, after checking that the store's keys are
/// kept the same way (a key under another KEK would not load elsewhere).
async fn generate_key(
    custody: &KeyCustody,
    stored: &[SigningKeyRecord],
    alg: KeyAlgorithm,
    now: UnixTime,
) -> Result<SigningKeyRecord, AdminError> {
    custody.check_matches(stored)?;
    let record = tokio::task::spawn_blocking(move || SigningKey::generate(alg, now))
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?
        .map_err(AdminError::Internal)?;
    custody.seal(record).map_err(AdminError::Internal)
}

/// Adds a new signing key, published at once and signing after
/// `publish_ahead` seconds, so verifiers' caches learn it before its first
/// token. The algorithm defaults to the newest key's.
///
/// # Errors
/// When the store fails or has no key yet (start the server once first).
pub async fn rotate_key(
    store: &dyn Store,
    custody: &KeyCustody,
    alg: Option<KeyAlgorithm>,
    now: UnixTime,
    publish_ahead: u32,
) -> Result<SigningKeyRecord, AdminError> {
    let records = store.signing_keys().await?;
    let newest = key_states(&records, now)
        .into_iter()
        .rev()
        .find(|(_, state)| *state != KeyState::Revoked);
    let alg = match (alg, &newest) {
        (Some(alg), _) => alg,
        (None, Some((key, _))) => KeyAlgorithm::parse(&key.alg).map_err(AdminError::Internal)?,
        (None, None) => KeyAlgorithm::Es256,
    };
    let mut record = generate_key(custody, &records, alg, now).await?;
    record.activates_at = now + i64::from(publish_ahead);
    store.add_signing_key(record.clone(), None).await?;
    tracing::info!(target: "tessera::audit", event = crate::audit::SIGNING_KEY_ROTATED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), kid = %record.kid, activates_at = record.activates_at);
    Ok(record)
}

/// Revokes a compromised key: it leaves the JWKS and stops verifying. If it
/// was signing, a fresh key of the same algorithm takes over at once (no
/// publish-ahead: a compromised key must not sign another token). Returns the
/// replacement, if one was made.
///
/// # Errors
/// When there is no such key, it is revoked already, or the store fails.
pub async fn revoke_key(
    store: &dyn Store,
    custody: &KeyCustody,
    kid: &str,
    now: UnixTime,
) -> Result<Option<SigningKeyRecord>, AdminError> {
    let records = store.signing_keys().await?;
    let states = key_states(&records, now);
    let Some((target, state)) = states.iter().find(|(k, _)| k.kid == kid) else {
        return Err(AdminError::UnknownSigningKey(kid.to_owned()));
    };
    if *state == KeyState::Revoked {
        return Err(AdminError::SigningKeyRevoked(kid.to_owned()));
    }
    let others_usable = states.iter().any(|(k, s)| k.kid != kid && *s != KeyState::Revoked);
    // Make the replacement first, so there is never a moment without a signer.
    let replacement = if *state == KeyState::Active || !others_usable {
        let alg = KeyAlgorithm::parse(&target.alg).map_err(AdminError::Internal)?;
        let record = generate_key(custody, &records, alg, now).await?;
        store.add_signing_key(record.clone(), None).await?;
        Some(record)
    } else {
        None
    };
    if !store.revoke_signing_key(kid, now).await? {
        return Err(AdminError::SigningKeyRevoked(kid.to_owned()));
    }
    tracing::warn!(
        target: "tessera::audit",
        event = crate::audit::SIGNING_KEY_REVOKED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(),
        kid = %kid,
        replacement = %replacement.as_ref().map_or("", |r| r.kid.as_str()),
    );
    Ok(replacement)
}

/// Moves every signing key (revoked ones included: they are private keys
/// too) under `new`'s KEK, in one transaction: keys sealed under `old`'s KEK
/// and keys in the clear. Keys under `new` already are left alone, so a
/// second run changes nothing. Returns how many keys moved.
///
/// # Errors
/// When a key does not decrypt with `old`, or the keys changed meanwhile.
pub async fn rewrap_keys(store: &dyn Store, old: &KeyCustody, new: &KeyCustody) -> Result<usize, AdminError> {
    let records = store.signing_keys().await?;
    let changes = new.reseal_all(&records, old)?;
    let moved = changes.len();
    if moved > 0 && !store.replace_signing_key_material(changes).await? {
        return Err(AdminError::Internal(
            "the signing keys changed while they were being rewrapped (a rotation?); nothing was changed: run the command again".into(),
        ));
    }
    tracing::info!(
        target: "tessera::audit",
        event = crate::audit::SIGNING_KEYS_REWRAPPED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(),
        keys = moved,
        from = %old.kek_id().map_or_else(|| "none".to_owned(), |id| id.to_string()),
        to = %new.kek_id().map_or_else(|| "none".to_owned(), |id| id.to_string()),
    );
    Ok(moved)
}

/// Most secrets a client may hold live at once; rotation beyond this is
/// refused until older ones expire (or `--keep-old-for 0` retires them now).
pub const MAX_LIVE_SECRETS: usize = 5;

/// Parses `90s`, `30m`, `1h`, `2d` or a plain number of seconds.
///
/// # Errors
/// When the text is none of those.
pub fn parse_duration(text: &str) -> Result<i64, AdminError> {
    let text = text.trim();
    let bad = || AdminError::InvalidDuration(text.to_owned());
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    number
        .checked_mul(unit)
        .filter(|secs| *secs <= 365 * 86_400)
        .ok_or_else(bad)
}

/// Gives a client a new secret; its other secrets stay valid for
/// `keep_old_for` seconds more (or until their own earlier expiry), so
/// deployments can switch without downtime. Returns the new secret, shown once.
///
/// # Errors
/// When there is no such client, it would hold too many live secrets, or the store fails.
pub async fn rotate_secret(
    store: &dyn Store,
    client_id: &str,
    keep_old_for: i64,
    now: UnixTime,
) -> Result<ClientSecret, AdminError> {
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| AdminError::UnknownClient(client_id.to_owned()))?;
    let still_live = if keep_old_for == 0 {
        0
    } else {
        client.secrets.iter().filter(|s| s.is_live(now)).count()
    };
    if still_live >= MAX_LIVE_SECRETS {
        return Err(AdminError::TooManySecrets {
            client_id: client_id.to_owned(),
            live: still_live,
        });
    }
    let (secret, record) = new_secret(now, None).await?;
    let secret_id = record.secret_id.clone();
    let others_expire_at = Some(now + keep_old_for);
    if !store.add_secret(client_id, record, others_expire_at).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_SECRET_ROTATED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id, secret_id = %secret_id, others_expire_at = now + keep_old_for);
    Ok(secret)
}

/// Registers a public key for `private_key_jwt`, from a JWK (JSON) or a PEM
/// public key. The `kid` defaults to the JWK's, else its RFC 7638
/// thumbprint; the algorithm to the JWK's `alg`, else the one its key type
/// implies (P-256: ES256, Ed25519: EdDSA, RSA: RS256).
///
/// # Errors
/// For a private or symmetric key, an RSA key under 2048 bits, a key that
/// does not fit the algorithm, an unknown client, or a `kid` already taken.
pub async fn add_client_key(
    store: &dyn Store,
    client_id: &str,
    material: KeyMaterial,
    kid: Option<String>,
    alg: Option<KeyAlgorithm>,
    now: UnixTime,
) -> Result<ClientKeyRecord, AdminError> {
    let record = client_key_record(material, kid, alg, now).map_err(AdminError::InvalidKey)?;
    match store.add_client_key(client_id, record.clone()).await {
        Ok(true) => {
            tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_KEY_ADDED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id, kid = %record.kid, alg = %record.alg);
            Ok(record)
        }
        Ok(false) => Err(AdminError::UnknownClient(client_id.to_owned())),
        Err(StoreError::AlreadyExists(_)) => Err(AdminError::DuplicateKeyId {
            client_id: client_id.to_owned(),
            kid: record.kid,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Removes a client's public key: assertions signed with it stop
/// authenticating once replicas see the change.
///
/// # Errors
/// When the client has no such key (or does not exist), or the store fails.
pub async fn remove_client_key(store: &dyn Store, client_id: &str, kid: &str) -> Result<(), AdminError> {
    if !store.remove_client_key(client_id, kid).await? {
        return Err(match store.client(client_id).await? {
            Some(_) => AdminError::UnknownClientKey {
                client_id: client_id.to_owned(),
                kid: kid.to_owned(),
            },
            None => AdminError::UnknownClient(client_id.to_owned()),
        });
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_KEY_REMOVED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id, kid = %kid);
    Ok(())
}

/// Stops (`disabled`) or resumes issuing tokens to a client; its tokens
/// stop being active while it is disabled.
///
/// # Errors
/// When there is no such client, or the store fails.
pub async fn set_client_disabled(store: &dyn Store, client_id: &str, disabled: bool) -> Result<(), AdminError> {
    if !store.set_client_disabled(client_id, disabled).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    let event = if disabled {
        crate::audit::CLIENT_DISABLED
    } else {
        crate::audit::CLIENT_ENABLED
    };
    tracing::info!(target: "tessera::audit", event, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id);
    Ok(())
}

/// Deletes a client with its secrets, keys and bindings.
///
/// # Errors
/// When there is no such client, or the store fails.
pub async fn delete_client(store: &dyn Store, client_id: &str) -> Result<(), AdminError> {
    if !store.delete_client(client_id).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_DELETED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id);
    Ok(())
}

/// The JWK of a public key given as a JWK or a PEM; private material refused.
fn public_jwk(material: KeyMaterial, alg: Option<KeyAlgorithm>) -> Result<jsonwebtoken::jwk::Jwk, String> {
    use jsonwebtoken::jwk::Jwk;
    Ok(match material {
        KeyMaterial::Jwk(text) => {
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("not a JWK: {e}"))?;
            if ["d", "p", "q", "dp", "dq", "qi", "k"]
                .iter()
                .any(|m| value.get(m).is_some())
            {
                return Err("this JWK holds private or symmetric key material; register the public key only".into());
            }
            serde_json::from_value(value).map_err(|e| format!("not a usable JWK: {e}"))?
        }
        KeyMaterial::Pem(text) => {
            if text.contains("PRIVATE KEY") {
                return Err("this PEM holds a private key; register the public key only".into());
            }
            let pem = text.as_bytes();
            let (key, implied) = if let Ok(key) = jsonwebtoken::DecodingKey::from_ec_pem(pem) {
                (key, KeyAlgorithm::Es256)
            } else if let Ok(key) = jsonwebtoken::DecodingKey::from_ed_pem(pem) {
                (key, KeyAlgorithm::EdDsa)
            } else if let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(pem) {
                (key, KeyAlgorithm::Rs256)
            } else {
                return Err("not a PEM public key (P-256, Ed25519 or RSA)".into());
            };
            Jwk::from_decoding_key(&key, Some(alg.unwrap_or(implied).jwt_algorithm()))
                .map_err(|e| format!("cannot convert the PEM key: {e}"))?
        }
    })
}

/// The record of a public key to register, checked: public, strong enough,
/// fit for its algorithm, with a usable `kid`.
pub(crate) fn client_key_record(
    material: KeyMaterial,
    kid: Option<String>,
    alg: Option<KeyAlgorithm>,
    now: UnixTime,
) -> Result<ClientKeyRecord, String> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, ThumbprintHash};
    let mut jwk = public_jwk(material, alg)?;
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => KeyAlgorithm::Es256,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => KeyAlgorithm::EdDsa,
        AlgorithmParameters::RSA(rsa) => {
            let bits = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &rsa.n)
                .map(|n| n.iter().skip_while(|b| **b == 0).count() * 8)
                .unwrap_or(0);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA keys must have at least {MIN_RSA_BITS} bits (this one: {bits})"
                ));
            }
            KeyAlgorithm::Rs256
        }
        _ => return Err("unsupported key type: use P-256 (ES256), Ed25519 (EdDSA) or RSA (RS256)".into()),
    };
    let declared = jwk
        .common
        .key_algorithm
        .map(|a| KeyAlgorithm::parse(&a.to_string()))
        .transpose()?;
    let alg = alg.or(declared).unwrap_or(implied);
    if alg != implied {
        return Err(format!("a {} key cannot sign {}", implied.jws_name(), alg.jws_name()));
    }
    jwk.common.key_algorithm = Some(alg.jwt_algorithm().into());
    let kid = match kid.or_else(|| jwk.common.key_id.clone()) {
        Some(kid) => kid,
        None => jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("thumbprint: {e}"))?,
    };
    if kid.is_empty() || kid.len() > 128 || kid.chars().any(|c| c.is_control()) {
        return Err(format!("kid {kid:?} is not valid: 1 to 128 printable characters"));
    }
    jwk.common.key_id = Some(kid.clone());
    let record = ClientKeyRecord {
        kid,
        alg: alg.jws_name().to_owned(),
        jwk: serde_json::to_string(&jwk).map_err(|e| e.to_string())?,
        created_at: now,
    };
    crate::authority::client_decoding_key(&record)?;
    Ok(record)
}

/// A public key as given to `tessera client add-key`.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// A JWK, as JSON text.
    Jwk(String),
    /// A PEM `PUBLIC KEY`.
    Pem(String),
}

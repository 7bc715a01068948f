//! Administration of the store: what `tessera client …` and `tessera serve
//! --demo` do. Works on the store directly, so it runs beside a live server;
//! the server notices through the store's change counter.

use crate::authority::{ClientSecret, is_valid_audience, is_valid_scope_token, secret};
use crate::clock::UnixTime;
use crate::store::{ClientRecord, SecretRecord, Store, StoreError};

/// Longest client id that may be registered.
pub const MAX_CLIENT_ID_LEN: usize = 128;

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
}

/// Checks a client id for registration. Requests may name any id (and are
/// simply refused), but registered ids stay unambiguous in logs and URLs.
pub fn check_new_client_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._~:@/".contains(c);
    if id.is_empty() || id.len() > MAX_CLIENT_ID_LEN || !id.chars().all(ok_char) {
        return Err(format!(
            "client id {id:?} is not valid: use 1 to {MAX_CLIENT_ID_LEN} characters from A-Z a-z 0-9 - . _ ~ : @ /"
        ));
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
) -> Result<(ClientSecret, SecretRecord), String> {
    let secret = ClientSecret::generate();
    let to_hash = secret.clone();
    let phc = tokio::task::spawn_blocking(move || secret::hash_secret(&to_hash))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let secret_id = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        secret::random_bytes::<8>(),
    );
    Ok((
        secret,
        SecretRecord {
            secret_id,
            phc,
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
pub async fn create_client(
    store: &dyn Store,
    new: NewClient,
    now: UnixTime,
) -> Result<ClientSecret, String> {
    check_new_client_id(&new.client_id)?;
    if new.scopes.is_empty() {
        return Err("a client needs at least one --scope".into());
    }
    if let Some(bad) = new.scopes.iter().find(|s| !is_valid_scope_token(s)) {
        return Err(format!(
            "scope {bad:?} is not valid: visible ASCII without spaces, '\"' or '\\' (RFC 6749 §3.3), at most 128 characters"
        ));
    }
    if let Some(bad) = new.audiences.iter().find(|a| !is_valid_audience(a)) {
        return Err(format!(
            "audience {bad:?} is not valid: visible ASCII without spaces, at most 512 characters"
        ));
    }
    if new.token_ttl == Some(0) {
        return Err("--ttl must be at least 1 second".into());
    }
    let (secret, record) = new_secret(now, None).await?;
    let mut scopes = new.scopes;
    scopes.dedup();
    let mut audiences = new.audiences;
    audiences.dedup();
    let client = ClientRecord {
        client_id: new.client_id.clone(),
        scopes,
        audiences,
        token_ttl: new.token_ttl,
        disabled: false,
        created_at: now,
        secrets: vec![record],
    };
    match store.create_client(client).await {
        Ok(()) => Ok(secret),
        Err(StoreError::AlreadyExists(_)) => Err(format!(
            "client {:?} already exists; choose another id, or delete it first with `tessera client delete {}`",
            new.client_id, new.client_id
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Registers the demo client, or gives the existing one a new secret and
/// enables it. For trying Tessera out, never for production.
///
/// # Errors
/// When the store fails.
pub async fn ensure_demo_client(
    store: &dyn Store,
    now: UnixTime,
) -> Result<(String, ClientSecret), String> {
    const DEMO_ID: &str = "demo";
    let new = NewClient {
        client_id: DEMO_ID.into(),
        scopes: vec!["demo:read".into(), "demo:write".into()],
        audiences: vec![],
        token_ttl: None,
    };
    match create_client(store, new, now).await {
        Ok(secret) => Ok((DEMO_ID.into(), secret)),
        Err(_)
            if store
                .client(DEMO_ID)
                .await
                .map_err(|e| e.to_string())?
                .is_some() =>
        {
            let (secret, record) = new_secret(now, None).await?;
            store
                .replace_secrets(DEMO_ID, record)
                .await
                .map_err(|e| e.to_string())?;
            store
                .set_client_disabled(DEMO_ID, false)
                .await
                .map_err(|e| e.to_string())?;
            Ok((DEMO_ID.into(), secret))
        }
        Err(e) => Err(e),
    }
}

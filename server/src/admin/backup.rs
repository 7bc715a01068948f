//! Backup and restore: the whole store as one JSON file, written by
//! `tessera export-store` and loaded by `tessera import-store` into an empty
//! store of either kind (which is also how a deployment moves from the
//! embedded SQLite file to PostgreSQL).
//!
//! The file holds what the store holds and nothing more: secret hashes (never
//! secrets), signing keys as stored (sealed when a KEK is set, so the same
//! KEK must be given to servers on the new store), revocations and assertion
//! ids not yet expired.

use serde::{Deserialize, Serialize};

use super::AdminError;
use crate::clock::UnixTime;
use crate::keys::custody::sealed_under;
use crate::store::{Store, StoreSnapshot};

/// The version of the file format this Tessera writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// An export file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreExport {
    /// Always [`EXPORT_VERSION`] for files this Tessera writes.
    pub tessera_store_export: u32,
    /// When the snapshot was taken.
    pub exported_at: UnixTime,
    /// The store's contents.
    pub store: StoreSnapshot,
}

/// What an export or an import moved, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Clients.
    pub clients: usize,
    /// Signing keys, and how many of them are sealed under a KEK.
    pub signing_keys: usize,
    /// Signing keys stored encrypted.
    pub sealed_keys: usize,
    /// Trusted issuers.
    pub trusted_issuers: usize,
    /// Revocations not yet expired.
    pub revoked_tokens: usize,
}

impl Counts {
    fn of(snapshot: &StoreSnapshot) -> Self {
        Self {
            clients: snapshot.clients.len(),
            signing_keys: snapshot.signing_keys.len(),
            sealed_keys: snapshot
                .signing_keys
                .iter()
                .filter(|k| sealed_under(&k.private_pkcs8).is_some())
                .count(),
            trusted_issuers: snapshot.trusted_issuers.len(),
            revoked_tokens: snapshot.revoked_tokens.len(),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} client(s), {} signing key(s) ({} encrypted), {} trusted issuer(s), {} revoked token(s)",
            self.clients, self.signing_keys, self.sealed_keys, self.trusted_issuers, self.revoked_tokens
        )
    }
}

/// Reads the whole store at one instant, as JSON.
///
/// # Errors
/// When the store cannot be read.
pub async fn export(store: &dyn Store, now: UnixTime) -> Result<(Vec<u8>, Counts), AdminError> {
    let snapshot = store.snapshot(now).await?;
    let counts = Counts::of(&snapshot);
    let file = StoreExport {
        tessera_store_export: EXPORT_VERSION,
        exported_at: now,
        store: snapshot,
    };
    let json = serde_json::to_vec(&file).map_err(|e| AdminError::Internal(format!("encoding the export: {e}")))?;
    Ok((json, counts))
}

/// Parses an export file, whole, before anything is written anywhere.
///
/// # Errors
/// A message with the line and column of what is wrong, or the version.
pub fn parse(json: &[u8]) -> Result<StoreExport, String> {
    let file: StoreExport = serde_json::from_slice(json).map_err(|e| format!("not a Tessera store export: {e}"))?;
    if file.tessera_store_export != EXPORT_VERSION {
        return Err(format!(
            "export format version {} is not one this Tessera reads ({EXPORT_VERSION}); use the Tessera that wrote it",
            file.tessera_store_export
        ));
    }
    Ok(file)
}

/// Loads an export into an empty store, in one transaction.
///
/// # Errors
/// When the store is not empty ([`crate::store::StoreError::NotEmpty`]) or fails.
pub async fn import(store: &dyn Store, file: StoreExport) -> Result<Counts, AdminError> {
    let counts = Counts::of(&file.store);
    store.restore(file.store).await?;
    tracing::info!(
        target: "tessera::audit",
        event = crate::audit::STORE_IMPORTED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(),
        clients = counts.clients,
        signing_keys = counts.signing_keys,
        revoked_tokens = counts.revoked_tokens,
        exported_at = file.exported_at,
    );
    Ok(counts)
}

//! `tessera keys …`: inspect and rotate signing keys, on the store directly.

use clap::Subcommand;
use serde_json::json;

use super::{CliError, StoreArg, algorithm, open_store};
use crate::admin;
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::{self, LogFormat};
use crate::logging;

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// List signing keys and their state (public information only).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Add a new signing key: published at once, signing after --publish-ahead.
    Rotate {
        /// Seconds the new key is published before it signs (verifiers cache the JWKS for 300 s)
        #[arg(long, value_name = "SECS", default_value_t = config::defaults::KEY_PUBLISH_AHEAD_SECS)]
        publish_ahead: u32,
        /// Algorithm of the new key: ES256, EdDSA or RS256 [default: that of the newest key]
        #[arg(long, value_name = "ALG")]
        alg: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a compromised key: out of the JWKS at once, its tokens inactive, a fresh key signs.
    Revoke {
        /// The key id, from `tessera keys list`.
        kid: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Runs a `keys` subcommand.
pub(super) async fn run(command: KeysCommand) -> Result<(), CliError> {
    let _log_guard = logging::init(LogFormat::Text, false);
    let now = SystemClock.now();
    match command {
        KeysCommand::List { json, store } => list(&store, json, now).await,
        KeysCommand::Rotate {
            publish_ahead,
            alg,
            store,
        } => rotate(&store, publish_ahead, alg.as_deref(), now).await,
        KeysCommand::Revoke { kid, store } => revoke(&store, &kid, now).await,
    }
}

async fn list(store: &StoreArg, json: bool, now: UnixTime) -> Result<(), CliError> {
    let store = open_store(&store.store).await?;
    let records = store.signing_keys().await.map_err(CliError::failed)?;
    let states = admin::key_states(&records, now);
    if json {
        let keys: Vec<_> = states
            .iter()
            .map(|(k, state)| {
                json!({
                    "kid": k.kid,
                    "alg": k.alg,
                    "state": state.as_str(),
                    "created_at": k.created_at,
                    "activates_at": k.activates_at,
                    "revoked_at": k.revoked_at,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(keys));
    } else if states.is_empty() {
        println!("No signing keys yet: the first `tessera serve` on this store creates one.");
    } else {
        println!(
            "{:<45} {:<6} {:<8} {:<12} CREATED_AT",
            "KID", "ALG", "STATE", "ACTIVATES_AT"
        );
        for (k, state) in &states {
            println!(
                "{:<45} {:<6} {:<8} {:<12} {}",
                k.kid,
                k.alg,
                state.as_str(),
                k.activates_at,
                k.created_at
            );
        }
    }
    Ok(())
}

async fn rotate(store: &StoreArg, publish_ahead: u32, alg: Option<&str>, now: UnixTime) -> Result<(), CliError> {
    let alg = algorithm(alg)?;
    let store = open_store(&store.store).await?;
    let record = admin::rotate_key(store.as_ref(), alg, now, publish_ahead).await?;
    println!(
        "Added signing key {} ({}): published now, signing from {} ({publish_ahead} s from now).",
        record.kid, record.alg, record.activates_at
    );
    Ok(())
}

async fn revoke(store: &StoreArg, kid: &str, now: UnixTime) -> Result<(), CliError> {
    let store = open_store(&store.store).await?;
    let replacement = admin::revoke_key(store.as_ref(), kid, now).await?;
    println!("Revoked signing key {kid}: it is out of the JWKS and its tokens are inactive.");
    if let Some(new) = replacement {
        println!("Signing key {} ({}) signs from now on.", new.kid, new.alg);
    }
    Ok(())
}

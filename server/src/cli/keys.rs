//! `tessera keys …`: inspect and rotate signing keys, on the store directly;
//! make and change the key encryption key they are stored under.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use tessera_proto::admin::v1 as pb;

use super::target::TargetArg;
use super::{CliError, StoreArg, algorithm, open_store};
use crate::admin;
use crate::config::{self, LogFormat};
use crate::keys::KeyCustody;
use crate::keys::custody;
use crate::logging;

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// List signing keys and their state (public information only).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArg,
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
        kek: KekArg,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Revoke a compromised key: out of the JWKS at once, its tokens inactive, a fresh key signs.
    Revoke {
        /// The key id, from `tessera keys list`.
        kid: String,
        #[command(flatten)]
        kek: KekArg,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Write a new key encryption key (32 random bytes, mode 0600) for --key-encryption-key-file.
    GenerateKek {
        /// Where to write it; an existing file is never overwritten
        #[arg(long, value_name = "FILE", default_value = "tessera.kek")]
        out: PathBuf,
    },
    /// Encrypt every signing key under a new key encryption key, in one transaction (keys in the clear too).
    Rewrap {
        /// The key encryption key to move the keys to
        #[arg(long, value_name = "FILE")]
        new_key_encryption_key_file: PathBuf,
        #[command(flatten)]
        kek: KekArg,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// The KEK the store's signing keys are encrypted under, as `serve` takes it.
#[derive(Debug, Args)]
pub(super) struct KekArg {
    /// The key encryption key the store's signing keys are encrypted under (as given to `serve`)
    #[arg(long, env = "TESSERA_KEY_ENCRYPTION_KEY_FILE", value_name = "FILE")]
    key_encryption_key_file: Option<PathBuf>,
}

impl KekArg {
    fn custody(&self) -> Result<KeyCustody, CliError> {
        KeyCustody::from_option(self.key_encryption_key_file.as_deref()).map_err(CliError::Failed)
    }

    /// The custody to give the store, or none when it is not named (a
    /// server seals keys under its own, and refuses to be told another).
    fn given(&self) -> Result<Option<KeyCustody>, CliError> {
        self.key_encryption_key_file
            .as_ref()
            .map(|_| self.custody())
            .transpose()
    }
}

/// Runs a `keys` subcommand.
pub(super) async fn run(command: KeysCommand) -> Result<(), CliError> {
    let _log_guard = logging::init(LogFormat::Text, false);
    match command {
        KeysCommand::List { json, target } => list(&target, json).await,
        KeysCommand::Rotate {
            publish_ahead,
            alg,
            kek,
            target,
        } => rotate(&target, kek.given()?, publish_ahead, alg.as_deref()).await,
        KeysCommand::Revoke { kid, kek, target } => revoke(&target, kek.given()?, &kid).await,
        KeysCommand::GenerateKek { out } => generate_kek(&out),
        KeysCommand::Rewrap {
            new_key_encryption_key_file,
            kek,
            store,
        } => rewrap(&store, &kek.custody()?, &new_key_encryption_key_file).await,
    }
}

async fn list(target: &TargetArg, json: bool) -> Result<(), CliError> {
    let keys = target
        .open(None)
        .await?
        .list_signing_keys(pb::ListSigningKeysRequest {})
        .await?
        .keys;
    if json {
        let keys: Vec<_> = keys
            .iter()
            .map(|k| {
                json!({
                    "kid": k.kid,
                    "alg": k.alg,
                    "state": k.state,
                    "created_at": k.created_at,
                    "activates_at": k.activates_at,
                    "revoked_at": k.revoked_at,
                    "encrypted_under": (!k.encrypted_under.is_empty()).then_some(&k.encrypted_under),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(keys));
    } else if keys.is_empty() {
        println!("No signing keys yet: the first `tessera serve` on this store creates one.");
    } else {
        println!(
            "{:<45} {:<6} {:<8} {:<12} {:<12} AT_REST",
            "KID", "ALG", "STATE", "ACTIVATES_AT", "CREATED_AT"
        );
        for k in &keys {
            let at_rest = if k.encrypted_under.is_empty() {
                "clear".to_owned()
            } else {
                format!("kek:{}", k.encrypted_under)
            };
            println!(
                "{:<45} {:<6} {:<8} {:<12} {:<12} {at_rest}",
                k.kid, k.alg, k.state, k.activates_at, k.created_at
            );
        }
    }
    Ok(())
}

async fn rotate(
    target: &TargetArg,
    custody: Option<KeyCustody>,
    publish_ahead: u32,
    alg: Option<&str>,
) -> Result<(), CliError> {
    let alg = algorithm(alg)?;
    let request = pb::RotateSigningKeyRequest {
        alg: alg.map(|a| a.jws_name().to_owned()).unwrap_or_default(),
        publish_ahead_secs: Some(publish_ahead),
    };
    let key = target
        .open(custody)
        .await?
        .rotate_signing_key(request)
        .await?
        .key
        .unwrap_or_default();
    println!(
        "Added signing key {} ({}): published now, signing from {} ({publish_ahead} s from now).",
        key.kid, key.alg, key.activates_at
    );
    Ok(())
}

async fn revoke(target: &TargetArg, custody: Option<KeyCustody>, kid: &str) -> Result<(), CliError> {
    let request = pb::RevokeSigningKeyRequest { kid: kid.to_owned() };
    let answer = target.open(custody).await?.revoke_signing_key(request).await?;
    println!("Revoked signing key {kid}: it is out of the JWKS and its tokens are inactive.");
    if let Some(new) = answer.replacement {
        println!("Signing key {} ({}) signs from now on.", new.kid, new.alg);
    }
    Ok(())
}

fn generate_kek(out: &Path) -> Result<(), CliError> {
    let bytes = custody::generate_kek().map_err(CliError::Failed)?;
    crate::private_files::write_new(out, &bytes).map_err(CliError::Failed)?;
    let kek = custody::Kek::from_bytes(&bytes).map_err(CliError::Failed)?;
    println!(
        "Wrote key encryption key {} to {} (mode 0600). Start with --key-encryption-key-file {}, and keep a copy \
         apart from the store's backups: without it the keys cannot be decrypted.",
        kek.id(),
        out.display(),
        out.display()
    );
    Ok(())
}

async fn rewrap(store: &StoreArg, old: &KeyCustody, new_file: &Path) -> Result<(), CliError> {
    let new = KeyCustody::from_file(new_file).map_err(CliError::Failed)?;
    let store = open_store(&store.store).await?;
    let moved = admin::rewrap_keys(store.as_ref(), old, &new).await?;
    let id = new.kek_id().map(|id| id.to_string()).unwrap_or_default();
    println!(
        "{moved} signing key(s) now encrypted under key encryption key {id}. Running servers keep the keys they \
         hold; point their --key-encryption-key-file at {} (they read it again when they need it) before the next \
         key rotation, and restart with it.",
        new_file.display()
    );
    Ok(())
}

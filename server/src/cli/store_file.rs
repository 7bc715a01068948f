//! `tessera export-store` and `tessera import-store`: the whole store to a
//! file and back (see [`crate::admin::backup`]).

use std::path::PathBuf;

use clap::Args;

use super::{CliError, StoreArg, open_store};
use crate::admin::backup;
use crate::clock::{Clock, SystemClock};
use crate::config::LogFormat;
use crate::logging;

/// `tessera export-store`.
#[derive(Debug, Args)]
pub(super) struct ExportStore {
    /// The file to write (mode 0600; an existing file is never overwritten)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    store: StoreArg,
}

/// `tessera import-store`.
#[derive(Debug, Args)]
pub(super) struct ImportStore {
    /// A file written by `tessera export-store`
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    store: StoreArg,
}

pub(super) async fn export(command: ExportStore) -> Result<(), CliError> {
    let _log_guard = logging::init(LogFormat::Text, false);
    let store = open_store(&command.store.store).await?;
    let (json, counts) = backup::export(store.as_ref(), SystemClock.now()).await?;
    crate::private_files::write_new(&command.out, &json).map_err(CliError::Failed)?;
    println!("Exported {counts} to {}.", command.out.display());
    if counts.sealed_keys < counts.signing_keys {
        println!(
            "Signing keys in it are in the clear: whoever reads the file can mint tokens. Keep it as you keep the \
             store, or encrypt the keys first (serve --key-encryption-key-file)."
        );
    }
    Ok(())
}

pub(super) async fn import(command: ImportStore) -> Result<(), CliError> {
    let _log_guard = logging::init(LogFormat::Text, false);
    // Read and parsed whole before the store is opened: a bad file changes nothing.
    let what = "the store export";
    let bytes = crate::private_files::read_private(&command.file, what, "it holds the signing keys and secret hashes")
        .map_err(CliError::Failed)?;
    let file = backup::parse(&bytes).map_err(|e| CliError::Failed(format!("{}: {e}", command.file.display())))?;
    let store = open_store(&command.store.store).await?;
    let counts = backup::import(store.as_ref(), file).await?;
    println!(
        "Imported {counts} into {}.",
        crate::store::redacted(&command.store.store)
    );
    if counts.sealed_keys > 0 {
        println!("Its signing keys are encrypted: start servers on it with the same --key-encryption-key-file.");
    }
    Ok(())
}

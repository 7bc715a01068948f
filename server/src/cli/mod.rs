//! The `tessera` command line, one module per command: `serve`, `client …`,
//! `keys …`. Each returns `Result<(), CliError>`; [`main`] turns the error
//! into a message on stderr and an exit code (1 failure, 2 bad usage).

mod apply;
mod client;
mod keys;
mod serve;
mod store_file;
mod target;
mod trust;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::admin::AdminError;
use crate::config::{Settings, defaults};
use crate::store::{self, Store, StoreError};

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or settings are wrong: exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The command could not be carried out: exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl From<AdminError> for CliError {
    /// The change's own message, and how to put it right on the command
    /// line where a flag does it.
    fn from(error: AdminError) -> Self {
        let hint = match &error {
            AdminError::NoScope => ": add --scope SCOPE",
            AdminError::ZeroTokenLifetime => ": give --ttl in seconds, or leave it out for the server's default",
            AdminError::ClientExists(_) => " (tessera client delete ID)",
            AdminError::TooManySecrets { .. } => " (--keep-old-for 0)",
            AdminError::DuplicateKeyId { .. } => " with --kid",
            AdminError::UnknownSigningKey(_) => " (tessera keys list)",
            AdminError::UnknownIssuer(_) => ": trust it first with tessera trust add ISSUER_URL (tessera trust list)",
            AdminError::IssuerTrusted(_) => " (tessera trust remove ISSUER_URL)",
            AdminError::Store(StoreError::NotEmpty(_)) => ": name a new database or file with --store",
            _ => "",
        };
        let message = match &error {
            // The store's own words say it all; "the store failed" would not be true.
            AdminError::Store(not_empty @ StoreError::NotEmpty(_)) => not_empty.to_string(),
            _ => error.to_string(),
        };
        Self::Failed(format!("{message}{hint}"))
    }
}

impl CliError {
    /// A failure, from anything that says what went wrong.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Failed(_) => ExitCode::FAILURE,
        }
    }
}

/// Tessera: OAuth 2.0 client-credentials tokens for a fleet of services.
///
/// Services authenticate with a client id and secret, a key of their own
/// (private_key_jwt), or their platform's identity token (Kubernetes, SPIFFE:
/// tessera trust), and receive short-lived JWT access tokens (RFC 9068), over
/// gRPC (tessera.v1.TokenService) or the standard HTTP endpoints
/// (POST /oauth2/token). Start with:
///
///   tessera serve --demo
#[derive(Debug, Parser)]
#[command(name = "tessera", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the token service (gRPC and HTTP on one port).
    Serve(Box<Settings>),
    /// Register and manage clients: on the store (--store), or through a server's admin API (--server).
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Inspect and rotate signing keys; make and change the key encryption key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Trust platform issuers (Kubernetes, SPIFFE, OIDC) whose tokens authenticate clients: no secrets at all.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Make the clients what a YAML file says (clients as code): prints the plan, then applies it.
    Apply(apply::Apply),
    /// Print the clients in the YAML format `apply` reads (export, then apply, changes nothing).
    Export(apply::Export),
    /// Write the whole store to a file (mode 0600): a consistent backup, or the first half of a move to PostgreSQL.
    ExportStore(store_file::ExportStore),
    /// Load a file written by export-store into an empty store, all or nothing.
    ImportStore(store_file::ImportStore),
}

#[derive(Debug, Args)]
pub(crate) struct StoreArg {
    /// Where state lives: sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, env = "TESSERA_STORE", value_name = "URL", default_value = defaults::STORE)]
    pub(crate) store: String,
}

/// Runs the command line. Exit codes: 0 success, 1 failure, 2 bad usage or settings.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return report(&CliError::failed(format!("cannot start the async runtime: {e}"))),
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(settings) => serve::run(*settings).await,
            Command::Client(command) => client::run(command).await,
            Command::Keys(command) => keys::run(command).await,
            Command::Trust(command) => trust::run(command).await,
            Command::Apply(command) => apply::apply(command).await,
            Command::Export(command) => apply::export(command).await,
            Command::ExportStore(command) => store_file::export(command).await,
            Command::ImportStore(command) => store_file::import(command).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn report(error: &CliError) -> ExitCode {
    eprintln!("tessera: {error}");
    error.exit_code()
}

/// Opens the store a command names; a malformed URL is bad usage.
async fn open_store(url: &str) -> Result<Arc<dyn Store>, CliError> {
    store::StoreUrl::parse(url).map_err(|e| CliError::Usage(format!("invalid --store: {e}")))?;
    store::open(url).await.map_err(CliError::Failed)
}

/// An algorithm named by `--alg`, if any.
fn algorithm(alg: Option<&str>) -> Result<Option<crate::keys::KeyAlgorithm>, CliError> {
    alg.map(crate::keys::KeyAlgorithm::parse)
        .transpose()
        .map_err(|e| CliError::Usage(format!("invalid --alg: {e}")))
}

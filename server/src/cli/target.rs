//! Where an administrative command makes its change: on the store itself
//! (`--store`, for bootstrapping and break-glass), or through a running
//! server's admin API (`--server`, with an admin client's credentials).
//! Both go through the admin API's operations and messages, so a command
//! prints the same whichever it used.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use tessera_proto::admin::v1 as pb;
use tessera_sdk::{AdminClient, TokenClient};

use super::{CliError, open_store};
use crate::admin::api::AdminOps;
use crate::clock::SystemClock;
use crate::config::defaults;
use crate::keys::KeyCustody;

/// `--store URL` or `--server URL`, and how to authenticate to the server.
#[derive(Debug, Args, Clone)]
pub(crate) struct TargetArg {
    /// Where state lives: sqlite://PATH or postgres://USER@HOST/DB (changes the store directly; for bootstrapping and break-glass) [default: sqlite://tessera.db]
    #[arg(long, env = "TESSERA_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,
    /// A running Tessera to change through its admin API instead (http://HOST:PORT, https://…; its --admin-listen address if it has one)
    #[arg(long, env = "TESSERA_SERVER", value_name = "URL")]
    pub(crate) server: Option<String>,
    /// With --server: a JSON file {"client_id": …, "client_secret": …} of an admin client, readable by its owner only [default: TESSERA_ADMIN_CLIENT_ID and TESSERA_ADMIN_CLIENT_SECRET]
    #[arg(long, value_name = "FILE")]
    pub(crate) admin_credentials_file: Option<PathBuf>,
    /// With an https:// --server: PEM CA certificates to trust for it [default: the system's roots]
    #[arg(long, env = "TESSERA_SERVER_CA_FILE", value_name = "PEM")]
    pub(crate) server_ca_file: Option<PathBuf>,
}

/// An admin client's credentials, as `--admin-credentials-file` holds them.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminCredentials {
    client_id: String,
    client_secret: String,
}

/// What `--store` or `--server` named.
pub(crate) enum Admin {
    /// The store itself.
    Local(AdminOps),
    /// A server's admin API.
    Remote(AdminClient),
}

impl TargetArg {
    /// Whether the command goes to a server.
    pub(crate) fn is_remote(&self) -> Result<bool, CliError> {
        match (&self.store, &self.server) {
            (Some(_), Some(_)) => Err(CliError::Usage(
                "both --store (or TESSERA_STORE) and --server (or TESSERA_SERVER) are set: name one".into(),
            )),
            (_, Some(_)) => Ok(true),
            _ => Ok(false),
        }
    }

    /// The store URL, when the command works on the store.
    pub(crate) fn store_url(&self) -> &str {
        self.store.as_deref().unwrap_or(defaults::STORE)
    }

    /// Opens what the command names. `custody` is how signing keys are
    /// sealed on the store (a server uses its own).
    pub(crate) async fn open(&self, custody: Option<KeyCustody>) -> Result<Admin, CliError> {
        if !self.is_remote()? {
            let store = open_store(self.store_url()).await?;
            let custody = Arc::new(custody.unwrap_or_else(KeyCustody::clear));
            return Ok(Admin::Local(AdminOps::new(
                store,
                custody,
                Arc::new(SystemClock),
                // Known to `trust add` only when given (--issuer-of-this-server).
                None,
                defaults::KEY_PUBLISH_AHEAD_SECS,
            )));
        }
        if custody.is_some() {
            return Err(CliError::Usage(
                "--key-encryption-key-file goes with --store: with --server, the server seals keys under its own"
                    .into(),
            ));
        }
        let server = self.server.clone().unwrap_or_default();
        let (client_id, secret) = self.credentials()?;
        let mut builder = TokenClient::builder(server.clone()).client_secret(client_id, secret);
        if let Some(path) = &self.server_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::failed(format!("cannot read --server-ca-file {}: {e}", path.display())))?;
            builder = builder.tls_ca_pem(pem);
        }
        let tokens = builder
            .build()
            .map_err(|e| CliError::Usage(format!("invalid --server {server:?}: {e}")))?;
        // A token for the admin audience alone, read from the server's metadata.
        let admin = AdminClient::discover(&tokens)
            .await
            .map_err(|e| CliError::failed(format!("cannot reach the admin API at {server}: {e}")))?;
        Ok(Admin::Remote(admin))
    }

    /// The admin client a `--server` command authenticates as.
    pub(crate) fn acting_client_id(&self) -> Result<Option<String>, CliError> {
        if !self.is_remote()? {
            return Ok(None);
        }
        self.credentials().map(|(id, _)| Some(id))
    }

    fn credentials(&self) -> Result<(String, String), CliError> {
        if let Some(path) = &self.admin_credentials_file {
            return read_credentials(path);
        }
        match (
            std::env::var("TESSERA_ADMIN_CLIENT_ID"),
            std::env::var("TESSERA_ADMIN_CLIENT_SECRET"),
        ) {
            (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Ok((id, secret)),
            _ => Err(CliError::Usage(
                "--server needs an admin client's credentials: set TESSERA_ADMIN_CLIENT_ID and \
                 TESSERA_ADMIN_CLIENT_SECRET, or give --admin-credentials-file FILE (create the client with \
                 tessera client create ID --scope tessera:admin --audience ISSUER/admin --store URL)"
                    .into(),
            )),
        }
    }
}

fn read_credentials(path: &Path) -> Result<(String, String), CliError> {
    let bytes = crate::private_files::read_private(
        path,
        "the admin credentials file",
        "it holds a secret that administers every client",
    )
    .map_err(CliError::Failed)?;
    let credentials: AdminCredentials = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::Failed(format!(
            "{} is not {{\"client_id\": …, \"client_secret\": …}}: {e}",
            path.display()
        ))
    })?;
    Ok((credentials.client_id, credentials.client_secret))
}

/// What a refusal from the server says, as the command line says it.
fn remote_error(error: tessera_sdk::Error) -> CliError {
    match error {
        tessera_sdk::Error::Rejected {
            oauth_error,
            description,
            ..
        } => match oauth_error.as_str() {
            "invalid_token" | "invalid_client" => CliError::Failed(format!(
                "the server did not accept the admin credentials: {description}"
            )),
            "insufficient_scope" => CliError::Failed(format!(
                "the admin client may not do this: {description} (register it with --scope tessera:admin)"
            )),
            // Its token request named the admin audience, which it is not registered for.
            "invalid_target" | "invalid_scope" => CliError::Failed(format!(
                "this client is no admin of the server: {description} (an admin client is registered with \
                 --scope tessera:admin --audience ISSUER/admin)"
            )),
            _ => CliError::Failed(description),
        },
        other => CliError::Failed(other.to_string()),
    }
}

macro_rules! admin_calls {
    ($($name:ident($request:ident) -> $response:ident;)*) => {
        impl Admin {
            $(
                pub(crate) async fn $name(&self, request: pb::$request) -> Result<pb::$response, CliError> {
                    match self {
                        Self::Local(ops) => Ok(ops.$name(request).await?),
                        Self::Remote(client) => client.$name(request).await.map_err(remote_error),
                    }
                }
            )*
        }
    };
}

admin_calls! {
    create_client(CreateClientRequest) -> CreateClientResponse;
    get_client(GetClientRequest) -> Client;
    list_clients(ListClientsRequest) -> ListClientsResponse;
    update_client(UpdateClientRequest) -> Client;
    disable_client(ClientRequest) -> Client;
    enable_client(ClientRequest) -> Client;
    delete_client(ClientRequest) -> DeleteClientResponse;
    rotate_client_secret(RotateClientSecretRequest) -> RotateClientSecretResponse;
    add_client_key(AddClientKeyRequest) -> AddClientKeyResponse;
    remove_client_key(RemoveClientKeyRequest) -> Client;
    add_federated_identity(FederatedIdentityRequest) -> Client;
    remove_federated_identity(FederatedIdentityRequest) -> Client;
    add_client_certificate(ClientCertificateRequest) -> Client;
    remove_client_certificate(ClientCertificateRequest) -> Client;
    list_signing_keys(ListSigningKeysRequest) -> ListSigningKeysResponse;
    rotate_signing_key(RotateSigningKeyRequest) -> RotateSigningKeyResponse;
    revoke_signing_key(RevokeSigningKeyRequest) -> RevokeSigningKeyResponse;
    list_trusted_issuers(ListTrustedIssuersRequest) -> ListTrustedIssuersResponse;
    get_trusted_issuer(GetTrustedIssuerRequest) -> TrustedIssuer;
    add_trusted_issuer(AddTrustedIssuerRequest) -> TrustedIssuer;
    remove_trusted_issuer(RemoveTrustedIssuerRequest) -> RemoveTrustedIssuerResponse;
}

impl Admin {
    /// Every client, page by page.
    pub(crate) async fn all_clients(&self) -> Result<Vec<pb::Client>, CliError> {
        let mut clients = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .list_clients(pb::ListClientsRequest {
                    page_size: crate::admin::api::MAX_PAGE_SIZE as u32,
                    page_token,
                })
                .await?;
            clients.extend(page.clients);
            if page.next_page_token.is_empty() {
                return Ok(clients);
            }
            page_token = page.next_page_token;
        }
    }
}

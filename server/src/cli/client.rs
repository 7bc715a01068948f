//! `tessera client …`: register and manage clients, on the store directly
//! (`--store`) or through a server's admin API (`--server`).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use tessera_proto::admin::v1 as pb;

use super::target::{Admin, TargetArg};
use super::{CliError, algorithm};
use crate::admin;
use crate::config::LogFormat;
use crate::logging;

#[derive(Debug, Subcommand)]
pub(super) enum ClientCommand {
    /// Register a client and print its secret (shown once, never stored in the clear).
    Create {
        /// The client id: 1 to 128 of A-Z a-z 0-9 - . _ ~ : @ /
        id: String,
        /// A scope the client may hold; repeat for more. Requests naming no scope get all of them.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// An audience the client may ask for; repeat for more. None: tokens are for Tessera itself.
        #[arg(long = "audience", value_name = "AUDIENCE")]
        audiences: Vec<String>,
        /// Lifetime of this client's tokens in seconds (capped by the server's --max-token-ttl)
        #[arg(long, value_name = "SECS")]
        ttl: Option<u32>,
        /// Bind the client's tokens to the TLS client certificate of the connection they are asked for on (RFC 8705 section 3), however it authenticates; it must then connect with a certificate
        #[arg(long)]
        bind_to_certificate: bool,
        /// Create no secret: the client will authenticate only with a key (add-key), a platform identity (add-federated) or a certificate (add-certificate)
        #[arg(long)]
        no_secret: bool,
        /// Print JSON: {"client_id", "client_secret", …}
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Change a client's settings; what is not named stays as it is.
    Update {
        /// The client id.
        id: String,
        /// The scopes the client may hold, replacing the current ones; repeat for more
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// The audiences the client may ask for, replacing the current ones; repeat for more
        #[arg(long = "audience", value_name = "AUDIENCE", conflicts_with = "no_audiences")]
        audiences: Vec<String>,
        /// Remove every audience: tokens are for Tessera itself
        #[arg(long)]
        no_audiences: bool,
        /// Lifetime of this client's tokens in seconds
        #[arg(long, value_name = "SECS", conflicts_with = "default_ttl")]
        ttl: Option<u32>,
        /// Use the server's default token lifetime
        #[arg(long)]
        default_ttl: bool,
        /// Bind the client's tokens to its connection's TLS client certificate (RFC 8705 section 3)
        #[arg(long, conflicts_with = "no_bind_to_certificate")]
        bind_to_certificate: bool,
        /// Stop binding tokens of a client that authenticates otherwise than by certificate
        #[arg(long)]
        no_bind_to_certificate: bool,
        #[command(flatten)]
        target: TargetArg,
    },
    /// List clients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Show one client, with its secrets' ids and dates (never the secrets).
    Show {
        /// The client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Stop issuing tokens to a client (a running server follows within a second).
    Disable {
        /// The client id.
        id: String,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Issue tokens to a disabled client again.
    Enable {
        /// The client id.
        id: String,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Issue a new secret; the others stay valid for --keep-old-for, so deployments switch without downtime.
    RotateSecret {
        /// The client id.
        id: String,
        /// How long the current secrets stay valid: 0, 90s, 30m, 1h, 2d …
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        keep_old_for: String,
        /// Print JSON: {"client_id", "client_secret", …}
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Register a public key the client signs private_key_jwt assertions with.
    AddKey {
        /// The client id.
        id: String,
        /// A public JWK (JSON) file
        #[arg(long, value_name = "FILE", conflicts_with = "pem", required_unless_present = "pem")]
        jwk: Option<PathBuf>,
        /// A PEM public key file (P-256, Ed25519 or RSA ≥ 2048 bits)
        #[arg(long, value_name = "FILE")]
        pem: Option<PathBuf>,
        /// Key id assertions name in their header [default: the JWK's kid, else its RFC 7638 thumbprint]
        #[arg(long)]
        kid: Option<String>,
        /// ES256, EdDSA or RS256 [default: the JWK's alg, else what the key type implies]
        #[arg(long)]
        alg: Option<String>,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Remove a public key: assertions signed with it stop authenticating.
    RemoveKey {
        /// The client id.
        id: String,
        /// The key id (tessera client show ID)
        #[arg(long)]
        kid: String,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Let a platform identity authenticate as the client: a token of a trusted issuer whose sub is exactly SUBJECT.
    AddFederated(FederatedIdentity),
    /// Stop a platform identity from authenticating as the client.
    RemoveFederated(FederatedIdentity),
    /// Let a TLS client certificate authenticate as the client (RFC 8705): one from --tls-client-ca naming it, or one self-signed certificate.
    AddCertificate(ClientCertificate),
    /// Stop a certificate registration from authenticating as the client.
    RemoveCertificate(ClientCertificate),
    /// Delete a client and its secrets.
    Delete {
        /// The client id.
        id: String,
        #[command(flatten)]
        target: TargetArg,
    },
}

/// A client and one platform identity, as `add-federated` and `remove-federated` name them.
#[derive(Debug, clap::Args)]
pub(super) struct FederatedIdentity {
    /// The client id.
    id: String,
    /// A trusted issuer (tessera trust list)
    #[arg(long, value_name = "ISSUER_URL")]
    issuer: String,
    /// The token's sub, exactly: system:serviceaccount:NAMESPACE:NAME, spiffe://example.org/ns/NAMESPACE/sa/NAME …
    #[arg(long, value_name = "SUBJECT")]
    subject: String,
    #[command(flatten)]
    target: TargetArg,
}

/// A client and one certificate registration, as `add-certificate` and
/// `remove-certificate` name them: exactly one of the four.
#[derive(Debug, clap::Args)]
#[group(id = "certificate", required = true, multiple = false, args = ["san_uri", "san_dns", "subject_dn", "pem"])]
pub(super) struct ClientCertificate {
    /// The client id.
    id: String,
    /// A certificate chained to --tls-client-ca with this URI subject alternative name, exactly (a SPIFFE ID: spiffe://example.org/ns/payments/sa/billing)
    #[arg(long, value_name = "URI")]
    san_uri: Option<String>,
    /// A certificate chained to --tls-client-ca with this DNS subject alternative name (no wildcards)
    #[arg(long, value_name = "NAME")]
    san_dns: Option<String>,
    /// A certificate chained to --tls-client-ca with this subject, RFC 4514 (openssl x509 -noout -subject -nameopt RFC2253)
    #[arg(long, value_name = "DN")]
    subject_dn: Option<String>,
    /// This one certificate (PEM), by its SHA-256 thumbprint: self-signed or from any CA (RFC 8705 self_signed_tls_client_auth)
    #[arg(long, value_name = "CERT_FILE")]
    pem: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArg,
}

impl ClientCertificate {
    /// The registration as the admin API takes it.
    fn request(&self) -> Result<pb::ClientCertificateRequest, CliError> {
        let pem = match &self.pem {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))?,
            None => String::new(),
        };
        Ok(pb::ClientCertificateRequest {
            client_id: self.id.clone(),
            san_uri: self.san_uri.clone().unwrap_or_default(),
            san_dns: self.san_dns.clone().unwrap_or_default(),
            subject_dn: self.subject_dn.clone().unwrap_or_default(),
            pem,
            self_signed: String::new(),
        })
    }
}

/// The registration a request names, in the form it is stored and matched
/// in (a DNS name lower-cased, a DN canonical, a PEM as its thumbprint):
/// what the command says it added or removed.
fn registration(request: &pb::ClientCertificateRequest) -> Result<crate::store::CertificateMatch, CliError> {
    let (_, spec) = admin::api::certificate_spec(request.clone())?;
    Ok(spec.to_match()?)
}

/// Runs a `client` subcommand.
pub(super) async fn run(command: ClientCommand) -> Result<(), CliError> {
    // Administration leaves audit lines on stderr, like the server's.
    let _log_guard = logging::init(LogFormat::Text, false);
    match command {
        ClientCommand::Create {
            id,
            scopes,
            audiences,
            ttl,
            bind_to_certificate,
            no_secret,
            json,
            target,
        } => {
            let request = pb::CreateClientRequest {
                client_id: id,
                scopes,
                audiences,
                token_ttl: ttl,
                bind_to_certificate,
                no_secret,
            };
            let created = target.open(None).await?.create_client(request).await?;
            print_created(&created, json);
            Ok(())
        }
        ClientCommand::Update {
            id,
            scopes,
            audiences,
            no_audiences,
            ttl,
            default_ttl,
            bind_to_certificate,
            no_bind_to_certificate,
            target,
        } => {
            let request = pb::UpdateClientRequest {
                client_id: id.clone(),
                scopes: (!scopes.is_empty()).then_some(pb::StringList { values: scopes }),
                audiences: if no_audiences {
                    Some(pb::StringList::default())
                } else {
                    (!audiences.is_empty()).then_some(pb::StringList { values: audiences })
                },
                token_ttl: ttl,
                default_token_ttl: default_ttl,
                bind_to_certificate: match (bind_to_certificate, no_bind_to_certificate) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
            };
            target.open(None).await?.update_client(request).await?;
            println!("Updated client {id:?}.");
            Ok(())
        }
        ClientCommand::AddCertificate(certificate) => {
            let request = certificate.request()?;
            let matcher = registration(&request)?;
            certificate
                .target
                .open(None)
                .await?
                .add_client_certificate(request)
                .await?;
            println!("Client {:?} now authenticates with a {matcher}.", certificate.id);
            Ok(())
        }
        ClientCommand::RemoveCertificate(certificate) => {
            let request = certificate.request()?;
            let matcher = registration(&request)?;
            certificate
                .target
                .open(None)
                .await?
                .remove_client_certificate(request)
                .await?;
            println!("Client {:?} no longer authenticates with a {matcher}.", certificate.id);
            Ok(())
        }
        ClientCommand::List { json, target } => list(&target.open(None).await?, json).await,
        ClientCommand::Show { id, json, target } => {
            let client = target
                .open(None)
                .await?
                .get_client(pb::GetClientRequest { client_id: id })
                .await?;
            show(&client, json);
            Ok(())
        }
        ClientCommand::RotateSecret {
            id,
            keep_old_for,
            json,
            target,
        } => {
            let keep_old_for = admin::parse_duration(&keep_old_for)
                .map_err(|e| CliError::Usage(format!("invalid --keep-old-for: {e}")))?;
            let request = pb::RotateClientSecretRequest {
                client_id: id,
                keep_old_for_secs: Some(keep_old_for),
            };
            let rotated = target.open(None).await?.rotate_client_secret(request).await?;
            print_rotated(&rotated, keep_old_for, json);
            Ok(())
        }
        ClientCommand::AddKey {
            id,
            jwk,
            pem,
            kid,
            alg,
            target,
        } => add_key(&target, id, jwk, pem, kid, alg.as_deref()).await,
        ClientCommand::RemoveKey { id, kid, target } => {
            let request = pb::RemoveClientKeyRequest {
                client_id: id.clone(),
                kid: kid.clone(),
            };
            target.open(None).await?.remove_client_key(request).await?;
            println!("Removed key {kid:?} of client {id:?}.");
            Ok(())
        }
        ClientCommand::AddFederated(FederatedIdentity {
            id,
            issuer,
            subject,
            target,
        }) => {
            let request = pb::FederatedIdentityRequest {
                client_id: id.clone(),
                issuer: issuer.clone(),
                subject: subject.clone(),
            };
            target.open(None).await?.add_federated_identity(request).await?;
            println!("Client {id:?} now authenticates with tokens of {issuer} for subject {subject:?}.");
            Ok(())
        }
        ClientCommand::RemoveFederated(FederatedIdentity {
            id,
            issuer,
            subject,
            target,
        }) => {
            let request = pb::FederatedIdentityRequest {
                client_id: id.clone(),
                issuer: issuer.clone(),
                subject: subject.clone(),
            };
            target.open(None).await?.remove_federated_identity(request).await?;
            println!("Client {id:?} no longer authenticates with tokens of {issuer} for subject {subject:?}.");
            Ok(())
        }
        ClientCommand::Disable { id, target } => {
            target
                .open(None)
                .await?
                .disable_client(pb::ClientRequest { client_id: id.clone() })
                .await?;
            println!("Disabled client {id:?}.");
            Ok(())
        }
        ClientCommand::Enable { id, target } => {
            target
                .open(None)
                .await?
                .enable_client(pb::ClientRequest { client_id: id.clone() })
                .await?;
            println!("Enabled client {id:?}.");
            Ok(())
        }
        ClientCommand::Delete { id, target } => {
            target
                .open(None)
                .await?
                .delete_client(pb::ClientRequest { client_id: id.clone() })
                .await?;
            println!("Deleted client {id:?}.");
            Ok(())
        }
    }
}

fn print_created(created: &pb::CreateClientResponse, json: bool) {
    let client = created.client.clone().unwrap_or_default();
    let secret = (!created.client_secret.is_empty()).then_some(created.client_secret.as_str());
    if json {
        let out = json!({
            "client_id": client.client_id,
            "client_secret": secret,
            "scopes": client.scopes,
            "audiences": client.audiences,
            "token_ttl": client.token_ttl,
            "bind_to_certificate": client.bind_to_certificate,
        });
        println!("{out}");
        return;
    }
    println!("Created client {:?}.", client.client_id);
    match secret {
        Some(secret) => {
            println!("client_secret: {secret}");
            println!("Store the secret now: Tessera keeps only a hash and cannot show it again.");
        }
        None => {
            println!("It has no secret: give it a credential with client add-certificate, add-federated or add-key.")
        }
    }
}

fn print_rotated(rotated: &pb::RotateClientSecretResponse, keep_old_for: i64, json: bool) {
    if json {
        let out = json!({
            "client_id": rotated.client_id,
            "client_secret": rotated.client_secret,
            "others_expire_at": rotated.others_expire_at,
        });
        println!("{out}");
    } else {
        println!(
            "New secret for client {:?}; the previous ones stay valid for {keep_old_for} s.",
            rotated.client_id
        );
        println!("client_secret: {}", rotated.client_secret);
        println!("Store the secret now: Tessera keeps only a hash and cannot show it again.");
    }
}

async fn list(admin: &Admin, json: bool) -> Result<(), CliError> {
    let clients = admin.all_clients().await?;
    if json {
        println!(
            "{}",
            serde_json::Value::Array(clients.iter().map(client_json).collect())
        );
    } else if clients.is_empty() {
        println!("No clients. Register one with: tessera client create ID --scope SCOPE");
    } else {
        println!(
            "{:<32} {:<9} {:<7} {:<30} AUDIENCES",
            "CLIENT_ID", "STATUS", "SECRETS", "SCOPES"
        );
        for c in &clients {
            let status = if c.disabled { "disabled" } else { "enabled" };
            let live = c.secrets.iter().filter(|s| s.live).count();
            println!(
                "{:<32} {:<9} {:<7} {:<30} {}",
                c.client_id,
                status,
                live,
                c.scopes.join(" "),
                c.audiences.join(" ")
            );
        }
    }
    Ok(())
}

fn show(c: &pb::Client, json: bool) {
    if json {
        println!("{}", client_json(c));
        return;
    }
    println!("client_id:  {}", c.client_id);
    println!("status:     {}", if c.disabled { "disabled" } else { "enabled" });
    println!("scopes:     {}", c.scopes.join(" "));
    println!(
        "audiences:  {}",
        if c.audiences.is_empty() {
            "(the issuer)".to_owned()
        } else {
            c.audiences.join(" ")
        }
    );
    println!(
        "token_ttl:  {}",
        c.token_ttl.map_or("server default".to_owned(), |t| format!("{t} s"))
    );
    println!("created_at: {}", c.created_at);
    for s in &c.secrets {
        let expiry = s.expires_at.map_or("never".to_owned(), |e| e.to_string());
        let state = if s.live { "live" } else { "expired" };
        println!(
            "secret:     {} created {} expires {expiry} ({state})",
            s.secret_id, s.created_at
        );
    }
    for k in &c.keys {
        println!("key:        {} {} added {}", k.kid, k.alg, k.created_at);
    }
    for f in &c.federated_identities {
        println!("federated:  {} subject {} added {}", f.issuer, f.subject, f.created_at);
    }
    for cert in &c.certificates {
        let described = crate::store::CertificateMatch::from_stored(&cert.kind, cert.value.clone())
            .map_or_else(|_| format!("{} {}", cert.kind, cert.value), |m| m.to_string());
        println!("cert:       {described} added {}", cert.created_at);
    }
    if c.bind_to_certificate {
        println!("tokens:     bound to the connection's client certificate (RFC 8705)");
    }
}

async fn add_key(
    target: &TargetArg,
    id: String,
    jwk: Option<PathBuf>,
    pem: Option<PathBuf>,
    kid: Option<String>,
    alg: Option<&str>,
) -> Result<(), CliError> {
    let alg = algorithm(alg)?;
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))
    };
    let (jwk, pem) = match (jwk, pem) {
        (Some(path), None) => (read(&path)?, String::new()),
        (None, Some(path)) => (String::new(), read(&path)?),
        _ => return Err(CliError::Usage("give exactly one of --jwk FILE or --pem FILE".into())),
    };
    let request = pb::AddClientKeyRequest {
        client_id: id.clone(),
        jwk,
        pem,
        kid: kid.clone().unwrap_or_default(),
        alg: alg.map(|a| a.jws_name().to_owned()).unwrap_or_default(),
    };
    let key = target
        .open(None)
        .await?
        .add_client_key(request)
        .await?
        .key
        .unwrap_or_default();
    println!("Registered key {:?} ({}) for client {id:?}.", key.kid, key.alg);
    Ok(())
}

/// A client as `--json` prints it (the same with --store and --server).
pub(super) fn client_json(client: &pb::Client) -> serde_json::Value {
    json!({
        "client_id": client.client_id,
        "scopes": client.scopes,
        "audiences": client.audiences,
        "token_ttl": client.token_ttl,
        "disabled": client.disabled,
        "created_at": client.created_at,
        "keys": client.keys.iter().map(|k| json!({
            "kid": k.kid,
            "alg": k.alg,
            "created_at": k.created_at,
        })).collect::<Vec<_>>(),
        "federated": client.federated_identities.iter().map(|f| json!({
            "issuer": f.issuer,
            "subject": f.subject,
            "created_at": f.created_at,
        })).collect::<Vec<_>>(),
        "certificates": client.certificates.iter().map(|c| json!({
            "kind": c.kind,
            "value": c.value,
            "created_at": c.created_at,
        })).collect::<Vec<_>>(),
        "bind_to_certificate": client.bind_to_certificate,
        "secrets": client.secrets.iter().map(|s| json!({
            "secret_id": s.secret_id,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
        })).collect::<Vec<_>>(),
    })
}

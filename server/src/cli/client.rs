//! `tessera client …`: register and manage clients, on the store directly.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{CliError, StoreArg, algorithm, open_store};
use crate::admin::{self, CertificateSpec, NewClient};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::LogFormat;
use crate::logging;
use crate::store::{ClientRecord, ClientUpdate};

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
        store: StoreArg,
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
        store: StoreArg,
    },
    /// List clients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Show one client, with its secrets' ids and dates (never the secrets).
    Show {
        /// The client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Stop issuing tokens to a client (a running server follows within a second).
    Disable {
        /// The client id.
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Issue tokens to a disabled client again.
    Enable {
        /// The client id.
        id: String,
        #[command(flatten)]
        store: StoreArg,
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
        store: StoreArg,
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
        store: StoreArg,
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
        store: StoreArg,
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
    store: StoreArg,
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
    store: StoreArg,
}

impl ClientCertificate {
    fn spec(&self) -> Result<CertificateSpec, CliError> {
        Ok(match (&self.san_uri, &self.san_dns, &self.subject_dn, &self.pem) {
            (Some(uri), ..) => CertificateSpec::SanUri(uri.clone()),
            (_, Some(dns), ..) => CertificateSpec::SanDns(dns.clone()),
            (_, _, Some(dn), _) => CertificateSpec::SubjectDn(dn.clone()),
            (_, _, _, Some(path)) => CertificateSpec::Pem(
                std::fs::read_to_string(path)
                    .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))?,
            ),
            _ => {
                return Err(CliError::Usage(
                    "name the certificate with one of --san-uri, --san-dns, --subject-dn or --pem".into(),
                ));
            }
        })
    }
}

/// Runs a `client` subcommand.
pub(super) async fn run(command: ClientCommand) -> Result<(), CliError> {
    // Administration leaves audit lines on stderr, like the server's.
    let _log_guard = logging::init(LogFormat::Text, false);
    let now = SystemClock.now();
    match command {
        ClientCommand::Create {
            id,
            scopes,
            audiences,
            ttl,
            bind_to_certificate,
            no_secret,
            json,
            store,
        } => {
            let new = NewClient {
                client_id: id,
                scopes,
                audiences,
                token_ttl: ttl,
                bind_to_certificate,
            };
            create(&store, new, !no_secret, json, now).await
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
            store,
        } => {
            let update = ClientUpdate {
                scopes: (!scopes.is_empty()).then_some(scopes),
                audiences: if no_audiences {
                    Some(vec![])
                } else {
                    (!audiences.is_empty()).then_some(audiences)
                },
                token_ttl: if default_ttl { Some(None) } else { ttl.map(Some) },
                bind_to_certificate: match (bind_to_certificate, no_bind_to_certificate) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
            };
            let store = open_store(&store.store).await?;
            admin::update_client(store.as_ref(), &id, update).await?;
            println!("Updated client {id:?}.");
            Ok(())
        }
        ClientCommand::AddCertificate(certificate) => {
            let spec = certificate.spec()?;
            let store = open_store(&certificate.store.store).await?;
            let matcher = admin::add_client_certificate(store.as_ref(), &certificate.id, &spec, now).await?;
            println!("Client {:?} now authenticates with a {matcher}.", certificate.id);
            Ok(())
        }
        ClientCommand::RemoveCertificate(certificate) => {
            let spec = certificate.spec()?;
            let store = open_store(&certificate.store.store).await?;
            let matcher = admin::remove_client_certificate(store.as_ref(), &certificate.id, &spec).await?;
            println!("Client {:?} no longer authenticates with a {matcher}.", certificate.id);
            Ok(())
        }
        ClientCommand::List { json, store } => list(&store, json, now).await,
        ClientCommand::Show { id, json, store } => show(&store, &id, json, now).await,
        ClientCommand::RotateSecret {
            id,
            keep_old_for,
            json,
            store,
        } => rotate_secret(&store, &id, &keep_old_for, json, now).await,
        ClientCommand::AddKey {
            id,
            jwk,
            pem,
            kid,
            alg,
            store,
        } => add_key(&store, &id, jwk, pem, kid, alg.as_deref(), now).await,
        ClientCommand::AddFederated(FederatedIdentity {
            id,
            issuer,
            subject,
            store,
        }) => {
            let store = open_store(&store.store).await?;
            admin::add_federated_identity(store.as_ref(), &id, &issuer, &subject, now).await?;
            println!("Client {id:?} now authenticates with tokens of {issuer} for subject {subject:?}.");
            Ok(())
        }
        ClientCommand::RemoveFederated(FederatedIdentity {
            id,
            issuer,
            subject,
            store,
        }) => {
            let store = open_store(&store.store).await?;
            admin::remove_federated_identity(store.as_ref(), &id, &issuer, &subject).await?;
            println!("Client {id:?} no longer authenticates with tokens of {issuer} for subject {subject:?}.");
            Ok(())
        }
        ClientCommand::Disable { id, store } => set_disabled(&store, &id, true).await,
        ClientCommand::Enable { id, store } => set_disabled(&store, &id, false).await,
        ClientCommand::Delete { id, store } => delete(&store, &id).await,
    }
}

async fn create(
    store: &StoreArg,
    new: NewClient,
    with_secret: bool,
    json: bool,
    now: UnixTime,
) -> Result<(), CliError> {
    let store = open_store(&store.store).await?;
    let secret = admin::create_client_with(store.as_ref(), new.clone(), with_secret, now).await?;
    if json {
        let out = json!({
            "client_id": new.client_id,
            "client_secret": secret.as_ref().map(|s| s.expose()),
            "scopes": new.scopes,
            "audiences": new.audiences,
            "token_ttl": new.token_ttl,
            "bind_to_certificate": new.bind_to_certificate,
        });
        println!("{out}");
    } else {
        println!("Created client {:?}.", new.client_id);
        match secret {
            Some(secret) => {
                println!("client_secret: {}", secret.expose());
                println!("Store the secret now: Tessera keeps only a hash and cannot show it again.");
            }
            None => println!(
                "It has no secret: give it a credential with client add-certificate, add-federated or add-key."
            ),
        }
    }
    Ok(())
}

async fn list(store: &StoreArg, json: bool, now: UnixTime) -> Result<(), CliError> {
    let store = open_store(&store.store).await?;
    let clients = store.list_clients().await.map_err(CliError::failed)?;
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
            let live = c.secrets.iter().filter(|s| s.is_live(now)).count();
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

async fn show(store: &StoreArg, id: &str, json: bool, now: UnixTime) -> Result<(), CliError> {
    let store = open_store(&store.store).await?;
    let Some(c) = store.client(id).await.map_err(CliError::failed)? else {
        return Err(CliError::failed(format!("no client {id:?} in the store")));
    };
    if json {
        println!("{}", client_json(&c));
        return Ok(());
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
        let state = if s.is_live(now) { "live" } else { "expired" };
        println!(
            "secret:     {} created {} expires {expiry} ({state})",
            s.secret_id, s.created_at
        );
    }
    for k in &c.keys {
        println!("key:        {} {} added {}", k.kid, k.alg, k.created_at);
    }
    for f in &c.federated {
        println!("federated:  {} subject {} added {}", f.issuer, f.subject, f.created_at);
    }
    for cert in &c.certificates {
        println!("cert:       {} added {}", cert.matcher, cert.created_at);
    }
    if c.bind_to_certificate {
        println!("tokens:     bound to the connection's client certificate (RFC 8705)");
    }
    Ok(())
}

async fn rotate_secret(
    store: &StoreArg,
    id: &str,
    keep_old_for: &str,
    json: bool,
    now: UnixTime,
) -> Result<(), CliError> {
    let keep_old_for =
        admin::parse_duration(keep_old_for).map_err(|e| CliError::Usage(format!("invalid --keep-old-for: {e}")))?;
    let store = open_store(&store.store).await?;
    let secret = admin::rotate_secret(store.as_ref(), id, keep_old_for, now).await?;
    if json {
        let out = json!({
            "client_id": id,
            "client_secret": secret.expose(),
            "others_expire_at": now + keep_old_for,
        });
        println!("{out}");
    } else {
        println!("New secret for client {id:?}; the previous ones stay valid for {keep_old_for} s.");
        println!("client_secret: {}", secret.expose());
        println!("Store the secret now: Tessera keeps only a hash and cannot show it again.");
    }
    Ok(())
}

async fn add_key(
    store: &StoreArg,
    id: &str,
    jwk: Option<PathBuf>,
    pem: Option<PathBuf>,
    kid: Option<String>,
    alg: Option<&str>,
    now: UnixTime,
) -> Result<(), CliError> {
    let alg = algorithm(alg)?;
    let (path, wrap): (PathBuf, fn(String) -> admin::KeyMaterial) = match (jwk, pem) {
        (Some(path), None) => (path, admin::KeyMaterial::Jwk),
        (None, Some(path)) => (path, admin::KeyMaterial::Pem),
        _ => return Err(CliError::Usage("give exactly one of --jwk FILE or --pem FILE".into())),
    };
    let material = std::fs::read_to_string(&path)
        .map(wrap)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))?;
    let store = open_store(&store.store).await?;
    let record = admin::add_client_key(store.as_ref(), id, material, kid, alg, now).await?;
    println!("Registered key {:?} ({}) for client {id:?}.", record.kid, record.alg);
    Ok(())
}

async fn set_disabled(store: &StoreArg, id: &str, disabled: bool) -> Result<(), CliError> {
    let store = open_store(&store.store).await?;
    if !store
        .set_client_disabled(id, disabled)
        .await
        .map_err(CliError::failed)?
    {
        return Err(CliError::failed(format!("no client {id:?} in the store")));
    }
    let event = if disabled {
        crate::audit::CLIENT_DISABLED
    } else {
        crate::audit::CLIENT_ENABLED
    };
    tracing::info!(target: "tessera::audit", event, client_id = %id);
    let verb = if disabled { "Disabled" } else { "Enabled" };
    println!("{verb} client {id:?}.");
    Ok(())
}

async fn delete(store: &StoreArg, id: &str) -> Result<(), CliError> {
    let store = open_store(&store.store).await?;
    if !store.delete_client(id).await.map_err(CliError::failed)? {
        return Err(CliError::failed(format!("no client {id:?} in the store")));
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_DELETED, client_id = %id);
    println!("Deleted client {id:?}.");
    Ok(())
}

fn client_json(client: &ClientRecord) -> serde_json::Value {
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
        "federated": client.federated.iter().map(|f| json!({
            "issuer": f.issuer,
            "subject": f.subject,
            "created_at": f.created_at,
        })).collect::<Vec<_>>(),
        "certificates": client.certificates.iter().map(|c| json!({
            "kind": c.matcher.kind(),
            "value": c.matcher.value(),
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

//! The `tessera` command line: `serve`, `client …`, `keys …`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::admin::{self, NewClient};
use crate::authority::{Authority, AuthorityConfig, ThrottleConfig};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, LogFormat, ServeConfig, ServeOverrides, defaults};
use crate::logging;
use crate::store::{self, ClientRecord, Store};
use crate::tls::TlsReloader;

/// Tessera: OAuth 2.0 client-credentials tokens for a fleet of services.
///
/// Services authenticate with a client id and secret and receive short-lived
/// JWT access tokens (RFC 9068), over gRPC (tessera.v1.TokenService) or the
/// standard HTTP endpoints (POST /oauth2/token). Start with:
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
    Serve(Box<ServeArgs>),
    /// Register and manage clients (works beside a running server).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Inspect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on for gRPC and HTTP [default: 127.0.0.1:8080]
    #[arg(long, env = "TESSERA_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Where state lives: sqlite://PATH, or postgres://USER@HOST/DB shared by replicas [default: sqlite://tessera.db]
    #[arg(long, env = "TESSERA_STORE", value_name = "URL")]
    store: Option<String>,
    /// Issuer URL, the `iss` of every token [default: http://ADDR of --listen]
    #[arg(long, env = "TESSERA_ISSUER", value_name = "URL")]
    issuer: Option<String>,
    /// TOML file with the same settings (names with `_`); flags and environment win
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Token lifetime in seconds when the client sets none [default: 3600]
    #[arg(long, env = "TESSERA_TOKEN_TTL", value_name = "SECS")]
    token_ttl: Option<u32>,
    /// Upper bound on any token lifetime, in seconds [default: 86400]
    #[arg(long, env = "TESSERA_MAX_TOKEN_TTL", value_name = "SECS")]
    max_token_ttl: Option<u32>,
    /// Algorithm of the signing key created on first start: ES256, EdDSA or RS256 [default: ES256]
    #[arg(long, env = "TESSERA_SIGNING_ALG", value_name = "ALG")]
    signing_alg: Option<String>,
    /// How often to look for changes made by other processes, in ms [default: 500]
    #[arg(long, env = "TESSERA_STORE_POLL_MS", value_name = "MS")]
    store_poll_ms: Option<u64>,
    /// With the store out of reach, serve from memory this many seconds, then answer 503 [default: 60]
    #[arg(long, env = "TESSERA_STORE_STALENESS", value_name = "SECS")]
    store_staleness: Option<u32>,
    /// Serve TLS with this certificate chain (PEM, leaf first); reloaded when it changes or on SIGHUP
    #[arg(long, env = "TESSERA_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, env = "TESSERA_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: require client certificates issued by this CA (PEM)
    #[arg(long, env = "TESSERA_TLS_CLIENT_CA", value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// Open connections at most; more wait to be accepted [default: 10000]
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Requests in flight per HTTP/2 connection; more are refused at once [default: 256]
    #[arg(long, env = "TESSERA_MAX_CONNECTION_STREAMS", value_name = "N")]
    max_connection_streams: Option<u32>,
    /// Open connections one peer address may hold; 0 for no bound (behind a
    /// proxy that pools connections from few addresses) [default: 1000]
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    max_connections_per_address: Option<usize>,
    /// On SIGTERM or Ctrl-C, seconds to let requests in flight finish [default: 30]
    #[arg(long, env = "TESSERA_DRAIN_TIMEOUT", value_name = "SECS")]
    drain_timeout: Option<u32>,
    /// On SIGTERM, seconds to keep accepting and answering while readiness
    /// reports draining, asking every client to reconnect (Connection: close,
    /// HTTP/2 GOAWAY), before the listener closes; set it to the time your
    /// load balancer takes to drop a not-ready replica [default: 0]
    #[arg(long, env = "TESSERA_DRAIN_DELAY", value_name = "SECS")]
    drain_delay: Option<u32>,
    /// Longest lifetime (exp - now) a private_key_jwt assertion may have;
    /// each assertion id is remembered that long to refuse replays [default: 3600]
    #[arg(long, env = "TESSERA_MAX_ASSERTION_LIFETIME", value_name = "SECS")]
    max_assertion_lifetime: Option<u32>,
    /// Log format: text or json [default: text]; the level comes from RUST_LOG (default info)
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Write each log and audit line before answering, instead of from a background thread
    #[arg(long, env = "TESSERA_LOG_BLOCKING")]
    log_blocking: bool,
    /// Rotate the signing key when the newest is this many days old; 0 never [default: 30]
    #[arg(long, env = "TESSERA_KEY_ROTATION_DAYS", value_name = "DAYS")]
    key_rotation_days: Option<u32>,
    /// Seconds a scheduled new key is published before it signs [default: 600]
    #[arg(long, env = "TESSERA_KEY_PUBLISH_AHEAD", value_name = "SECS")]
    key_publish_ahead: Option<u32>,
    /// Failed authentications per client id per minute before it gets 429; 0 off [default: 10]
    #[arg(long, env = "TESSERA_FAILURE_LIMIT", value_name = "N")]
    failure_limit: Option<u32>,
    /// Failed authentications per source address per minute before it gets 429; 0 off [default: 100]
    #[arg(long, env = "TESSERA_SOURCE_FAILURE_LIMIT", value_name = "N")]
    source_failure_limit: Option<u32>,
    /// Refuse token requests that name no audience, instead of granting the client's registered ones
    #[arg(long, env = "TESSERA_REQUIRE_AUDIENCE")]
    require_audience: bool,
    /// Register (or refresh) a client `demo` and print a curl line that gets a token. For trying Tessera out.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Args)]
struct StoreArg {
    /// Where state lives: sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, env = "TESSERA_STORE", value_name = "URL", default_value = defaults::STORE)]
    store: String,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
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
        /// Print JSON: {"client_id", "client_secret", …}
        #[arg(long)]
        json: bool,
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
    /// Delete a client and its secrets.
    Delete {
        /// The client id.
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
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

/// Runs the command line. Exit codes: 0 success, 1 failure, 2 bad usage or settings.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Client(command) => client(command).await,
            Command::Keys(command) => keys(command).await,
        }
    })
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tessera: {message}");
    ExitCode::FAILURE
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tessera: {message}");
    ExitCode::from(2)
}

async fn serve(args: ServeArgs) -> ExitCode {
    let config = match ServeConfig::resolve(ServeOverrides {
        config: args.config,
        listen: args.listen,
        store: args.store,
        issuer: args.issuer,
        token_ttl: args.token_ttl,
        max_token_ttl: args.max_token_ttl,
        signing_alg: args.signing_alg,
        store_poll_ms: args.store_poll_ms,
        store_staleness: args.store_staleness,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_client_ca: args.tls_client_ca,
        max_connections: args.max_connections,
        max_connection_streams: args.max_connection_streams,
        max_connections_per_address: args.max_connections_per_address,
        drain_timeout: args.drain_timeout,
        drain_delay: args.drain_delay,
        max_assertion_lifetime: args.max_assertion_lifetime,
        log_format: args.log_format,
        key_rotation_days: args.key_rotation_days,
        key_publish_ahead: args.key_publish_ahead,
        failure_limit: args.failure_limit,
        source_failure_limit: args.source_failure_limit,
        require_audience: args.require_audience.then_some(true),
    }) {
        Ok(config) => config,
        Err(e) => return usage(e),
    };
    // Held until serve returns: dropping it flushes the log queue.
    let _log_guard = logging::init(config.log_format, !args.log_blocking);
    let tls = match config.tls.clone().map(TlsReloader::new).transpose() {
        Ok(tls) => tls.map(Arc::new),
        Err(e) => return fail(e),
    };
    let store = match store::open(&config.store).await {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            return fail(format!(
                "cannot listen on {}: {e} (is another server running there? choose another with --listen)",
                config.listen
            ));
        }
    };
    let bound = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => return fail(format!("cannot read the bound address: {e}")),
    };
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| config::default_issuer(bound, tls.is_some()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let authority_config = AuthorityConfig {
        issuer: issuer.clone(),
        default_token_ttl: config.token_ttl,
        max_token_ttl: config.max_token_ttl,
        signing_alg: config.signing_alg,
        hashing_permits: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        hashing_wait: Duration::from_millis(500),
        key_rotation: config.key_rotation,
        key_publish_ahead: Duration::from_secs(u64::from(config.key_publish_ahead)),
        throttle: ThrottleConfig {
            client_failures: config.failure_limit,
            source_failures: config.source_failure_limit,
            window_secs: 60,
        },
        require_audience: config.require_audience,
        max_assertion_lifetime_secs: i64::from(config.max_assertion_lifetime),
    };
    let authority = match Authority::new(authority_config, store.clone(), clock.clone()).await {
        Ok(authority) => Arc::new(authority),
        Err(e) => return fail(format!("cannot start the authority: {e}")),
    };
    let base = issuer.trim_end_matches('/');
    if args.demo {
        match admin::ensure_demo_client(store.as_ref(), clock.now()).await {
            Ok((id, secret)) => {
                // Shown on the terminal once, like `client create` does; never logged.
                println!(
                    "\nDemo client {id:?} is ready (scopes demo:read demo:write). Get a token with:\n\n  \
                     curl -s -X POST {scheme}://{bound}/oauth2/token -H \"Content-Type: application/x-www-form-urlencoded\" \
                     -d \"grant_type=client_credentials&client_id={id}&client_secret={}\"\n\n\
                     Metadata: {base}/.well-known/oauth-authorization-server\n",
                    secret.expose()
                );
            }
            Err(e) => return fail(format!("cannot prepare the demo client: {e}")),
        }
    }
    // Printed last: tests and scripts take this line to mean "ready".
    let mutual = if config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()) {
        ", client certificates required"
    } else {
        ""
    };
    println!("tessera listening on {scheme}://{bound} (gRPC and HTTP{mutual}); issuer {issuer}");
    let _ = std::io::stdout().flush();
    let _watch = authority.spawn_store_watch(config.store_poll, config.store_staleness);
    let _tls_watch = tls.as_ref().map(|tls| tls.spawn_watch(Duration::from_secs(2)));
    let options = crate::server::ServeOptions {
        tls,
        max_connections: config.max_connections,
        max_connection_streams: config.max_connection_streams,
        max_connections_per_address: config.max_connections_per_address,
        drain_timeout: config.drain_timeout,
        drain_delay: config.drain_delay,
        ..crate::server::ServeOptions::default()
    };
    match crate::server::run(authority, listener, options, crate::server::shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("shut down");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server failed: {e}")),
    }
}

async fn open_store(url: &str) -> Result<Arc<dyn Store>, ExitCode> {
    if let Err(e) = store::StoreUrl::parse(url) {
        return Err(usage(format!("invalid --store: {e}")));
    }
    store::open(url).await.map_err(fail)
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
        "secrets": client.secrets.iter().map(|s| json!({
            "secret_id": s.secret_id,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
        })).collect::<Vec<_>>(),
    })
}

async fn client(command: ClientCommand) -> ExitCode {
    client_command(command).await.unwrap_or_else(|code| code)
}

async fn client_command(command: ClientCommand) -> Result<ExitCode, ExitCode> {
    // Administration leaves audit lines on stderr, like the server's.
    let _log_guard = logging::init(LogFormat::Text, false);
    let now = SystemClock.now();
    Ok(match command {
        ClientCommand::Create {
            id,
            scopes,
            audiences,
            ttl,
            json,
            store,
        } => {
            let store = open_store(&store.store).await?;
            let new = NewClient {
                client_id: id.clone(),
                scopes: scopes.clone(),
                audiences: audiences.clone(),
                token_ttl: ttl,
            };
            match admin::create_client(store.as_ref(), new, now).await {
                Ok(secret) if json => {
                    let out = json!({
                        "client_id": id,
                        "client_secret": secret.expose(),
                        "scopes": scopes,
                        "audiences": audiences,
                        "token_ttl": ttl,
                    });
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Ok(secret) => {
                    println!("Created client {id:?}.");
                    println!("client_secret: {}", secret.expose());
                    println!("Store the secret now: Tessera keeps only a hash and cannot show it again.");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        ClientCommand::List { json, store } => {
            let store = open_store(&store.store).await?;
            let clients = match store.list_clients().await {
                Ok(clients) => clients,
                Err(e) => return Err(fail(e)),
            };
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
            ExitCode::SUCCESS
        }
        ClientCommand::Show { id, json, store } => {
            let store = open_store(&store.store).await?;
            match store.client(&id).await {
                Ok(Some(c)) if json => {
                    println!("{}", client_json(&c));
                    ExitCode::SUCCESS
                }
                Ok(Some(c)) => {
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
                    ExitCode::SUCCESS
                }
                Ok(None) => fail(format!("no client {id:?} in the store")),
                Err(e) => fail(e),
            }
        }
        ClientCommand::RotateSecret {
            id,
            keep_old_for,
            json,
            store,
        } => {
            let keep_old_for = match admin::parse_duration(&keep_old_for) {
                Ok(secs) => secs,
                Err(e) => return Err(usage(format!("invalid --keep-old-for: {e}"))),
            };
            let store = open_store(&store.store).await?;
            match admin::rotate_secret(store.as_ref(), &id, keep_old_for, now).await {
                Ok(secret) if json => {
                    let out = json!({
                        "client_id": id,
                        "client_secret": secret.expose(),
                        "others_expire_at": now + keep_old_for,
                    });
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Ok(secret) => {
                    println!("New secret for client {id:?}; the previous ones stay valid for {keep_old_for} s.");
                    println!("client_secret: {}", secret.expose());
                    println!("Store the secret now: Tessera keeps only a hash and cannot show it again.");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        ClientCommand::AddKey {
            id,
            jwk,
            pem,
            kid,
            alg,
            store,
        } => {
            let alg = match alg.as_deref().map(crate::keys::KeyAlgorithm::parse).transpose() {
                Ok(alg) => alg,
                Err(e) => return Err(usage(format!("invalid --alg: {e}"))),
            };
            let (path, wrap): (PathBuf, fn(String) -> admin::KeyMaterial) = match (jwk, pem) {
                (Some(path), None) => (path, admin::KeyMaterial::Jwk),
                (None, Some(path)) => (path, admin::KeyMaterial::Pem),
                _ => return Err(usage("give exactly one of --jwk FILE or --pem FILE")),
            };
            let material = match std::fs::read_to_string(&path) {
                Ok(text) => wrap(text),
                Err(e) => return Err(fail(format!("cannot read {}: {e}", path.display()))),
            };
            let store = open_store(&store.store).await?;
            match admin::add_client_key(store.as_ref(), &id, material, kid, alg, now).await {
                Ok(record) => {
                    println!("Registered key {:?} ({}) for client {id:?}.", record.kid, record.alg);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        ClientCommand::Disable { id, store } => set_disabled(&store.store, &id, true).await?,
        ClientCommand::Enable { id, store } => set_disabled(&store.store, &id, false).await?,
        ClientCommand::Delete { id, store } => {
            let store = open_store(&store.store).await?;
            match store.delete_client(&id).await {
                Ok(true) => {
                    tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_DELETED, client_id = %id);
                    println!("Deleted client {id:?}.");
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("no client {id:?} in the store")),
                Err(e) => fail(e),
            }
        }
    })
}

async fn set_disabled(url: &str, id: &str, disabled: bool) -> Result<ExitCode, ExitCode> {
    let store = open_store(url).await?;
    let verb = if disabled { "Disabled" } else { "Enabled" };
    Ok(match store.set_client_disabled(id, disabled).await {
        Ok(true) => {
            let event = if disabled {
                crate::audit::CLIENT_DISABLED
            } else {
                crate::audit::CLIENT_ENABLED
            };
            tracing::info!(target: "tessera::audit", event, client_id = %id);
            println!("{verb} client {id:?}.");
            ExitCode::SUCCESS
        }
        Ok(false) => fail(format!("no client {id:?} in the store")),
        Err(e) => fail(e),
    })
}

async fn keys(command: KeysCommand) -> ExitCode {
    keys_command(command).await.unwrap_or_else(|code| code)
}

async fn keys_command(command: KeysCommand) -> Result<ExitCode, ExitCode> {
    let _log_guard = logging::init(LogFormat::Text, false);
    let now = SystemClock.now();
    Ok(match command {
        KeysCommand::List { json, store } => {
            let store = open_store(&store.store).await?;
            let records = match store.signing_keys().await {
                Ok(records) => records,
                Err(e) => return Err(fail(e)),
            };
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
            ExitCode::SUCCESS
        }
        KeysCommand::Rotate {
            publish_ahead,
            alg,
            store,
        } => {
            let alg = match alg.as_deref().map(crate::keys::KeyAlgorithm::parse).transpose() {
                Ok(alg) => alg,
                Err(e) => return Err(usage(format!("invalid --alg: {e}"))),
            };
            let store = open_store(&store.store).await?;
            match admin::rotate_key(store.as_ref(), alg, now, publish_ahead).await {
                Ok(record) => {
                    println!(
                        "Added signing key {} ({}): published now, signing from {} ({publish_ahead} s from now).",
                        record.kid, record.alg, record.activates_at
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeysCommand::Revoke { kid, store } => {
            let store = open_store(&store.store).await?;
            match admin::revoke_key(store.as_ref(), &kid, now).await {
                Ok(replacement) => {
                    println!("Revoked signing key {kid}: it is out of the JWKS and its tokens are inactive.");
                    if let Some(new) = replacement {
                        println!("Signing key {} ({}) signs from now on.", new.kid, new.alg);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    })
}

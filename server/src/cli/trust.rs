//! `tessera trust …`: the issuers whose identity tokens (Kubernetes
//! service-account tokens, SPIFFE JWT-SVIDs, any OIDC issuer's tokens)
//! clients may authenticate with.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Subcommand};
use serde_json::json;

use super::{CliError, StoreArg, open_store};
use crate::admin::{self, NewTrust};
use crate::clock::{Clock, SystemClock};
use crate::config::LogFormat;
use crate::logging;
use crate::store::{JwksSource, TrustedIssuerRecord};

/// A day: how long a platform token may live unless the trust says otherwise.
const DEFAULT_MAX_LIFETIME_SECS: u32 = 86_400;

#[derive(Debug, Subcommand)]
pub(super) enum TrustCommand {
    /// Trust an issuer's tokens as client credentials (bind subjects with `tessera client add-federated`).
    #[command(group(ArgGroup::new("keys").required(true).args(["jwks_file", "jwks_url", "discovery"])))]
    Add {
        /// The issuer as its tokens' iss claim names it (https://…), or a SPIFFE trust domain (spiffe://example.org)
        issuer: String,
        /// Its public keys: a JWKS file, or a SPIFFE bundle (stored; the server fetches nothing)
        #[arg(long, value_name = "FILE")]
        jwks_file: Option<PathBuf>,
        /// Its public keys: an https:// JWKS URL the server fetches and refreshes (Kubernetes: https://kubernetes.default.svc/openid/v1/jwks)
        #[arg(long, value_name = "URL")]
        jwks_url: Option<String>,
        /// Its public keys: the jwks_uri of ISSUER/.well-known/openid-configuration, which the server reads and refreshes
        #[arg(long)]
        discovery: bool,
        /// An audience its tokens may carry besides this server's issuer and token endpoint URL; repeat for more
        #[arg(long = "audience", value_name = "AUD")]
        audiences: Vec<String>,
        /// Longest lifetime (exp - iat) of a token accepted, in seconds
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MAX_LIFETIME_SECS)]
        max_lifetime: u32,
        /// PEM CA certificates that alone are trusted for the key URL's TLS (in a pod: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt) [default: the system's roots]
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
        /// A file the server reads a bearer token from before each fetch, for a key URL that wants one (in a pod: /var/run/secrets/kubernetes.io/serviceaccount/token); the path is stored, never the token
        #[arg(long, value_name = "FILE")]
        bearer_token_file: Option<PathBuf>,
        /// This server's issuer, which can never be trusted (checked when given)
        #[arg(long, env = "TESSERA_ISSUER", value_name = "URL")]
        issuer_of_this_server: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List trusted issuers.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Show one trusted issuer.
    Show {
        /// The issuer.
        issuer: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Stop trusting an issuer (its subjects stay bound to their clients, inert, until it is trusted again).
    Remove {
        /// The issuer.
        issuer: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Runs a `trust` subcommand.
pub(super) async fn run(command: TrustCommand) -> Result<(), CliError> {
    let _log_guard = logging::init(LogFormat::Text, false);
    match command {
        TrustCommand::Add {
            issuer,
            jwks_file,
            jwks_url,
            discovery,
            audiences,
            max_lifetime,
            ca_file,
            bearer_token_file,
            issuer_of_this_server,
            json,
            store,
        } => {
            let jwks = match (jwks_file, jwks_url, discovery) {
                (Some(path), None, false) => JwksSource::Inline(read(&path)?),
                (None, Some(url), false) => JwksSource::Url(url),
                (None, None, true) => JwksSource::Discovery,
                _ => {
                    return Err(CliError::Usage(
                        "give exactly one of --jwks-file FILE, --jwks-url URL or --discovery".into(),
                    ));
                }
            };
            let trust = NewTrust {
                issuer,
                jwks,
                audiences,
                max_lifetime_secs: max_lifetime,
                ca_pem: ca_file.as_deref().map(read).transpose()?,
                bearer_token_file: bearer_token_file.map(|p| p.to_string_lossy().into_owned()),
            };
            let store = open_store(&store.store).await?;
            let record = admin::add_trusted_issuer(
                store.as_ref(),
                trust,
                issuer_of_this_server.as_deref(),
                SystemClock.now(),
            )
            .await?;
            if json {
                println!("{}", trust_json(&record));
            } else {
                println!("Trusting issuer {:?} ({}).", record.issuer, source(&record.jwks));
                println!(
                    "Bind a subject to a client with: tessera client add-federated CLIENT_ID --issuer {} --subject SUBJECT",
                    record.issuer
                );
            }
            Ok(())
        }
        TrustCommand::List { json, store } => {
            let store = open_store(&store.store).await?;
            let trusted = store.trusted_issuers().await.map_err(CliError::failed)?;
            if json {
                println!("{}", serde_json::Value::Array(trusted.iter().map(trust_json).collect()));
            } else if trusted.is_empty() {
                println!("No trusted issuers. Add one with: tessera trust add ISSUER_URL --discovery");
            } else {
                println!("{:<48} {:<28} {:<12} AUDIENCES", "ISSUER", "KEYS", "MAX_LIFETIME");
                for t in &trusted {
                    println!(
                        "{:<48} {:<28} {:<12} {}",
                        t.issuer,
                        source(&t.jwks),
                        format!("{} s", t.max_lifetime_secs),
                        t.audiences.join(" ")
                    );
                }
            }
            Ok(())
        }
        TrustCommand::Show { issuer, json, store } => {
            let store = open_store(&store.store).await?;
            let trusted = store.trusted_issuers().await.map_err(CliError::failed)?;
            let Some(t) = trusted.iter().find(|t| t.issuer == issuer) else {
                return Err(CliError::failed(format!(
                    "issuer {issuer:?} is not trusted (tessera trust list)"
                )));
            };
            if json {
                println!("{}", trust_json(t));
                return Ok(());
            }
            println!("issuer:            {}", t.issuer);
            println!("keys:              {}", source(&t.jwks));
            println!(
                "audiences:         this server's issuer and token endpoint{}",
                extra(&t.audiences)
            );
            println!("max_lifetime:      {} s", t.max_lifetime_secs);
            println!(
                "ca:                {}",
                if t.ca_pem.is_some() {
                    "the CA file given"
                } else {
                    "the system's roots"
                }
            );
            println!(
                "bearer_token_file: {}",
                t.bearer_token_file.as_deref().unwrap_or("(none)")
            );
            println!("created_at:        {}", t.created_at);
            Ok(())
        }
        TrustCommand::Remove { issuer, store } => {
            let store = open_store(&store.store).await?;
            admin::remove_trusted_issuer(store.as_ref(), &issuer).await?;
            println!("No longer trusting issuer {issuer:?}.");
            Ok(())
        }
    }
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))
}

fn extra(audiences: &[String]) -> String {
    if audiences.is_empty() {
        String::new()
    } else {
        format!(", {}", audiences.join(" "))
    }
}

/// Where the keys come from, in a few words.
fn source(jwks: &JwksSource) -> String {
    match jwks {
        JwksSource::Inline(text) => match crate::federation::parse_jwks(text) {
            Ok(keys) => format!("{} stored key(s)", keys.len()),
            Err(_) => "stored, unusable".into(),
        },
        JwksSource::Url(url) => url.clone(),
        JwksSource::Discovery => "OpenID discovery".into(),
    }
}

fn trust_json(t: &TrustedIssuerRecord) -> serde_json::Value {
    json!({
        "issuer": t.issuer,
        "jwks_source": t.jwks.kind(),
        "jwks_url": match &t.jwks { JwksSource::Url(url) => Some(url), _ => None },
        "audiences": t.audiences,
        "max_lifetime": t.max_lifetime_secs,
        "ca": t.ca_pem.is_some(),
        "bearer_token_file": t.bearer_token_file,
        "created_at": t.created_at,
    })
}

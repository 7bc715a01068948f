//! `tessera trust …`: the issuers whose identity tokens (Kubernetes
//! service-account tokens, SPIFFE JWT-SVIDs, any OIDC issuer's tokens)
//! clients may authenticate with.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Subcommand};
use serde_json::json;

use tessera_proto::admin::v1 as pb;

use super::target::{Admin, TargetArg};
use super::{CliError, open_store};
use crate::admin::{self, NewTrust};
use crate::clock::{Clock, SystemClock};
use crate::config::LogFormat;
use crate::logging;
use crate::store::JwksSource;

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
        target: TargetArg,
    },
    /// List trusted issuers.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Show one trusted issuer.
    Show {
        /// The issuer.
        issuer: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Stop trusting an issuer (its subjects stay bound to their clients, inert, until it is trusted again).
    Remove {
        /// The issuer.
        issuer: String,
        #[command(flatten)]
        target: TargetArg,
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
            target,
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
            let added = if target.is_remote()? {
                add_remote(&target.open(None).await?, trust).await?
            } else {
                // On the store: a bearer token file may be named (a path on
                // the server's host, which whoever runs this there chooses).
                let store = open_store(target.store_url()).await?;
                let record = admin::add_trusted_issuer(
                    store.as_ref(),
                    trust,
                    issuer_of_this_server.as_deref(),
                    SystemClock.now(),
                )
                .await?;
                admin::api::trusted_issuer_view(&record)
            };
            if json {
                println!("{}", trust_json(&added));
            } else {
                println!("Trusting issuer {:?} ({}).", added.issuer, source(&added));
                println!(
                    "Bind a subject to a client with: tessera client add-federated CLIENT_ID --issuer {} --subject SUBJECT",
                    added.issuer
                );
            }
            Ok(())
        }
        TrustCommand::List { json, target } => {
            let trusted = target
                .open(None)
                .await?
                .list_trusted_issuers(pb::ListTrustedIssuersRequest {})
                .await?
                .issuers;
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
                        source(t),
                        format!("{} s", t.max_lifetime_secs),
                        t.audiences.join(" ")
                    );
                }
            }
            Ok(())
        }
        TrustCommand::Show { issuer, json, target } => {
            let request = pb::GetTrustedIssuerRequest { issuer: issuer.clone() };
            let t = target
                .open(None)
                .await?
                .get_trusted_issuer(request)
                .await
                .map_err(|e| CliError::failed(format!("{e} (tessera trust list)")))?;
            if json {
                println!("{}", trust_json(&t));
                return Ok(());
            }
            println!("issuer:            {}", t.issuer);
            println!("keys:              {}", source(&t));
            println!(
                "audiences:         this server's issuer and token endpoint{}",
                extra(&t.audiences)
            );
            println!("max_lifetime:      {} s", t.max_lifetime_secs);
            println!(
                "ca:                {}",
                if t.ca {
                    "the CA file given"
                } else {
                    "the system's roots"
                }
            );
            println!(
                "bearer_token_file: {}",
                if t.bearer_token_file.is_empty() {
                    "(none)"
                } else {
                    t.bearer_token_file.as_str()
                }
            );
            println!("created_at:        {}", t.created_at);
            Ok(())
        }
        TrustCommand::Remove { issuer, target } => {
            let request = pb::RemoveTrustedIssuerRequest { issuer: issuer.clone() };
            target.open(None).await?.remove_trusted_issuer(request).await?;
            println!("No longer trusting issuer {issuer:?}.");
            Ok(())
        }
    }
}

/// `trust add` through the admin API, which takes everything but a bearer
/// token file.
async fn add_remote(admin: &Admin, trust: NewTrust) -> Result<pb::TrustedIssuer, CliError> {
    if trust.bearer_token_file.is_some() {
        return Err(CliError::Usage(
            "--bearer-token-file names a file on the server's host: add this trust with --store there".into(),
        ));
    }
    let (jwks, jwks_url, discovery) = match trust.jwks {
        JwksSource::Inline(jwks) => (jwks, String::new(), false),
        JwksSource::Url(url) => (String::new(), url, false),
        JwksSource::Discovery => (String::new(), String::new(), true),
    };
    let request = pb::AddTrustedIssuerRequest {
        issuer: trust.issuer,
        jwks,
        jwks_url,
        discovery,
        audiences: trust.audiences,
        max_lifetime_secs: Some(trust.max_lifetime_secs),
        ca_pem: trust.ca_pem.unwrap_or_default(),
    };
    admin.add_trusted_issuer(request).await
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
fn source(trust: &pb::TrustedIssuer) -> String {
    match trust.jwks_source.as_str() {
        "url" => trust.jwks_url.clone(),
        "discovery" => "OpenID discovery".into(),
        _ if trust.stored_keys == 0 => "stored, unusable".into(),
        _ => format!("{} stored key(s)", trust.stored_keys),
    }
}

fn trust_json(t: &pb::TrustedIssuer) -> serde_json::Value {
    json!({
        "issuer": t.issuer,
        "jwks_source": t.jwks_source,
        "jwks_url": (!t.jwks_url.is_empty()).then_some(&t.jwks_url),
        "audiences": t.audiences,
        "max_lifetime": t.max_lifetime_secs,
        "ca": t.ca,
        "bearer_token_file": (!t.bearer_token_file.is_empty()).then_some(&t.bearer_token_file),
        "created_at": t.created_at,
    })
}

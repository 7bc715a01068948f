//! `tessera serve` settings: flags, `TESSERA_*` environment variables, and an
//! optional TOML file, in that order of precedence, validated as a whole
//! before any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::keys::KeyAlgorithm;
use crate::store::StoreUrl;
use crate::tls::TlsFiles;

/// Defaults, in one place so `--help` and the README can quote them.
pub mod defaults {
    /// Loopback only: exposing a token service is a decision, not an accident.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// A SQLite file in the working directory.
    pub const STORE: &str = "sqlite://tessera.db";
    /// One hour (RFC 9068 recommends short-lived tokens).
    pub const TOKEN_TTL: u32 = 3600;
    /// No client's override may exceed a day.
    pub const MAX_TOKEN_TTL: u32 = 86_400;
    /// ES256.
    pub const SIGNING_ALG: &str = "ES256";
    /// Human-readable lines.
    pub const LOG_FORMAT: &str = "text";
    /// How often the server polls the store for changes by other processes.
    pub const STORE_POLL_MS: u64 = 500;
    /// How long a replica serves from memory while its store is out of reach.
    pub const STORE_STALENESS_SECS: u32 = 60;
    /// Open connections at most.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// Requests in flight per HTTP/2 connection.
    pub const MAX_CONNECTION_STREAMS: u32 = 256;
    /// Connections one address may hold: a tenth of the slots.
    pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 1_000;
    /// How long shutdown waits for requests in flight.
    pub const DRAIN_TIMEOUT_SECS: u32 = 30;
    /// After SIGTERM, how long the server keeps accepting (and telling
    /// clients to reconnect elsewhere) before it stops: none unless asked.
    pub const DRAIN_DELAY_SECS: u32 = 0;
    /// Longest `private_key_jwt` assertion lifetime accepted: an hour, as
    /// Okta and Google accept and authlib signs by default.
    pub const MAX_ASSERTION_LIFETIME_SECS: u32 = 3600;
    /// Fetch trusted issuers' keys every five minutes.
    pub const TRUSTED_JWKS_REFRESH_SECS: u32 = 300;
    /// Fetch one trusted issuer's keys at most every 10 seconds for tokens
    /// naming a key not seen yet (Keycloak's default for the same knob).
    pub const TRUSTED_JWKS_MIN_INTERVAL_SECS: u32 = 10;
    /// Rotate the signing key monthly.
    pub const KEY_ROTATION_DAYS: u32 = 30;
    /// A rotated key is published 10 minutes before it signs: twice the JWKS
    /// `Cache-Control: max-age`, so every verifier's cache has it in time.
    pub const KEY_PUBLISH_AHEAD_SECS: u32 = 600;
    /// Failed authentications per client id per minute before it is throttled.
    pub const FAILURE_LIMIT: u32 = 10;
    /// Failed authentications per source address per minute before it is throttled.
    pub const SOURCE_FAILURE_LIMIT: u32 = 100;
}

/// `text` followed by the default, as `--help` shows it: the default comes
/// from [`defaults`], the one place it is defined, so the two cannot drift.
fn with_default(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

/// Every setting of `tessera serve`, declared once: its flag and
/// environment variable (clap) and its key in the TOML file (serde, the
/// flag's name with `_` for `-`). `None` (or `false`) means "not given here";
/// [`ServeConfig::resolve`] merges flags and environment over the file and
/// fills what is left from [`defaults`].
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `--listen`.
    #[arg(long, env = "TESSERA_LISTEN", value_name = "ADDR",
          help = with_default("Address to listen on for gRPC and HTTP", defaults::LISTEN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `--admin-listen`.
    #[arg(
        long,
        env = "TESSERA_ADMIN_LISTEN",
        value_name = "ADDR",
        help = "Serve the admin API (/admin/v1/, tessera.admin.v1.AdminService) on this address only, with the token endpoints beside it; --listen then answers 404 for admin paths [default: the admin API is on --listen]"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    /// `--store`.
    #[arg(long, env = "TESSERA_STORE", value_name = "URL",
          help = with_default("Where state lives: sqlite://PATH, or postgres://USER@HOST/DB shared by replicas", defaults::STORE))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// `--issuer`.
    #[arg(long, env = "TESSERA_ISSUER", value_name = "URL",
          help = with_default("Issuer URL, the `iss` of every token", "http://ADDR of --listen"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `--config`: the TOML file itself (a flag or variable only).
    #[arg(
        long,
        env = "TESSERA_CONFIG",
        value_name = "FILE",
        help = "TOML file with the same settings (names with `_`); flags and environment win"
    )]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// `--token-ttl`.
    #[arg(long, env = "TESSERA_TOKEN_TTL", value_name = "SECS",
          help = with_default("Token lifetime in seconds when the client sets none", defaults::TOKEN_TTL))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<u32>,
    /// `--max-token-ttl`.
    #[arg(long, env = "TESSERA_MAX_TOKEN_TTL", value_name = "SECS",
          help = with_default("Upper bound on any token lifetime, in seconds", defaults::MAX_TOKEN_TTL))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_token_ttl: Option<u32>,
    /// `--signing-alg`.
    #[arg(long, env = "TESSERA_SIGNING_ALG", value_name = "ALG",
          help = with_default("Algorithm of the signing key created on first start: ES256, EdDSA or RS256", defaults::SIGNING_ALG))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    /// `--key-encryption-key-file`.
    #[arg(
        long,
        env = "TESSERA_KEY_ENCRYPTION_KEY_FILE",
        value_name = "FILE",
        help = "Store private signing keys only encrypted (AES-256-GCM) under the 32-byte key in this file (mode 0600; `tessera keys generate-kek` makes one); keys stored in the clear are encrypted at start. Without it keys are stored in the clear"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_encryption_key_file: Option<PathBuf>,
    /// `--signing-key`.
    #[arg(
        long,
        env = "TESSERA_SIGNING_KEY",
        value_name = "URI",
        requires_all = ["pkcs11_module", "pkcs11_pin_file"],
        help = "Sign with an ES256 key that never leaves an HSM, named by a PKCS#11 URI (RFC 7512), e.g. pkcs11:token=tessera;object=signing-key. Not rotated by Tessera; stored keys then only verify the tokens they signed"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// `--pkcs11-module`.
    #[arg(
        long,
        env = "TESSERA_PKCS11_MODULE",
        value_name = "PATH",
        requires = "signing_key",
        help = "The HSM's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_module: Option<PathBuf>,
    /// `--pkcs11-pin-file`.
    #[arg(
        long,
        env = "TESSERA_PKCS11_PIN_FILE",
        value_name = "FILE",
        requires = "signing_key",
        help = "A file (mode 0600) holding the token's user PIN"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// `--store-poll-ms`.
    #[arg(long, env = "TESSERA_STORE_POLL_MS", value_name = "MS",
          help = with_default("How often to look for changes made by other processes, in ms", defaults::STORE_POLL_MS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_poll_ms: Option<u64>,
    /// `--store-staleness`.
    #[arg(long, env = "TESSERA_STORE_STALENESS", value_name = "SECS",
          help = with_default("With the store out of reach, serve from memory this many seconds, then answer 503", defaults::STORE_STALENESS_SECS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_staleness: Option<u32>,
    /// `--tls-cert`.
    #[arg(
        long,
        env = "TESSERA_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key",
        help = "Serve TLS with this certificate chain (PEM, leaf first); reloaded when it changes or on SIGHUP"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    #[arg(
        long,
        env = "TESSERA_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert",
        help = "The private key of --tls-cert (PEM)"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-ca`.
    #[arg(
        long,
        env = "TESSERA_TLS_CLIENT_CA",
        value_name = "FILE",
        help = "Client certificates issued by this CA (PEM) may authenticate clients (RFC 8705 tls_client_auth); required on every connection unless --tls-client-auth optional"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,
    /// `--tls-client-auth`.
    #[arg(
        long,
        env = "TESSERA_TLS_CLIENT_AUTH",
        value_name = "MODE",
        requires = "tls_cert",
        help = "Ask clients for certificates: optional (certificate and secret clients side by side; needed for self-signed certificates when --tls-client-ca is given) or required. Default: required with --tls-client-ca, not asked without it"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth: Option<crate::tls::ClientAuth>,
    /// `--max-connections`.
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", value_name = "N",
          help = with_default("Open connections at most; more wait to be accepted", defaults::MAX_CONNECTIONS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// `--max-connection-streams`.
    #[arg(long, env = "TESSERA_MAX_CONNECTION_STREAMS", value_name = "N",
          help = with_default("Requests in flight per HTTP/2 connection; more are refused at once", defaults::MAX_CONNECTION_STREAMS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_streams: Option<u32>,
    /// `--max-connections-per-address`.
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N",
          help = with_default("Open connections one peer address may hold; 0 for no bound (behind a proxy that pools connections from few addresses)", defaults::MAX_CONNECTIONS_PER_ADDRESS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_address: Option<usize>,
    /// `--drain-timeout`.
    #[arg(long, env = "TESSERA_DRAIN_TIMEOUT", value_name = "SECS",
          help = with_default("On SIGTERM or Ctrl-C, seconds to let requests in flight finish", defaults::DRAIN_TIMEOUT_SECS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<u32>,
    /// `--drain-delay`.
    #[arg(long, env = "TESSERA_DRAIN_DELAY", value_name = "SECS",
          help = with_default("On SIGTERM, seconds to keep accepting and answering while readiness reports draining, asking every client to reconnect (Connection: close, HTTP/2 GOAWAY), before the listener closes; set it to the time your load balancer takes to drop a not-ready replica", defaults::DRAIN_DELAY_SECS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_delay: Option<u32>,
    /// `--max-assertion-lifetime`.
    #[arg(long, env = "TESSERA_MAX_ASSERTION_LIFETIME", value_name = "SECS",
          help = with_default("Longest lifetime (exp - now) a private_key_jwt assertion may have; each assertion id is remembered that long to refuse replays", defaults::MAX_ASSERTION_LIFETIME_SECS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_assertion_lifetime: Option<u32>,
    /// `--trusted-jwks-refresh`.
    #[arg(long, env = "TESSERA_TRUSTED_JWKS_REFRESH", value_name = "SECS",
          help = with_default("Seconds between fetches of each trusted issuer's keys from its JWKS URL (tessera trust add --jwks-url or --discovery); a failed fetch keeps the keys known", defaults::TRUSTED_JWKS_REFRESH_SECS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_jwks_refresh: Option<u32>,
    /// `--trusted-jwks-min-interval`.
    #[arg(long, env = "TESSERA_TRUSTED_JWKS_MIN_INTERVAL", value_name = "SECS",
          help = with_default("Least seconds between two fetches of one trusted issuer's keys when a token names a key not seen yet (an issuer's key rotation), so made-up key ids cost one fetch per interval", defaults::TRUSTED_JWKS_MIN_INTERVAL_SECS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_jwks_min_interval: Option<u32>,
    /// `--log-format`.
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_name = "FORMAT",
          help = with_default("Log format: text or json; the level comes from RUST_LOG (default info)", defaults::LOG_FORMAT))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// `--log-blocking` (a flag or variable only).
    #[arg(
        long,
        env = "TESSERA_LOG_BLOCKING",
        help = "Write each log and audit line before answering, instead of from a background thread"
    )]
    #[serde(skip)]
    pub log_blocking: bool,
    /// `--key-rotation-days`.
    #[arg(long, env = "TESSERA_KEY_ROTATION_DAYS", value_name = "DAYS",
          help = with_default("Rotate the signing key when the newest is this many days old; 0 never", defaults::KEY_ROTATION_DAYS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_rotation_days: Option<u32>,
    /// `--key-publish-ahead`.
    #[arg(long, env = "TESSERA_KEY_PUBLISH_AHEAD", value_name = "SECS",
          help = with_default("Seconds a scheduled new key is published before it signs", defaults::KEY_PUBLISH_AHEAD_SECS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_publish_ahead: Option<u32>,
    /// `--failure-limit`.
    #[arg(long, env = "TESSERA_FAILURE_LIMIT", value_name = "N",
          help = with_default("Failed authentications per client id per minute before it gets 429 (secrets stored before check values only); 0 off", defaults::FAILURE_LIMIT))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
    /// `--source-failure-limit`.
    #[arg(long, env = "TESSERA_SOURCE_FAILURE_LIMIT", value_name = "N",
          help = with_default("Failed authentications per source address per minute before it gets 429 (secrets stored before check values only); 0 off", defaults::SOURCE_FAILURE_LIMIT))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_failure_limit: Option<u32>,
    /// `--require-audience`.
    #[arg(
        long,
        env = "TESSERA_REQUIRE_AUDIENCE",
        help = "Refuse token requests that name no audience, instead of granting the client's registered ones"
    )]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_audience: bool,
    /// `--demo` (a flag only).
    #[arg(
        long,
        help = "Register (or refresh) a client `demo` and print a curl line that gets a token. For trying Tessera out."
    )]
    #[serde(skip)]
    pub demo: bool,
}

impl Settings {
    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// A message naming the file and what is wrong in it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {path:?}: {e}"))?;
        toml::from_str(&text).map_err(|e| format!("config file {path:?}: {e}"))
    }

    /// The one precedence rule: each setting given in `self` wins over
    /// `lower`'s. Settings that exist only as flags are taken from `self`.
    ///
    /// # Errors
    /// Never for settings built by clap or serde; the `Result` is serde's.
    pub fn over(self, lower: Settings) -> Result<Settings, String> {
        let merge_error = |e: serde_json::Error| format!("merging settings: {e}");
        let mut merged = serde_json::to_value(lower).map_err(merge_error)?;
        if let (serde_json::Value::Object(merged), serde_json::Value::Object(given)) =
            (&mut merged, serde_json::to_value(&self).map_err(merge_error)?)
        {
            merged.extend(given);
        }
        let merged: Settings = serde_json::from_value(merged).map_err(merge_error)?;
        Ok(Settings {
            config: self.config,
            log_blocking: self.log_blocking,
            demo: self.demo,
            ..merged
        })
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated settings of `tessera serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// A separate address for the admin API, which `listen` then does not serve.
    pub admin_listen: Option<SocketAddr>,
    /// The store.
    pub store: String,
    /// The issuer; `None` derives `http://HOST:PORT` from the bound address.
    pub issuer: Option<String>,
    /// Default token lifetime, seconds.
    pub token_ttl: u32,
    /// Cap on any token lifetime, seconds.
    pub max_token_ttl: u32,
    /// Algorithm of the first signing key.
    pub signing_alg: KeyAlgorithm,
    /// The KEK file signing keys are encrypted under, if any.
    pub key_encryption_key_file: Option<PathBuf>,
    /// An HSM key that signs instead of the stored ones.
    pub hsm: Option<HsmSettings>,
    /// Store polling interval.
    pub store_poll: Duration,
    /// How long hot copies keep serving while the store is out of reach.
    pub store_staleness: Duration,
    /// TLS on the listener.
    pub tls: Option<TlsFiles>,
    /// Open connections at most.
    pub max_connections: usize,
    /// Requests in flight per HTTP/2 connection.
    pub max_connection_streams: u32,
    /// Connections one peer address may hold; 0 for no bound.
    pub max_connections_per_address: usize,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    /// How long the server keeps accepting after SIGTERM, draining.
    pub drain_delay: Duration,
    /// Longest lifetime a client assertion may claim.
    pub max_assertion_lifetime: u32,
    /// How trusted issuers' keys are kept current.
    pub federation: crate::federation::FederationConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Automatic rotation period; `None` when disabled (0 days).
    pub key_rotation: Option<Duration>,
    /// Seconds a rotated key is published before it signs.
    pub key_publish_ahead: u32,
    /// Failed authentications per client id per minute before throttling; 0 off.
    pub failure_limit: u32,
    /// Failed authentications per source address per minute; 0 off.
    pub source_failure_limit: u32,
    /// Refuse token requests that name no audience.
    pub require_audience: bool,
    /// Write log lines before answering instead of from a background thread.
    pub log_blocking: bool,
    /// Register the demo client and print how to use it.
    pub demo: bool,
}

impl ServeConfig {
    /// Merges flags and environment over the file over the defaults, and
    /// validates the result.
    ///
    /// # Errors
    /// One line naming the bad setting and what would be accepted.
    pub fn resolve(given: Settings) -> Result<Self, String> {
        let file = match &given.config {
            Some(path) => Settings::load(path)?,
            None => Settings::default(),
        };
        let s = given.over(file)?;
        let (listen, store, issuer) = where_to_serve(&s)?;
        let admin_listen = s
            .admin_listen
            .as_deref()
            .map(|text| {
                text.parse::<SocketAddr>()
                    .map_err(|_| format!("invalid --admin-listen {text:?}: expected IP:PORT, e.g. 127.0.0.1:8081"))
            })
            .transpose()?;
        if admin_listen.is_some_and(|admin| admin == listen && admin.port() != 0) {
            return Err(
                "--admin-listen must differ from --listen: leave it out to serve the admin API on --listen".into(),
            );
        }
        let (token_ttl, max_token_ttl) = token_lifetimes(&s)?;
        let alg_text = s.signing_alg.as_deref().unwrap_or(defaults::SIGNING_ALG);
        let signing_alg = KeyAlgorithm::parse(alg_text).map_err(|e| format!("invalid --signing-alg: {e}"))?;
        let poll_ms = s.store_poll_ms.unwrap_or(defaults::STORE_POLL_MS);
        let staleness = s.store_staleness.unwrap_or(defaults::STORE_STALENESS_SECS);
        let drain_timeout = s.drain_timeout.unwrap_or(defaults::DRAIN_TIMEOUT_SECS);
        let drain_delay = s.drain_delay.unwrap_or(defaults::DRAIN_DELAY_SECS);
        let max_assertion_lifetime = s
            .max_assertion_lifetime
            .unwrap_or(defaults::MAX_ASSERTION_LIFETIME_SECS);
        let rotation_days = s.key_rotation_days.unwrap_or(defaults::KEY_ROTATION_DAYS);
        let key_publish_ahead = s.key_publish_ahead.unwrap_or(defaults::KEY_PUBLISH_AHEAD_SECS);
        within("--store-poll-ms", poll_ms, 10, 60_000)?;
        within("--store-staleness", u64::from(staleness), 1, 86_400)?;
        within("--drain-timeout", u64::from(drain_timeout), 0, 3600)?;
        within("--drain-delay", u64::from(drain_delay), 0, 600)?;
        within("--max-assertion-lifetime", u64::from(max_assertion_lifetime), 1, 86_400)?;
        within("--key-rotation-days", u64::from(rotation_days), 0, 3650)?;
        let federation = federation(&s)?;
        within("--key-publish-ahead", u64::from(key_publish_ahead), 0, 7 * 86_400)?;
        let log_format = match s.log_format.as_deref().unwrap_or(defaults::LOG_FORMAT) {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(format!("invalid --log-format {other:?}: use text or json")),
        };
        let (max_connections, max_connection_streams, max_connections_per_address) = connection_limits(&s)?;
        Ok(Self {
            listen,
            admin_listen,
            store,
            issuer,
            token_ttl,
            max_token_ttl,
            signing_alg,
            key_encryption_key_file: s.key_encryption_key_file.clone(),
            hsm: hsm_settings(&s)?,
            store_poll: Duration::from_millis(poll_ms),
            store_staleness: Duration::from_secs(u64::from(staleness)),
            tls: tls_files(&s)?,
            max_connections,
            max_connection_streams,
            max_connections_per_address,
            drain_timeout: Duration::from_secs(u64::from(drain_timeout)),
            drain_delay: Duration::from_secs(u64::from(drain_delay)),
            max_assertion_lifetime,
            federation,
            log_format,
            log_blocking: s.log_blocking,
            key_rotation: (rotation_days > 0).then(|| Duration::from_secs(u64::from(rotation_days) * 86_400)),
            key_publish_ahead,
            failure_limit: s.failure_limit.unwrap_or(defaults::FAILURE_LIMIT),
            source_failure_limit: s.source_failure_limit.unwrap_or(defaults::SOURCE_FAILURE_LIMIT),
            require_audience: s.require_audience,
            demo: s.demo,
        })
    }
}

/// Where an HSM signing key is, from `--signing-key`, `--pkcs11-module`, `--pkcs11-pin-file`.
#[derive(Debug, Clone)]
pub struct HsmSettings {
    /// The key, named by its URI.
    pub uri: crate::keys::pkcs11::Pkcs11Uri,
    /// The PKCS#11 library.
    pub module: PathBuf,
    /// The file holding the user PIN.
    pub pin_file: PathBuf,
}

/// The HSM settings, all three or none (a TOML file can give one alone).
fn hsm_settings(s: &Settings) -> Result<Option<HsmSettings>, String> {
    match (&s.signing_key, &s.pkcs11_module, &s.pkcs11_pin_file) {
        (None, None, None) => Ok(None),
        (Some(uri), Some(module), Some(pin_file)) => Ok(Some(HsmSettings {
            uri: crate::keys::pkcs11::Pkcs11Uri::parse(uri)?,
            module: module.clone(),
            pin_file: pin_file.clone(),
        })),
        _ => Err("--signing-key, --pkcs11-module and --pkcs11-pin-file go together: give all three".into()),
    }
}

/// The trusted issuers' key refresh settings.
fn federation(s: &Settings) -> Result<crate::federation::FederationConfig, String> {
    let refresh = s.trusted_jwks_refresh.unwrap_or(defaults::TRUSTED_JWKS_REFRESH_SECS);
    let min_interval = s
        .trusted_jwks_min_interval
        .unwrap_or(defaults::TRUSTED_JWKS_MIN_INTERVAL_SECS);
    within("--trusted-jwks-refresh", u64::from(refresh), 10, 86_400)?;
    within("--trusted-jwks-min-interval", u64::from(min_interval), 1, 3600)?;
    Ok(crate::federation::FederationConfig {
        refresh_every: Duration::from_secs(u64::from(refresh)),
        min_refetch: Duration::from_secs(u64::from(min_interval)),
        ..Default::default()
    })
}

/// `Err` naming `flag` unless `min <= value <= max`.
fn within(flag: &str, value: u64, min: u64, max: u64) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("invalid {flag} {value}: use {min} to {max}"))
    }
}

/// `--listen`, `--store` and `--issuer`, which depend on each other: replicas
/// sharing a PostgreSQL store must all name one issuer.
fn where_to_serve(s: &Settings) -> Result<(SocketAddr, String, Option<String>), String> {
    let listen_text = s.listen.as_deref().unwrap_or(defaults::LISTEN);
    let listen = listen_text.parse::<SocketAddr>().map_err(|_| {
        format!("invalid --listen {listen_text:?}: expected IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
    })?;
    let store = s.store.clone().unwrap_or_else(|| defaults::STORE.to_owned());
    let store_url = StoreUrl::parse(&store).map_err(|e| format!("invalid --store: {e}"))?;
    let issuer = s.issuer.clone();
    if matches!(store_url, StoreUrl::Postgres(_)) && issuer.is_none() {
        // The default issuer names the bound address, which differs per
        // replica: a token from one would then fail `iss` at another.
        return Err(
            "a postgres:// store is shared by replicas, which must all answer as one issuer: \
                    set --issuer to the URL clients reach them at (e.g. https://tessera.internal)"
                .into(),
        );
    }
    if let Some(issuer) = &issuer {
        check_issuer(issuer)?;
    }
    Ok((listen, store, issuer))
}

/// `--token-ttl` and `--max-token-ttl`: both at least a second, the default
/// within the cap.
fn token_lifetimes(s: &Settings) -> Result<(u32, u32), String> {
    let token_ttl = s.token_ttl.unwrap_or(defaults::TOKEN_TTL);
    let max_token_ttl = s.max_token_ttl.unwrap_or(defaults::MAX_TOKEN_TTL);
    if token_ttl == 0 || max_token_ttl == 0 {
        return Err("invalid token lifetime: --token-ttl and --max-token-ttl must be at least 1 second".into());
    }
    if token_ttl > max_token_ttl {
        return Err(format!(
            "invalid --token-ttl {token_ttl}: larger than --max-token-ttl {max_token_ttl}"
        ));
    }
    Ok((token_ttl, max_token_ttl))
}

/// `--tls-cert`, `--tls-key`, `--tls-client-ca` and `--tls-client-auth`,
/// which go together.
fn tls_files(s: &Settings) -> Result<Option<TlsFiles>, String> {
    match (s.tls_cert.clone(), s.tls_key.clone(), s.tls_client_ca.clone()) {
        (Some(cert), Some(key), client_ca) => {
            // A client CA without a mode requires certificates, as it always did.
            let client_auth = s
                .tls_client_auth
                .or(client_ca.as_ref().map(|_| crate::tls::ClientAuth::Required));
            Ok(Some(TlsFiles {
                cert,
                key,
                client_ca,
                client_auth,
            }))
        }
        (None, None, None) if s.tls_client_auth.is_some() => {
            Err("--tls-client-auth needs --tls-cert and --tls-key: client certificates come with TLS".into())
        }
        (None, None, None) => Ok(None),
        (None, None, Some(_)) => Err("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first".into()),
        _ => Err("--tls-cert and --tls-key go together: give both, or neither for plain TCP".into()),
    }
}

/// `--max-connections`, `--max-connection-streams`, `--max-connections-per-address`.
fn connection_limits(s: &Settings) -> Result<(usize, u32, usize), String> {
    let max_connections = s.max_connections.unwrap_or(defaults::MAX_CONNECTIONS);
    within("--max-connections", max_connections as u64, 1, 1_000_000)?;
    let streams = s.max_connection_streams.unwrap_or(defaults::MAX_CONNECTION_STREAMS);
    within("--max-connection-streams", u64::from(streams), 1, 10_000)?;
    let per_address = s
        .max_connections_per_address
        .unwrap_or(defaults::MAX_CONNECTIONS_PER_ADDRESS);
    Ok((max_connections, streams, per_address))
}

/// RFC 8414 §2: the issuer is an https URL (http tolerated for local use)
/// with no query or fragment.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or(""));
    if host.is_none_or(str::is_empty) || issuer.contains(['?', '#']) || issuer.chars().any(char::is_whitespace) {
        return Err(format!(
            "invalid --issuer {issuer:?}: expected an absolute http(s) URL without query or fragment, e.g. https://tessera.internal"
        ));
    }
    Ok(())
}

/// The issuer to use when none is configured: the bound address, with an
/// unspecified IP (0.0.0.0, ::) shown as `localhost`; `https` with TLS.
pub fn default_issuer(bound: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if bound.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", bound.port())
    } else {
        format!("{scheme}://{bound}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_sqlite_es256_one_hour() {
        let config = ServeConfig::resolve(Settings::default()).unwrap();
        assert_eq!(config.listen.to_string(), defaults::LISTEN);
        assert_eq!(config.store, defaults::STORE);
        assert_eq!(config.signing_alg, KeyAlgorithm::Es256);
        assert_eq!(config.token_ttl, 3600);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ntoken_ttl = 60\n").unwrap();
        let config = ServeConfig::resolve(Settings {
            config: Some(path),
            token_ttl: Some(120),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.token_ttl, 120);
    }

    /// The names the contract pins: `drain_delay`, `max_assertion_lifetime`,
    /// `max_connections_per_address` in the file, with their defaults.
    #[test]
    fn drain_delay_and_assertion_lifetime_come_from_the_file_with_defaults() {
        let defaults = ServeConfig::resolve(Settings::default()).unwrap();
        assert_eq!(defaults.drain_delay, Duration::ZERO);
        assert_eq!(defaults.max_assertion_lifetime, 3600);
        assert_eq!(defaults.max_connections_per_address, 1000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(
            &path,
            "drain_delay = 10\nmax_assertion_lifetime = 300\nmax_connections_per_address = 0\n",
        )
        .unwrap();
        let config = ServeConfig::resolve(Settings {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.drain_delay, Duration::from_secs(10));
        assert_eq!(config.max_assertion_lifetime, 300);
        assert_eq!(config.max_connections_per_address, 0);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = ServeConfig::resolve(Settings {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn bad_settings_say_what_is_accepted() {
        let cases = [
            Settings {
                listen: Some("localhost".into()),
                ..Default::default()
            },
            Settings {
                store: Some("mysql://x".into()),
                ..Default::default()
            },
            Settings {
                issuer: Some("tessera.internal".into()),
                ..Default::default()
            },
            Settings {
                issuer: Some("https://x/?q=1".into()),
                ..Default::default()
            },
            Settings {
                token_ttl: Some(0),
                ..Default::default()
            },
            Settings {
                token_ttl: Some(90_000),
                ..Default::default()
            },
            Settings {
                signing_alg: Some("HS256".into()),
                ..Default::default()
            },
        ];
        for case in cases {
            let err = ServeConfig::resolve(case.clone()).unwrap_err();
            assert!(err.starts_with("invalid"), "{case:?}: {err}");
        }
    }

    #[test]
    fn a_postgres_store_requires_one_shared_issuer() {
        let shared = |issuer: Option<&str>| Settings {
            store: Some("postgres://tessera@db.internal/tessera".into()),
            issuer: issuer.map(str::to_owned),
            ..Settings::default()
        };
        let err = ServeConfig::resolve(shared(None)).unwrap_err();
        assert!(err.contains("--issuer"), "{err}");
        assert!(ServeConfig::resolve(shared(Some("https://tessera.internal"))).is_ok());
    }

    #[test]
    fn a_malformed_postgres_url_is_refused_without_echoing_it() {
        let err = ServeConfig::resolve(Settings {
            store: Some("postgres://tessera:hunter2@db.internal:notaport/tessera".into()),
            issuer: Some("https://tessera.internal".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(err.contains("malformed PostgreSQL URL"), "{err}");
        assert!(!err.contains("hunter2"), "the password leaked: {err}");
    }

    #[test]
    fn default_issuer_names_localhost_for_unspecified_addresses() {
        assert_eq!(
            default_issuer("0.0.0.0:8080".parse().unwrap(), false),
            "http://localhost:8080"
        );
        assert_eq!(
            default_issuer("127.0.0.1:9".parse().unwrap(), false),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            default_issuer("127.0.0.1:9".parse().unwrap(), true),
            "https://127.0.0.1:9"
        );
    }
}

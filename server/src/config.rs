//! `tessera serve` settings: flags, `TESSERA_*` environment variables, and an
//! optional TOML file, in that order of precedence, validated as a whole
//! before any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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

/// The optional TOML file: the same settings as the flags, under the same
/// names with `_` for `-`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--store`.
    pub store: Option<String>,
    /// `--issuer`.
    pub issuer: Option<String>,
    /// `--token-ttl`.
    pub token_ttl: Option<u32>,
    /// `--max-token-ttl`.
    pub max_token_ttl: Option<u32>,
    /// `--signing-alg`.
    pub signing_alg: Option<String>,
    /// `--store-poll-ms`.
    pub store_poll_ms: Option<u64>,
    /// `--store-staleness`.
    pub store_staleness: Option<u32>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-ca`.
    pub tls_client_ca: Option<PathBuf>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--max-connection-streams`.
    pub max_connection_streams: Option<u32>,
    /// `--max-connections-per-address`.
    pub max_connections_per_address: Option<usize>,
    /// `--drain-timeout`.
    pub drain_timeout: Option<u32>,
    /// `--drain-delay`.
    pub drain_delay: Option<u32>,
    /// `--max-assertion-lifetime`.
    pub max_assertion_lifetime: Option<u32>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--key-rotation-days`.
    pub key_rotation_days: Option<u32>,
    /// `--key-publish-ahead`.
    pub key_publish_ahead: Option<u32>,
    /// `--failure-limit`.
    pub failure_limit: Option<u32>,
    /// `--source-failure-limit`.
    pub source_failure_limit: Option<u32>,
    /// `--require-audience`.
    pub require_audience: Option<bool>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// A message naming the file and what is wrong in it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {path:?}: {e}"))?;
        toml::from_str(&text).map_err(|e| format!("config file {path:?}: {e}"))
    }
}

/// Settings as given on the command line or in the environment; `None` falls
/// back to the file, then to the default.
#[derive(Debug, Clone, Default)]
pub struct ServeOverrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--store`.
    pub store: Option<String>,
    /// `--issuer`.
    pub issuer: Option<String>,
    /// `--token-ttl`.
    pub token_ttl: Option<u32>,
    /// `--max-token-ttl`.
    pub max_token_ttl: Option<u32>,
    /// `--signing-alg`.
    pub signing_alg: Option<String>,
    /// `--store-poll-ms`.
    pub store_poll_ms: Option<u64>,
    /// `--store-staleness`.
    pub store_staleness: Option<u32>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-ca`.
    pub tls_client_ca: Option<PathBuf>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--max-connection-streams`.
    pub max_connection_streams: Option<u32>,
    /// `--max-connections-per-address`.
    pub max_connections_per_address: Option<usize>,
    /// `--drain-timeout`.
    pub drain_timeout: Option<u32>,
    /// `--drain-delay`.
    pub drain_delay: Option<u32>,
    /// `--max-assertion-lifetime`.
    pub max_assertion_lifetime: Option<u32>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--key-rotation-days`.
    pub key_rotation_days: Option<u32>,
    /// `--key-publish-ahead`.
    pub key_publish_ahead: Option<u32>,
    /// `--failure-limit`.
    pub failure_limit: Option<u32>,
    /// `--source-failure-limit`.
    pub source_failure_limit: Option<u32>,
    /// `--require-audience` (a flag: `Some(true)` when given).
    pub require_audience: Option<bool>,
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
}

impl ServeConfig {
    /// Merges flags and environment over the file over the defaults, and
    /// validates the result.
    ///
    /// # Errors
    /// One line naming the bad setting and what would be accepted.
    pub fn resolve(overrides: ServeOverrides) -> Result<Self, String> {
        let file = match &overrides.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| defaults::LISTEN.to_owned());
        let listen = listen_text.parse::<SocketAddr>().map_err(|_| {
            format!("invalid --listen {listen_text:?}: expected IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
        })?;
        let store = overrides
            .store
            .or(file.store)
            .unwrap_or_else(|| defaults::STORE.to_owned());
        let store_url = StoreUrl::parse(&store).map_err(|e| format!("invalid --store: {e}"))?;
        let issuer = overrides.issuer.or(file.issuer);
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
        let token_ttl = overrides.token_ttl.or(file.token_ttl).unwrap_or(defaults::TOKEN_TTL);
        let max_token_ttl = overrides
            .max_token_ttl
            .or(file.max_token_ttl)
            .unwrap_or(defaults::MAX_TOKEN_TTL);
        if token_ttl == 0 || max_token_ttl == 0 {
            return Err("invalid token lifetime: --token-ttl and --max-token-ttl must be at least 1 second".into());
        }
        if token_ttl > max_token_ttl {
            return Err(format!(
                "invalid --token-ttl {token_ttl}: larger than --max-token-ttl {max_token_ttl}"
            ));
        }
        let alg_text = overrides
            .signing_alg
            .or(file.signing_alg)
            .unwrap_or_else(|| defaults::SIGNING_ALG.to_owned());
        let signing_alg = KeyAlgorithm::parse(&alg_text).map_err(|e| format!("invalid --signing-alg: {e}"))?;
        let poll_ms = overrides
            .store_poll_ms
            .or(file.store_poll_ms)
            .unwrap_or(defaults::STORE_POLL_MS);
        if !(10..=60_000).contains(&poll_ms) {
            return Err(format!("invalid --store-poll-ms {poll_ms}: use 10 to 60000"));
        }
        let staleness = overrides
            .store_staleness
            .or(file.store_staleness)
            .unwrap_or(defaults::STORE_STALENESS_SECS);
        if !(1..=86_400).contains(&staleness) {
            return Err(format!("invalid --store-staleness {staleness}: use 1 to 86400 seconds"));
        }
        let tls = match (
            overrides.tls_cert.or(file.tls_cert),
            overrides.tls_key.or(file.tls_key),
            overrides.tls_client_ca.or(file.tls_client_ca),
        ) {
            (Some(cert), Some(key), client_ca) => Some(TlsFiles { cert, key, client_ca }),
            (None, None, None) => None,
            (None, None, Some(_)) => {
                return Err("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first".into());
            }
            _ => return Err("--tls-cert and --tls-key go together: give both, or neither for plain TCP".into()),
        };
        let max_connections = overrides
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults::MAX_CONNECTIONS);
        if !(1..=1_000_000).contains(&max_connections) {
            return Err(format!("invalid --max-connections {max_connections}: use 1 to 1000000"));
        }
        let max_connection_streams = overrides
            .max_connection_streams
            .or(file.max_connection_streams)
            .unwrap_or(defaults::MAX_CONNECTION_STREAMS);
        if !(1..=10_000).contains(&max_connection_streams) {
            return Err(format!(
                "invalid --max-connection-streams {max_connection_streams}: use 1 to 10000"
            ));
        }
        let max_connections_per_address = overrides
            .max_connections_per_address
            .or(file.max_connections_per_address)
            .unwrap_or(defaults::MAX_CONNECTIONS_PER_ADDRESS);
        let drain_timeout = overrides
            .drain_timeout
            .or(file.drain_timeout)
            .unwrap_or(defaults::DRAIN_TIMEOUT_SECS);
        if drain_timeout > 3600 {
            return Err(format!(
                "invalid --drain-timeout {drain_timeout}: use 0 to 3600 seconds"
            ));
        }
        let drain_delay = overrides
            .drain_delay
            .or(file.drain_delay)
            .unwrap_or(defaults::DRAIN_DELAY_SECS);
        if drain_delay > 600 {
            return Err(format!("invalid --drain-delay {drain_delay}: use 0 to 600 seconds"));
        }
        let max_assertion_lifetime = overrides
            .max_assertion_lifetime
            .or(file.max_assertion_lifetime)
            .unwrap_or(defaults::MAX_ASSERTION_LIFETIME_SECS);
        if !(1..=86_400).contains(&max_assertion_lifetime) {
            return Err(format!(
                "invalid --max-assertion-lifetime {max_assertion_lifetime}: use 1 to 86400 seconds"
            ));
        }
        let log_format = match overrides.log_format.or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(format!("invalid --log-format {other:?}: use text or json")),
        };
        let rotation_days = overrides
            .key_rotation_days
            .or(file.key_rotation_days)
            .unwrap_or(defaults::KEY_ROTATION_DAYS);
        if rotation_days > 3650 {
            return Err(format!(
                "invalid --key-rotation-days {rotation_days}: use 0 (never) to 3650"
            ));
        }
        let key_rotation = (rotation_days > 0).then(|| Duration::from_secs(u64::from(rotation_days) * 86_400));
        let key_publish_ahead = overrides
            .key_publish_ahead
            .or(file.key_publish_ahead)
            .unwrap_or(defaults::KEY_PUBLISH_AHEAD_SECS);
        if key_publish_ahead > 7 * 86_400 {
            return Err(format!(
                "invalid --key-publish-ahead {key_publish_ahead}: use 0 to 604800 seconds"
            ));
        }
        let failure_limit = overrides
            .failure_limit
            .or(file.failure_limit)
            .unwrap_or(defaults::FAILURE_LIMIT);
        let source_failure_limit = overrides
            .source_failure_limit
            .or(file.source_failure_limit)
            .unwrap_or(defaults::SOURCE_FAILURE_LIMIT);
        let require_audience = overrides.require_audience.or(file.require_audience).unwrap_or(false);
        Ok(Self {
            failure_limit,
            source_failure_limit,
            require_audience,
            key_rotation,
            key_publish_ahead,
            listen,
            store,
            issuer,
            token_ttl,
            max_token_ttl,
            signing_alg,
            store_poll: Duration::from_millis(poll_ms),
            store_staleness: Duration::from_secs(u64::from(staleness)),
            tls,
            max_connections,
            max_connection_streams,
            max_connections_per_address,
            drain_timeout: Duration::from_secs(u64::from(drain_timeout)),
            drain_delay: Duration::from_secs(u64::from(drain_delay)),
            max_assertion_lifetime,
            log_format,
        })
    }
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
        let config = ServeConfig::resolve(ServeOverrides::default()).unwrap();
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
        let config = ServeConfig::resolve(ServeOverrides {
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
        let defaults = ServeConfig::resolve(ServeOverrides::default()).unwrap();
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
        let config = ServeConfig::resolve(ServeOverrides {
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
        let err = ServeConfig::resolve(ServeOverrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn bad_settings_say_what_is_accepted() {
        let cases = [
            ServeOverrides {
                listen: Some("localhost".into()),
                ..Default::default()
            },
            ServeOverrides {
                store: Some("mysql://x".into()),
                ..Default::default()
            },
            ServeOverrides {
                issuer: Some("tessera.internal".into()),
                ..Default::default()
            },
            ServeOverrides {
                issuer: Some("https://x/?q=1".into()),
                ..Default::default()
            },
            ServeOverrides {
                token_ttl: Some(0),
                ..Default::default()
            },
            ServeOverrides {
                token_ttl: Some(90_000),
                ..Default::default()
            },
            ServeOverrides {
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
        let shared = |issuer: Option<&str>| ServeOverrides {
            store: Some("postgres://tessera@db.internal/tessera".into()),
            issuer: issuer.map(str::to_owned),
            ..ServeOverrides::default()
        };
        let err = ServeConfig::resolve(shared(None)).unwrap_err();
        assert!(err.contains("--issuer"), "{err}");
        assert!(ServeConfig::resolve(shared(Some("https://tessera.internal"))).is_ok());
    }

    #[test]
    fn a_malformed_postgres_url_is_refused_without_echoing_it() {
        let err = ServeConfig::resolve(ServeOverrides {
            store: Some("postgres://tessera:hunter2@db.internal:notaport/tessera".into()),
            issuer: Some("https://tessera.internal".into()),
            ..ServeOverrides::default()
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

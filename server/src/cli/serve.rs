//! `tessera serve`.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::CliError;
use crate::admin;
use crate::authority::{Authority, AuthorityConfig, ThrottleConfig};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, ServeConfig, Settings};
use crate::keys::KeyCustody;
use crate::logging;
use crate::store;
use crate::tls::TlsReloader;

/// `tessera serve`: resolves the settings, opens the store, binds, serves
/// until SIGTERM or Ctrl-C, then drains.
pub(super) async fn run(settings: Settings) -> Result<(), CliError> {
    let config = ServeConfig::resolve(settings).map_err(CliError::Usage)?;
    // Held until serve returns: dropping it flushes the log queue.
    let _log_guard = logging::init(config.log_format, !config.log_blocking);
    let tls = config
        .tls
        .clone()
        .map(TlsReloader::new)
        .transpose()
        .map_err(CliError::failed)?
        .map(Arc::new);
    // Read before the store opens, so a KEK file that is missing or shared
    // with other users stops the start before anything is written.
    let mut custody = KeyCustody::from_option(config.key_encryption_key_file.as_deref()).map_err(CliError::Failed)?;
    if let Some(hsm) = &config.hsm {
        let key = crate::keys::pkcs11::HsmKey::open(&hsm.uri, &hsm.module, &hsm.pin_file).map_err(CliError::Failed)?;
        let key = crate::keys::SigningKey::from_hsm(key, SystemClock.now()).map_err(CliError::failed)?;
        tracing::info!(
            kid = key.kid(),
            "signing with the HSM's key; Tessera does not rotate it"
        );
        custody = custody.with_hsm(key);
    }
    let store = store::open(&config.store).await.map_err(CliError::Failed)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
        CliError::failed(format!(
            "cannot listen on {}: {e} (is another server running there? choose another with --listen)",
            config.listen
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::failed(format!("cannot read the bound address: {e}")))?;
    let admin_listener = match config.admin_listen {
        Some(address) => Some(tokio::net::TcpListener::bind(address).await.map_err(|e| {
            CliError::failed(format!(
                "cannot listen on {address} for the admin API: {e} (choose another with --admin-listen)"
            ))
        })?),
        None => None,
    };
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| config::default_issuer(bound, tls.is_some()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let authority = Authority::new(
        authority_config(&config, issuer.clone(), Arc::new(custody)),
        store.clone(),
        clock.clone(),
    )
    .await
    .map_err(|e| CliError::failed(format!("cannot start the authority: {e}")))?;
    let authority = Arc::new(authority);
    if config.demo {
        let (id, secret) = admin::ensure_demo_client(store.as_ref(), clock.now())
            .await
            .map_err(|e| CliError::failed(format!("cannot prepare the demo client: {e}")))?;
        let base = issuer.trim_end_matches('/');
        // Shown on the terminal once, like `client create` does; never logged.
        println!(
            "\nDemo client {id:?} is ready (scopes demo:read demo:write). Get a token with:\n\n  \
             curl -s -X POST {scheme}://{bound}/oauth2/token -H \"Content-Type: application/x-www-form-urlencoded\" \
             -d \"grant_type=client_credentials&client_id={id}&client_secret={}\"\n\n\
             Metadata: {base}/.well-known/oauth-authorization-server\n",
            secret.expose()
        );
    }
    // Printed last: tests and scripts take this line to mean "ready".
    let mutual = match config.tls.as_ref().and_then(|t| t.client_auth) {
        Some(crate::tls::ClientAuth::Required) => ", client certificates required",
        Some(crate::tls::ClientAuth::Optional) => ", client certificates optional",
        None => "",
    };
    if let Some(admin) = &admin_listener {
        let admin_bound = admin
            .local_addr()
            .map_err(|e| CliError::failed(format!("cannot read the admin API's bound address: {e}")))?;
        println!("tessera admin API on {scheme}://{admin_bound} (and not on {bound})");
    }
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
        admin_api: admin_listener.is_none(),
        ..crate::server::ServeOptions::default()
    };
    let main = crate::server::run(
        authority.clone(),
        listener,
        options.clone(),
        crate::server::shutdown_signal(),
    );
    match admin_listener {
        None => main.await,
        Some(admin) => {
            let admin_options = crate::server::ServeOptions {
                admin_api: true,
                ..options
            };
            let admin = crate::server::run(authority, admin, admin_options, crate::server::shutdown_signal());
            tokio::try_join!(main, admin).map(|_| ())
        }
    }
    .map_err(|e| CliError::failed(format!("server failed: {e}")))?;
    tracing::info!("shut down");
    Ok(())
}

/// The core's settings, from the server's.
fn authority_config(config: &ServeConfig, issuer: String, custody: Arc<KeyCustody>) -> AuthorityConfig {
    AuthorityConfig {
        issuer,
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
        federation: config.federation,
        client_certificates: config.tls.as_ref().is_some_and(|t| t.client_auth.is_some()),
        custody,
    }
}

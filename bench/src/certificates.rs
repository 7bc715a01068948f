//! `tessera-bench certificates`: client certificates (RFC 8705) on
//! kept-alive mutual-TLS connections, against a ceiling on the same
//! transport: the crypto ceiling served through Tessera's own TLS setup
//! (`tessera_server::tls`), asking for client certificates as Tessera does.
//!
//! On a kept-alive connection the handshake is paid once; what remains new
//! per request is matching the certificate facts read at the handshake
//! against the client's registrations, and writing `cnf` into the token.
//! The plain-TCP secret row is the same run's baseline; the last row pays a
//! full mutual-TLS handshake per call, on both sides, to show what the
//! handshake costs when a caller does not keep its connection.
//!
//! Tessera runs with `--tls-client-auth optional` (certificate and secret
//! clients side by side), or as `BENCH_TLS_CLIENT_AUTH` says (`required`:
//! the chain is then checked in the handshake, as the ceiling does).

use procs::Spawned;
use run::{Row, print_run_table};
use tessera_server::admin::{self, CertificateSpec, NewClient};
use tessera_server::store;
use tessera_testkit::TestPki;
use tessera_testkit::certs::{ClientCa, Names};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::*;

const SPIFFE_ID: &str = "spiffe://example.org/ns/bench/sa/bench";

pub(crate) async fn run(common: Common, rounds: usize) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 0).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pki = TestPki::write(dir.path(), "server");
    let clients = ClientCa::new(dir.path(), "clients");
    let cert = clients.issue(&dir.path().join("bench").display().to_string(), &Names::uri(SPIFFE_ID));
    let bound_secret = register(setup.store_url()).await?;
    let path = |p: &std::path::Path| p.display().to_string();
    let tls_args = [
        "--tls-cert".to_owned(),
        path(&pki.cert),
        "--tls-key".to_owned(),
        path(&pki.key),
        "--tls-client-ca".to_owned(),
        path(&clients.ca),
    ];
    let tls_args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    let mut tessera_args = tls_args.clone();
    let mode = std::env::var("BENCH_TLS_CLIENT_AUTH").unwrap_or_else(|_| "optional".into());
    tessera_args.extend(["--tls-client-auth", mode.as_str()]);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(&pki.ca).map_err(|e| e.to_string())?,
        ))
        .identity(cert.identity())
        .domain_name("localhost");
    let endpoint = |server: &Spawned| -> Result<Endpoint, String> {
        Endpoint::from_shared(server.url().replace("http://", "https://"))
            .map_err(|e| e.to_string())?
            .tls_config(tls.clone())
            .map_err(|e| e.to_string())
    };
    let mut rows = [
        Row::new("IssueToken, client secret, plain TCP (baseline) vs signing ceiling, plain TCP"),
        Row::new("IssueToken, client secret, mutual TLS kept alive vs signing ceiling, mutual TLS"),
        Row::new("IssueToken, client certificate (tls_client_auth, bound) vs ceiling, mutual TLS"),
        Row::new("IssueToken, secret, token bound to the certificate vs ceiling, mutual TLS"),
        Row::new("IssueToken, client certificate, new mutual-TLS connection per call vs ceiling, the same"),
    ];
    let secret = |id: &str, secret: &str| Call::Issue {
        client_id: id.into(),
        secret: secret.into(),
    };
    let by_certificate = || Call::IssueByCertificate {
        client_id: "bench-cert".into(),
    };
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}");
        let plain = setup.start(&common, &[]).await?;
        let baseline = measure(&plain, &common, secret("bench", &setup.secret), u64::MAX).await?;
        drop(plain);
        let tessera = setup.start(&common, &tessera_args).await?;
        let mtls = endpoint(&tessera)?;
        let new_connections = Call::IssueByCertificateNewConnection {
            client_id: "bench-cert".into(),
            endpoint: Box::new(mtls.clone()),
        };
        let ours = [
            baseline,
            measure_through(&tessera, &mtls, &common, secret("bench", &setup.secret), u64::MAX).await?,
            measure_through(&tessera, &mtls, &common, by_certificate(), u64::MAX).await?,
            measure_through(&tessera, &mtls, &common, secret("bench-bound", &bound_secret), u64::MAX).await?,
            measure_through(&tessera, &mtls, &common, new_connections, u64::MAX).await?,
        ];
        drop(tessera);
        let crypto = Spawned::ceiling(&common, ceiling::Mode::Crypto).await?;
        let plain_ceiling = measure(&crypto, &common, by_certificate(), u64::MAX).await?;
        drop(crypto);
        let crypto_tls = Spawned::ceiling_with(&common, ceiling::Mode::Crypto, &tls_args).await?;
        let ceiling_tls = endpoint(&crypto_tls)?;
        let mut ceilings = vec![plain_ceiling];
        for _ in 0..3 {
            ceilings.push(measure_through(&crypto_tls, &ceiling_tls, &common, by_certificate(), u64::MAX).await?);
        }
        let new_connections = Call::IssueByCertificateNewConnection {
            client_id: "bench-cert".into(),
            endpoint: Box::new(ceiling_tls.clone()),
        };
        ceilings.push(measure_through(&crypto_tls, &ceiling_tls, &common, new_connections, u64::MAX).await?);
        drop(crypto_tls);
        for ((row, ours), ceiling) in rows.iter_mut().zip(ours).zip(ceilings) {
            row.push(ours, ceiling);
        }
    }
    print_run_table(&rows, rounds);
    Ok(())
}

/// Client `bench-cert` (no secret) authenticates by its certificate's URI
/// SAN; client `bench-bound` has a secret, returned, and its tokens bound.
async fn register(store_url: &str) -> Result<String, String> {
    let store = store::open(store_url).await?;
    let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
    let new = |id: &str, bind_to_certificate| NewClient {
        client_id: id.into(),
        scopes: vec!["bench:read".into()],
        audiences: vec![],
        token_ttl: None,
        bind_to_certificate,
    };
    admin::create_client_with(store.as_ref(), new("bench-cert", false), false, now)
        .await
        .map_err(|e| e.to_string())?;
    admin::add_client_certificate(
        store.as_ref(),
        "bench-cert",
        &CertificateSpec::SanUri(SPIFFE_ID.into()),
        now,
    )
    .await
    .map_err(|e| e.to_string())?;
    let secret = admin::create_client(store.as_ref(), new("bench-bound", true), now)
        .await
        .map_err(|e| e.to_string())?;
    Ok(secret.expose().to_owned())
}

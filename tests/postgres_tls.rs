//! End to end: PostgreSQL over TLS (issue 20). A real PostgreSQL started with
//! `ssl = on` and a `pg_hba.conf` of `hostssl` lines only, certificates made
//! by the test, and real `tessera` processes connecting with each `sslmode`.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::certs::{ClientCa, Names};
use support::pg_cluster::{PgCluster, ServerTls};
use support::{Server, TestPki, path};

/// `tessera keys list --json --store URL`: opens (and migrates) the store,
/// as every command does. Success, and stderr.
fn open_with(url: &str) -> (bool, String) {
    let out = support::cli(url, &["keys", "list", "--json"]);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_opens(url: &str, what: &str) {
    let (ok, stderr) = open_with(url);
    assert!(ok, "{what}: {stderr}");
}

fn assert_refused(url: &str, what: &str, expected: &[&str]) {
    let (ok, stderr) = open_with(url);
    assert!(!ok, "{what} was accepted");
    for part in expected {
        assert!(stderr.contains(part), "{what}: expected {part:?} in {stderr}");
    }
}

#[tokio::test]
async fn each_sslmode_against_a_tls_only_postgres_connects_or_names_the_check_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "pg");
    let other = TestPki::write(dir.path(), "other");
    let clients = ClientCa::new(dir.path(), "pg-clients");
    let client = clients.issue(
        "tessera-cert",
        &Names {
            subject: vec![("CN", "tessera_cert".into())],
            ..Names::default()
        },
    );
    let tls = ServerTls {
        cert: &pki.cert,
        key: &pki.key,
        client_ca: &clients.ca,
        cert_role: "tessera_cert",
    };
    let Some(cluster) = PgCluster::start_tls_or_skip("each_sslmode_against_a_tls_only_postgres", &tls) else {
        return;
    };
    cluster.create_database("tessera");
    cluster.create_role("tessera_cert");
    let port = cluster.port();
    let at = |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/tessera?{query}");
    let root = format!("sslrootcert={}", path(&pki.ca));
    let wrong_root = format!("sslrootcert={}", path(&other.ca));

    assert_refused(
        &at("127.0.0.1", "sslmode=disable"),
        "sslmode=disable",
        &["refused a connection without TLS", "sslmode=require"],
    );
    assert_opens(&at("127.0.0.1", ""), "no sslmode (prefer, as libpq)");
    assert_opens(&at("127.0.0.1", "sslmode=prefer"), "sslmode=prefer");
    assert_opens(&at("127.0.0.1", "sslmode=require"), "sslmode=require");
    assert_opens(
        &at("127.0.0.1", &format!("sslmode=verify-ca&{root}")),
        "sslmode=verify-ca",
    );
    assert_opens(
        &at("127.0.0.1", &format!("sslmode=verify-full&{root}")),
        "sslmode=verify-full",
    );

    // The wrong CA: refused by every mode that checks the chain.
    for mode in ["require", "verify-ca", "verify-full"] {
        assert_refused(
            &at("127.0.0.1", &format!("sslmode={mode}&{wrong_root}")),
            &format!("sslmode={mode} with another CA"),
            &["not signed by the CA in sslrootcert"],
        );
    }
    // A host name the certificate does not hold (the address is right):
    // verify-full refuses, verify-ca does not look at names.
    let misnamed = |mode: &str| at("db.example", &format!("hostaddr=127.0.0.1&sslmode={mode}&{root}"));
    assert_refused(
        &misnamed("verify-full"),
        "a wrong host name",
        &["does not name the host \"db.example\""],
    );
    assert_opens(&misnamed("verify-ca"), "verify-ca with a wrong host name");

    // A role that logs in by certificate (sslcert and sslkey).
    let as_cert_role = |query: &str| format!("postgres://tessera_cert@127.0.0.1:{port}/tessera?{query}");
    let with_cert = format!(
        "sslmode=verify-full&{root}&sslcert={}&sslkey={}",
        path(&client.cert),
        path(&client.key)
    );
    assert_opens(&as_cert_role(&with_cert), "a client certificate");
    assert_refused(
        &as_cert_role(&format!("sslmode=verify-full&{root}")),
        "the certificate role without a certificate",
        &["certificate"],
    );
    assert_refused(
        &as_cert_role(&format!("sslmode=verify-full&{root}&sslcert={}", path(&client.cert))),
        "sslcert without sslkey",
        &["sslkey"],
    );
    assert_refused(
        &at("127.0.0.1", "sslmode=verify-full"),
        "verify-full without a CA",
        &["sslrootcert"],
    );

    // A server on the verified connection: tokens, and a client registered
    // by another process seen through LISTEN on a TLS connection too.
    let url = as_cert_role(&with_cert);
    let server = Server::builder()
        .store(Arc::new(tempfile::tempdir().unwrap()), url.clone())
        .args(&["--issuer", "http://tessera.test", "--store-poll-ms", "60000"])
        .start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let exchange = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert!(!server.stderr().contains("cannot listen"), "{}", server.stderr());
}

#[test]
fn sslmode_require_against_a_server_without_tls_is_refused_saying_so() {
    let Some(cluster) = PgCluster::start_or_skip("sslmode_require_against_a_server_without_tls") else {
        return;
    };
    let url = cluster.create_database("tessera");
    assert_opens(&format!("{url}?sslmode=prefer"), "prefer falls back to no TLS");
    assert_refused(
        &format!("{url}?sslmode=require"),
        "sslmode=require without TLS at the server",
        &["does not offer TLS", "sslmode=require"],
    );
}

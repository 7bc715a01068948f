//! End to end: Tessera with the third-party clients people already use, on
//! their defaults — Python's authlib, PyJWT, requests and grpcio, and Node's
//! openid-client v6 — against a real `tessera serve`, over TLS with client
//! certificates too.
//!
//! The clients are installed from PyPI and npm by `tests/interop/setup.sh`
//! into `target/interop` (pinned in `requirements.txt` and
//! `package-lock.json`); each script runs its own cases and ends with
//! "N passed, M failed".

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::certs::{ClientCa, Names};
use support::{ClientKey, Server, TestPki, register_key};
use tessera_server::keys::KeyAlgorithm;

const AUDIENCE: &str = "https://api.test";

/// The workspace root (these tests are targets of `server/`).
fn manifest_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `target/interop`, with the clients installed (once per test process).
fn interop_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("TESSERA_INTEROP_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir().join("target").join("interop"));
        let out = Command::new("bash")
            .arg(manifest_dir().join("tests/interop/setup.sh"))
            .env("TESSERA_INTEROP_DIR", &dir)
            .output()
            .expect("running tests/interop/setup.sh");
        assert!(
            out.status.success(),
            "installing the third-party clients failed (python3 with venv, and node with npm, must be \
             installed, and PyPI and npm reachable):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A server with the clients the scripts use, and their environment.
struct Fixture {
    server: Server,
    env: Vec<(String, String)>,
}

fn fixture() -> Fixture {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read", "--audience", AUDIENCE]);
    let introspector = server.create_client("introspector", &["--scope", "tessera:introspect"]);
    server.create_client("rsa-client", &["--scope", "read"]);
    // authlib's PrivateKeyJWT signs RS256 by default.
    let key: ClientKey = register_key(&server, "rsa-client", "k1", KeyAlgorithm::Rs256);
    let key_file = server.dir.path().join("rsa-client.pem");
    std::fs::write(&key_file, key.private_pem()).unwrap();
    let env = [
        ("TESSERA_URL", server.url()),
        ("SECRET_CLIENT_ID", "svc".into()),
        ("SECRET_CLIENT_SECRET", secret),
        ("JWT_CLIENT_ID", "rsa-client".into()),
        ("JWT_CLIENT_KEY_FILE", key_file.display().to_string()),
        ("INTROSPECTOR_ID", "introspector".into()),
        ("INTROSPECTOR_SECRET", introspector),
        ("AUDIENCE", AUDIENCE.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Fixture { server, env }
}

/// Runs a script, printing its cases; fails with its whole output and the
/// server's log when any case failed.
fn run(fixture: &Fixture, program: &Path, script: &Path) {
    let out = Command::new(program)
        .arg(script)
        .envs(fixture.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.lines().last().is_some_and(|l| l.ends_with(" 0 failed")),
        "{} {}:\n{stdout}\n{}\n--- server log\n{}",
        program.display(),
        script.display(),
        String::from_utf8_lossy(&out.stderr),
        fixture.server.stderr()
    );
}

#[test]
fn authlib_pyjwt_and_grpcio_work_unchanged_on_their_defaults() {
    let python = interop_dir().join("venv/bin/python");
    run(
        &fixture(),
        &python,
        &manifest_dir().join("tests/interop/python_clients.py"),
    );
}

/// RFC 8705 with requests, authlib and grpcio: a Tessera on TLS asking for
/// client certificates, a certificate client, and the files they need.
#[test]
fn python_clients_authenticate_by_client_certificate_and_get_bound_tokens_rfc8705() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "server");
    let ca = ClientCa::new(dir.path(), "clients");
    let path = |p: &Path| p.display().to_string();
    let server = Server::builder()
        .args(&[
            "--tls-cert",
            &path(&pki.cert),
            "--tls-key",
            &path(&pki.key),
            "--tls-client-ca",
            &path(&ca.ca),
            "--tls-client-auth",
            "optional",
        ])
        .start();
    let spiffe_id = "spiffe://example.org/ns/payments/sa/billing";
    for args in [
        &["client", "create", "billing", "--scope", "read", "--no-secret"][..],
        &["client", "add-certificate", "billing", "--san-uri", spiffe_id],
    ] {
        let out = server.cli(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let cert = ca.issue("billing", &Names::uri(spiffe_id));
    // The server's certificate names localhost; the clients connect there.
    let url = format!("https://localhost:{}", server.addr.port());
    let env = [
        ("TESSERA_URL", url),
        ("CA_FILE", path(&pki.ca)),
        ("CERT_CLIENT_ID", "billing".to_owned()),
        ("CLIENT_CERT_FILE", path(&cert.cert)),
        ("CLIENT_KEY_FILE", path(&cert.key)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    run(
        &Fixture { server, env },
        &interop_dir().join("venv/bin/python"),
        &manifest_dir().join("tests/interop/python_mtls_clients.py"),
    );
}

#[test]
fn openid_client_v6_works_unchanged_on_its_defaults() {
    let node_dir = interop_dir().join("node");
    // ES modules resolve packages from the script's own folder.
    let script = node_dir.join("node_clients.mjs");
    std::fs::copy(manifest_dir().join("tests/interop/node_clients.mjs"), &script).unwrap();
    run(&fixture(), Path::new("node"), &script);
}

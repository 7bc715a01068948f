//! End to end: signing keys at rest (issue 20). Real `tessera serve`
//! processes on a real SQLite file or PostgreSQL cluster, KEK files made by
//! `tessera keys generate-kek`, and the store's own bytes (the SQLite file and
//! its WAL, a `pg_dump`) searched for the private keys.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use support::pg_cluster::PgCluster;
use support::{Server, eventually, path, tessera_bin};

const ISSUER: &str = "http://tessera.test";

/// `tessera keys generate-kek --out DIR/NAME`: the file and the KEK's id.
fn new_kek(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let out = Command::new(tessera_bin())
        .args(["keys", "generate-kek", "--out", path(&file)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let id = stdout
        .strip_prefix("Wrote key encryption key ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no KEK id in {stdout:?}"))
        .to_owned();
    (file, id)
}

/// The private keys the store holds in the clear, read as the server reads them.
async fn clear_keys(store_url: &str) -> Vec<Vec<u8>> {
    let store = tessera_server::store::open(store_url).await.unwrap();
    store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| tessera_server::keys::custody::sealed_under(&k.private_pkcs8).is_none())
        .map(|k| k.private_pkcs8.to_vec())
        .collect()
}

/// True when any 16-byte run of a key's private part (past the fixed
/// algorithm header every PKCS#8 key of its kind shares) is in `bytes`.
fn holds_any(bytes: &[u8], keys: &[Vec<u8>]) -> bool {
    keys.iter()
        .any(|der| der[36..].windows(16).any(|run| bytes.windows(16).any(|w| w == run)))
}

/// Hex, as `pg_dump` writes a bytea.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `tessera serve` as a replica of this test would start, expected to refuse.
fn serve_refused(store_url: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["--issuer", ISSUER];
    args.extend_from_slice(extra);
    support::serve_refused(store_url, &args, &[])
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn keys_list(store_url: &str, kek: Option<&Path>) -> serde_json::Value {
    let mut args = vec!["keys", "list", "--json"];
    if let Some(kek) = kek {
        args.extend(["--key-encryption-key-file", path(kek)]);
    }
    let out = support::cli(store_url, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn keys_stored_in_the_clear_are_encrypted_at_the_next_start_with_a_kek_and_leave_no_trace_in_the_file() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db = dir.path().join("tessera.db");
    let url = format!("sqlite://{}", db.display());
    let server = Server::builder()
        .store(dir.clone(), url.clone())
        .args(&["--issuer", ISSUER])
        .start();
    assert!(
        server.stderr().contains("signing keys are stored in the clear"),
        "the start without a KEK says so: {}",
        server.stderr()
    );
    let secret = server.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let before = server.issued("svc", &secret).await;
    let (dir, url) = server.kill();
    let clear = clear_keys(&url).await;
    assert_eq!(clear.len(), 1, "the first key, stored in the clear");

    let (kek, kek_id) = new_kek(dir.path(), "kek");
    let server = Server::builder()
        .store(dir.clone(), url.clone())
        .args(&["--issuer", ISSUER, "--key-encryption-key-file", path(&kek)])
        .start();
    assert!(
        server.stderr().contains("signing_keys_encrypted") && server.stderr().contains(&kek_id),
        "{}",
        server.stderr()
    );
    // The same key, now decrypted at start: the earlier token is still good.
    let exchange = server.introspect(("svc", &secret), &before).await;
    assert_eq!(exchange.json()["active"], true, "{exchange}");
    let after = server.issued("svc", &secret).await;
    assert_eq!(kid_of(&after), kid_of(&before));
    let exchange = server.introspect(("svc", &secret), &after).await;
    assert_eq!(exchange.json()["active"], true, "{exchange}");
    assert!(clear_keys(&url).await.is_empty());
    for file in ["tessera.db", "tessera.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!holds_any(&bytes, &clear), "{file} still holds the private key");
    }
    let listed = keys_list(&url, None);
    assert_eq!(listed[0]["encrypted_under"], json!(kek_id), "{listed}");
}

#[tokio::test]
async fn a_store_with_encrypted_keys_is_refused_without_the_kek_and_with_the_wrong_one() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let (right, right_id) = new_kek(dir.path(), "right");
    let (wrong, wrong_id) = new_kek(dir.path(), "wrong");
    let server = Server::builder()
        .store(dir.clone(), url.clone())
        .args(&["--key-encryption-key-file", path(&right)])
        .start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let (dir, url) = server.kill();

    let (code, stderr) = serve_refused(&url, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("stored encrypted")
            && stderr.contains(&right_id)
            && stderr.contains("--key-encryption-key-file"),
        "without the KEK: {stderr}"
    );
    let (code, stderr) = serve_refused(&url, &["--key-encryption-key-file", path(&wrong)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("encrypted under key encryption key {right_id}"))
            && stderr.contains(&format!("the key encryption key given is {wrong_id}")),
        "with the wrong KEK: {stderr}"
    );
    // The refusals wrote nothing: the right KEK still serves.
    let server = Server::builder()
        .store(dir, url)
        .args(&["--key-encryption-key-file", path(&right)])
        .start();
    assert_eq!(server.grant("svc", &secret).await.status, 200);
}

#[test]
fn a_kek_file_other_users_can_read_is_refused_before_the_store_is_touched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (kek, _) = new_kek(dir.path(), "kek");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = dir.path().join("tessera.db");
    let url = format!("sqlite://{}", db.display());
    let (code, stderr) = serve_refused(&url, &["--key-encryption-key-file", path(&kek)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("chmod 600 {}", kek.display())), "{stderr}");
    assert!(!db.exists(), "no store was created");
}

#[test]
fn generate_kek_never_overwrites_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (kek, _) = new_kek(dir.path(), "kek");
    let before = std::fs::read(&kek).unwrap();
    let out = Command::new(tessera_bin())
        .args(["keys", "generate-kek", "--out", path(&kek)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    assert_eq!(std::fs::read(&kek).unwrap(), before);
}

/// Copies `from` over `to` the way a mounted secret is updated: a new file
/// renamed into place.
fn replace_file(from: &Path, to: &Path) {
    let staged = to.with_extension("staged");
    std::fs::copy(from, &staged).unwrap();
    std::fs::rename(&staged, to).unwrap();
}

#[tokio::test]
async fn rewrap_while_two_replicas_serve_fails_no_issuance_or_introspection_and_leaves_no_clear_key_in_a_dump() {
    let Some(cluster) = PgCluster::start_or_skip("rewrap_while_two_replicas_serve") else {
        return;
    };
    let url = cluster.create_database("tessera");
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let replica = |extra: &[&str]| {
        let mut args = vec!["--issuer", ISSUER];
        args.extend_from_slice(extra);
        Server::builder().store(dir.clone(), url.clone()).args(&args).start()
    };
    // A deployment that began without a KEK.
    let first = replica(&[]);
    let secret = first.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    drop(first);
    let clear = clear_keys(&url).await;
    assert_eq!(clear.len(), 1);
    let dump = cluster.dump("tessera");
    assert!(
        clear
            .iter()
            .any(|der| String::from_utf8_lossy(&dump).contains(&hex(der))),
        "the dump is searched where the key would be"
    );

    let (old, old_id) = new_kek(dir.path(), "old");
    let (new, new_id) = new_kek(dir.path(), "new");
    let mounted = dir.path().join("mounted-kek");
    replace_file(&old, &mounted);
    let kek_flag = ["--key-encryption-key-file", path(&mounted)];
    let (a, b) = (Arc::new(replica(&kek_flag)), Arc::new(replica(&kek_flag)));
    let dump = cluster.dump("tessera");
    assert!(!holds_any(&dump, &clear), "a dump holds the private key in binary");
    assert!(
        !clear.iter().any(|der| {
            let text = String::from_utf8_lossy(&dump);
            hex(&der[36..])
                .as_bytes()
                .chunks(32)
                .any(|run| text.contains(std::str::from_utf8(run).unwrap()))
        }),
        "a dump holds the private key in hex"
    );

    // Traffic across both replicas for the whole change: a token from one is
    // introspected at the other.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (a, b, stop, served, failed, secret) = (
            a.clone(),
            b.clone(),
            stop.clone(),
            served.clone(),
            failed.clone(),
            secret.clone(),
        );
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for round in 0..100_000usize {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let (from, at) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
                let exchange = from.grant("svc", &secret).await;
                let ok = exchange.status == 200 && {
                    let jwt = exchange.json()["access_token"].as_str().unwrap_or_default().to_owned();
                    let answer = at.introspect(("svc", &secret), &jwt).await;
                    answer.status == 200 && answer.json()["active"] == true
                };
                if ok {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    failures.push(format!("{exchange}"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failures
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = support::cli(
        &url,
        &[
            "keys",
            "rewrap",
            "--key-encryption-key-file",
            path(&old),
            "--new-key-encryption-key-file",
            path(&new),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = keys_list(&url, None);
    assert_eq!(listed[0]["encrypted_under"], json!(new_id), "{listed}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The secret is updated where the replicas read it; then a new key is
    // made, which they can only load with the new KEK.
    replace_file(&new, &mounted);
    let out = support::cli(
        &url,
        &[
            "keys",
            "rotate",
            "--publish-ahead",
            "2",
            "--key-encryption-key-file",
            path(&new),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rotated = keys_list(&url, None)[1]["kid"].as_str().unwrap().to_owned();
    for replica in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(5), async || {
                let token = replica.issued("svc", &secret).await;
                kid_of(&token) == rotated
            })
            .await,
            "{} never signed with the key made under the new KEK: {}",
            replica.url(),
            replica.stderr()
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    let failures = traffic.await.unwrap();
    assert!(failures.is_empty(), "{} failed: {failures:?}", failures.len());
    assert!(served.load(Ordering::Relaxed) > 50, "too little traffic to tell");
    assert_eq!(failed.load(Ordering::Relaxed), 0);

    // A replica started with the old KEK now is refused, naming both.
    let (code, stderr) = serve_refused(&url, &["--key-encryption-key-file", path(&old)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&new_id) && stderr.contains(&old_id), "{stderr}");
}

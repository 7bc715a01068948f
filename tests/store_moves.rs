//! End to end: backup and restore, and moving from SQLite to PostgreSQL
//! (issue 20), with real `tessera` processes on a real SQLite file and a
//! real PostgreSQL cluster.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use support::pg_cluster::PgCluster;
use support::{Server, path, tessera_bin};
use tessera_server::admin::backup::{EXPORT_VERSION, StoreExport};
use tessera_server::store::{RevokedToken, StoreSnapshot};

const ISSUER: &str = "http://tessera.test";

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tessera_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(file: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_sqlite_store_moves_to_postgres_with_one_export_and_one_import_and_old_tokens_and_secrets_keep_working() {
    let Some(cluster) = PgCluster::start_or_skip("a_sqlite_store_moves_to_postgres") else {
        return;
    };
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let kek = dir.path().join("kek");
    assert!(run(&["keys", "generate-kek", "--out", path(&kek)]).0);
    let sqlite = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let kek_flag = ["--issuer", ISSUER, "--key-encryption-key-file", path(&kek)];
    let before = Server::builder()
        .store(dir.clone(), sqlite.clone())
        .args(&kek_flag)
        .start();
    let billing = before.create_client(
        "billing",
        &["--scope", "invoices:read", "--scope", "tessera:introspect"],
    );
    let ledger = before.create_client("ledger", &["--scope", "ledger:write"]);
    let kept = before.issued("billing", &billing).await;
    let revoked = before.issued("ledger", &ledger).await;
    let answer = before
        .form("/oauth2/revoke")
        .basic("ledger", &ledger)
        .body(format!("token={revoked}").into_bytes())
        .send()
        .await;
    assert_eq!(answer.status, 200, "{answer}");

    // Exported beside the running server: a consistent snapshot.
    let export = dir.path().join("tessera-export.json");
    let (ok, stdout, stderr) = run(&["export-store", "--out", path(&export), "--store", &sqlite]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 client(s), 1 signing key(s) (1 encrypted)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 revoked token(s)"), "{stdout}");
    assert_eq!(mode(&export), 0o600);
    drop(before);

    let postgres = cluster.create_database("moved");
    let (ok, stdout, stderr) = run(&["import-store", path(&export), "--store", &postgres]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Imported 2 client(s)"), "{stdout}");
    let after = Server::builder()
        .store(dir.clone(), postgres.clone())
        .args(&kek_flag)
        .start();
    let caller = ("billing", billing.as_str());
    assert!(
        after.is_active(caller, &kept).await,
        "a token issued before the move is active after it"
    );
    assert!(
        !after.is_active(caller, &revoked).await,
        "a revocation made before the move holds after it"
    );
    let fresh = after.issued("ledger", &ledger).await;
    assert_eq!(
        jsonwebtoken::decode_header(&fresh).unwrap().kid,
        jsonwebtoken::decode_header(&kept).unwrap().kid,
        "the same signing key signs after the move"
    );
    assert_eq!(
        after.grant("billing", &billing).await.status,
        200,
        "every secret still works"
    );

    // A second import into the now non-empty database changes nothing.
    let (ok, _, stderr) = run(&["import-store", path(&export), "--store", &postgres]);
    assert!(!ok);
    assert!(stderr.contains("the store is not empty"), "{stderr}");
    assert!(stderr.contains("--store"), "says what to do: {stderr}");
}

#[test]
fn a_malformed_export_is_refused_with_its_position_before_any_store_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    tessera_server::private_files::write_new(
        &file,
        b"{\"tessera_store_export\": 1,\n \"exported_at\": \"yesterday\"}",
    )
    .unwrap();
    let db = dir.path().join("target.db");
    let store = format!("sqlite://{}", db.display());
    let (ok, _, stderr) = run(&["import-store", path(&file), "--store", &store]);
    assert!(!ok);
    assert!(
        stderr.contains("not a Tessera store export") && stderr.contains("line 2"),
        "{stderr}"
    );
    assert!(!db.exists(), "no store was created");
}

/// An export with many revocations, so that an import takes long enough to
/// be killed in the middle of.
fn large_export(file: &Path, revocations: usize) -> usize {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let export = StoreExport {
        tessera_store_export: EXPORT_VERSION,
        exported_at: now,
        store: StoreSnapshot {
            revoked_tokens: (0..revocations)
                .map(|i| RevokedToken {
                    jti: format!("jti-{i:08}"),
                    client_id: "svc".into(),
                    expires_at: now + 3600,
                    revoked_at: now,
                })
                .collect(),
            ..StoreSnapshot::default()
        },
    };
    tessera_server::private_files::write_new(file, &serde_json::to_vec(&export).unwrap()).unwrap();
    revocations
}

async fn revocations_in(store_url: &str) -> usize {
    let store = tessera_server::store::open(store_url).await.unwrap();
    store.snapshot(0).await.unwrap().revoked_tokens.len()
}

fn spawn_import(file: &Path, store: &str) -> std::process::Child {
    Command::new(tessera_bin())
        .args(["import-store", path(file), "--store", store])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_kill_during_import_store_into_sqlite_leaves_nothing_or_everything() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = format!("sqlite://{}", dir.path().join("scratch.db").display());
    let target = format!("sqlite://{}", dir.path().join("target.db").display());
    kill_imports_and_check(dir.path(), &scratch, &target).await;
}

#[tokio::test]
async fn a_kill_during_import_store_into_postgres_leaves_nothing_or_everything() {
    let Some(cluster) = PgCluster::start_or_skip("a_kill_during_import_store_into_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (scratch, target) = (cluster.create_database("scratch"), cluster.create_database("target"));
    kill_imports_and_check(dir.path(), &scratch, &target).await;
}

/// Imports a large export into `scratch` to learn how long an import takes,
/// then into `target`, killed (SIGKILL) at a tenth, three tenths… of that.
async fn kill_imports_and_check(dir: &Path, scratch: &str, store: &str) {
    let file = dir.join("export.json");
    let total = large_export(&file, 100_000);
    let started = Instant::now();
    assert!(spawn_import(&file, scratch).wait().unwrap().success());
    let whole = started.elapsed();
    assert_eq!(revocations_in(scratch).await, total);

    let mut outcomes = Vec::new();
    for tenths in [1u32, 3, 5, 7, 9] {
        let mut child = spawn_import(&file, store);
        std::thread::sleep(whole * tenths / 10);
        let _ = child.kill();
        let _ = child.wait();
        let found = revocations_in(store).await;
        outcomes.push((tenths, found));
        assert!(
            found == 0 || found == total,
            "killed at {tenths}/10 of an import, the store holds {found} of {total} revocations"
        );
        if found == total {
            break;
        }
    }
    assert!(
        outcomes.iter().any(|o| o.1 == 0),
        "no kill landed before the import committed (a whole import took {whole:?}): {outcomes:?}"
    );
    if outcomes.last().is_some_and(|o| o.1 == 0) {
        assert!(
            spawn_import(&file, store).wait().unwrap().success(),
            "after the kills, an import completes"
        );
    }
    assert_eq!(revocations_in(store).await, total);
}

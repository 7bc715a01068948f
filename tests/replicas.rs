//! End to end: several `tessera` replicas on one real PostgreSQL.
//!
//! Each test starts its own throwaway cluster (`initdb` in a temp dir; as
//! the `postgres` user when run as root) and real `tessera serve` processes
//! on it. Without PostgreSQL on the machine each test says it was skipped;
//! under CI it fails instead.
//!
//! Propagation bounds (issue 6): a change made through one replica is in
//! force there at once and at every other within 2 s. The replicas here poll
//! the store only once a minute, so what the tests see within 2 s is
//! PostgreSQL's LISTEN/NOTIFY at work, not the poll.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::pg_cluster::PgCluster;
use support::{ClientKey, Exchange, Server, eventually, grpc_oauth_error, issue_request, register_key};
use tessera_server::keys::KeyAlgorithm;

/// Every replica answers as one issuer, as a fleet behind one name does.
const ISSUER: &str = "http://tessera.test";
/// The bound on propagation between replicas.
const BOUND: Duration = Duration::from_secs(2);
/// Long enough that only a notification can explain a change seen within [`BOUND`].
const NO_POLL: &[&str] = &["--store-poll-ms", "60000"];

/// A fresh cluster and database, or `None` when the test is skipped.
fn database(test: &str) -> Option<(PgCluster, String)> {
    let cluster = PgCluster::start_or_skip(test)?;
    let url = cluster.create_database("tessera");
    Some((cluster, url))
}

fn replica(url: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--issuer", ISSUER];
    args.extend_from_slice(extra);
    Server::builder()
        .store(Arc::new(tempfile::tempdir().unwrap()), url.to_owned())
        .args(&args)
        .start()
}

async fn revoke(server: &Server, caller: (&str, &str), token: &str) -> Exchange {
    server
        .form("/oauth2/revoke")
        .basic(caller.0, caller.1)
        .body(format!("token={token}").into_bytes())
        .send()
        .await
}

#[tokio::test]
async fn a_token_issued_by_one_replica_is_active_at_another() {
    let Some((_cluster, url)) = database("a_token_issued_by_one_replica_is_active_at_another") else {
        return;
    };
    let (a, b) = (replica(&url, NO_POLL), replica(&url, NO_POLL));
    let secret = a.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let token = a.issued("svc", &secret).await;
    let exchange = b.introspect(("svc", &secret), &token).await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert_eq!(exchange.json()["active"], true, "{exchange}");
    assert_eq!(exchange.json()["iss"], ISSUER, "{exchange}");
}

#[tokio::test]
async fn a_client_registered_while_replicas_run_gets_a_token_from_any_of_them_at_once() {
    let Some((_cluster, url)) =
        database("a_client_registered_while_replicas_run_gets_a_token_from_any_of_them_at_once")
    else {
        return;
    };
    let (a, b) = (replica(&url, NO_POLL), replica(&url, NO_POLL));
    let secret = a.create_client("fresh", &["--scope", "read"]);
    // No waiting: a client missing from the hot copies is read from the store.
    for server in [&a, &b] {
        let exchange = server.grant("fresh", &secret).await;
        assert_eq!(exchange.status, 200, "{exchange}");
    }
}

#[tokio::test]
async fn a_revocation_is_in_force_at_once_where_made_and_within_2s_at_other_replicas_rfc7009_2() {
    let Some((_cluster, url)) =
        database("a_revocation_is_in_force_at_once_where_made_and_within_2s_at_other_replicas_rfc7009_2")
    else {
        return;
    };
    let (a, b, c) = (replica(&url, NO_POLL), replica(&url, NO_POLL), replica(&url, NO_POLL));
    let secret = a.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let caller = ("svc", secret.as_str());
    let token = a.issued("svc", &secret).await;
    // Both others verify (and cache) it first, so a stale cache would show.
    assert!(b.is_active(caller, &token).await);
    assert!(c.is_active(caller, &token).await);
    let exchange = revoke(&a, caller, &token).await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert!(!a.is_active(caller, &token).await, "inactive at once where revoked");
    let started = Instant::now();
    for other in [&b, &c] {
        assert!(
            eventually(BOUND, async || !other.is_active(caller, &token).await).await,
            "still active at {} {:?} after the revocation",
            other.url(),
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_client_disabled_while_replicas_run_is_refused_by_all_within_2s() {
    let Some((_cluster, url)) = database("a_client_disabled_while_replicas_run_is_refused_by_all_within_2s") else {
        return;
    };
    let (a, b) = (replica(&url, NO_POLL), replica(&url, NO_POLL));
    let secret = a.create_client("svc", &["--scope", "read"]);
    // Warm: each replica has verified the secret and remembers it.
    for server in [&a, &b] {
        server.issued("svc", &secret).await;
    }
    assert!(a.cli(&["client", "disable", "svc"]).status.success());
    for server in [&a, &b] {
        assert!(
            eventually(BOUND, async || server.grant("svc", &secret).await.status == 401).await,
            "{} still issues to a disabled client",
            server.url()
        );
        server.grant("svc", &secret).await.assert_error(401, "invalid_client");
    }
}

#[tokio::test]
async fn a_secret_rotation_reaches_every_replica_within_2s() {
    let Some((_cluster, url)) = database("a_secret_rotation_reaches_every_replica_within_2s") else {
        return;
    };
    let (a, b) = (replica(&url, NO_POLL), replica(&url, NO_POLL));
    let old = a.create_client("svc", &["--scope", "read"]);
    for server in [&a, &b] {
        server.issued("svc", &old).await;
    }
    let out = a.cli(&["client", "rotate-secret", "svc", "--keep-old-for", "0", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = rotated["client_secret"].as_str().unwrap();
    for server in [&a, &b] {
        assert!(
            eventually(BOUND, async || server.grant("svc", &old).await.status == 401).await,
            "{} still accepts the retired secret",
            server.url()
        );
        server.issued("svc", new).await;
    }
}

#[tokio::test]
async fn a_key_rotation_reaches_every_replica_within_2s() {
    let Some((_cluster, url)) = database("a_key_rotation_reaches_every_replica_within_2s") else {
        return;
    };
    let (a, b) = (replica(&url, NO_POLL), replica(&url, NO_POLL));
    let secret = a.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let kids = |server: &Server| {
        let url = format!("{}/.well-known/jwks.json", server.url());
        async move {
            let jwks: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let before = kids(&a).await;
    let out = a.cli(&["keys", "rotate", "--publish-ahead", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for server in [&a, &b] {
        assert!(
            eventually(BOUND, async || kids(server).await.len() == 2).await,
            "{} does not publish the new key: {:?}",
            server.url(),
            kids(server).await
        );
    }
    // The newest key signs at every replica, and each verifies the other's tokens.
    let new_kid = kids(&a).await.into_iter().find(|k| !before.contains(k)).unwrap();
    for (signer, verifier) in [(&a, &b), (&b, &a)] {
        let token = signer.issued("svc", &secret).await;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()), "signed with the new key");
        assert!(verifier.is_active(("svc", &secret), &token).await);
    }
}

#[tokio::test]
async fn a_replayed_assertion_is_refused_by_every_other_replica_rfc7523_3() {
    let Some((_cluster, url)) = database("a_replayed_assertion_is_refused_by_every_other_replica_rfc7523_3") else {
        return;
    };
    let (a, b, c) = (replica(&url, &[]), replica(&url, &[]), replica(&url, &[]));
    a.create_client("signer", &["--scope", "read"]);
    let key: ClientKey = register_key(&a, "signer", "k1", KeyAlgorithm::Es256);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = key.sign(&json!({
        "iss": "signer", "sub": "signer", "aud": ISSUER,
        "iat": now, "exp": now + 60, "jti": "once-only",
    }));
    let body = format!(
        "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion={assertion}"
    );
    // All three at once: exactly one may win.
    let (ra, rb, rc) = tokio::join!(
        a.token_form(&body).send(),
        b.token_form(&body).send(),
        c.token_form(&body).send()
    );
    let answers = [ra, rb, rc];
    let accepted = answers.iter().filter(|e| e.status == 200).count();
    assert_eq!(
        accepted, 1,
        "one acceptance across replicas:\n{}\n{}\n{}",
        answers[0], answers[1], answers[2]
    );
    for refused in answers.iter().filter(|e| e.status != 200) {
        refused.assert_error(401, "invalid_client");
    }
}

#[tokio::test]
async fn three_replicas_starting_together_on_an_empty_database_create_exactly_one_signing_key() {
    let Some((_cluster, url)) =
        database("three_replicas_starting_together_on_an_empty_database_create_exactly_one_signing_key")
    else {
        return;
    };
    let starting: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || replica(&url, &[]))
        })
        .collect();
    let replicas: Vec<Server> = starting.into_iter().map(|t| t.join().unwrap()).collect();
    let out = replicas[0].cli(&["keys", "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1, "one key in the store: {keys}");
    let mut published = Vec::new();
    for server in &replicas {
        let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", server.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        published.push(jwks["keys"].clone());
    }
    assert!(
        published.iter().all(|k| k == &published[0]),
        "every replica publishes the same one key: {published:?}"
    );
}

#[tokio::test]
async fn a_database_outage_is_served_from_memory_then_refused_honestly_then_recovered() {
    let Some((cluster, url)) = database("a_database_outage_is_served_from_memory_then_refused_honestly_then_recovered")
    else {
        return;
    };
    let server = replica(&url, &["--store-staleness", "3", "--store-poll-ms", "200"]);
    let secret = server.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let caller = ("svc", secret.as_str());
    let before = server.issued("svc", &secret).await;
    assert!(server.is_active(caller, &before).await);
    let ready = async || server.http("GET", "/health/ready").send().await;
    assert_eq!(ready().await.json()["store"], "reachable");

    let grpc_health = async || {
        let channel = tonic::transport::Channel::from_shared(server.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: "tessera.v1.TokenService".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    assert_eq!(grpc_health().await, ServingStatus::Serving);

    cluster.stop();
    assert!(
        eventually(Duration::from_secs(5), async || ready().await.json()["store"]
            == "unreachable")
        .await,
        "readiness does not report the outage: {}",
        ready().await
    );
    assert_eq!(ready().await.status, 200, "still ready within the staleness window");
    assert_eq!(
        server.http("GET", "/health/live").send().await.status,
        200,
        "liveness ignores the store"
    );
    // Within the window: served from memory.
    server.issued("svc", &secret).await;
    assert!(
        server.is_active(caller, &before).await,
        "never inactive because of an outage"
    );
    // Writes and cache misses cannot be answered truthfully: 503, never a refusal.
    revoke(&server, caller, &before)
        .await
        .assert_error(503, "temporarily_unavailable");
    server
        .grant("never-seen", "whatever")
        .await
        .assert_error(503, "temporarily_unavailable");

    // Past the window: issuance and introspection refuse too, on both faces.
    assert!(
        eventually(Duration::from_secs(10), async || ready().await.status == 503).await,
        "readiness never turned 503: {}",
        ready().await
    );
    assert!(
        eventually(Duration::from_secs(2), async || grpc_health().await
            == ServingStatus::NotServing)
        .await,
        "gRPC health stays SERVING with the store stale"
    );
    server
        .grant("svc", &secret)
        .await
        .assert_error(503, "temporarily_unavailable");
    server
        .introspect(caller, &before)
        .await
        .assert_error(503, "temporarily_unavailable");
    let status = server
        .grpc()
        .await
        .issue_token(issue_request("svc", &secret))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(grpc_oauth_error(&status), "temporarily_unavailable");

    cluster.restart();
    assert!(
        eventually(Duration::from_secs(15), async || server
            .grant("svc", &secret)
            .await
            .status
            == 200)
        .await,
        "no recovery without a restart: {}",
        server.grant("svc", &secret).await
    );
    assert_eq!(ready().await.status, 200);
    assert!(
        eventually(Duration::from_secs(2), async || grpc_health().await
            == ServingStatus::Serving)
        .await,
        "gRPC health stays NOT_SERVING after recovery"
    );
    let exchange = revoke(&server, caller, &before).await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert!(!server.is_active(caller, &before).await);
    assert!(
        eventually(Duration::from_secs(2), async || server
            .stderr()
            .contains("store reachable again"))
        .await,
        "{}",
        server.stderr()
    );
}

/// Repeated `kill -9` of a replica in the middle of revocations, and of the
/// CLI in the middle of registrations: every write that was acknowledged
/// (a 200, an exit status 0) is there afterwards. `TESSERA_CRASH_ITERATIONS`
/// sets the number of rounds (default 12); thousands make a long run.
#[tokio::test]
async fn every_acknowledged_write_survives_repeated_kill_9() {
    let Some((_cluster, url)) = database("every_acknowledged_write_survives_repeated_kill_9") else {
        return;
    };
    let rounds: u64 = std::env::var("TESSERA_CRASH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let setup = replica(&url, &[]);
    let secret = setup.create_client("owner", &["--scope", "read", "--scope", "tessera:introspect"]);
    drop(setup);
    let caller = ("owner", secret.as_str());
    let (mut revoked, mut registered, mut unacknowledged) = (Vec::new(), Vec::new(), 0);
    for round in 0..rounds {
        let server = replica(&url, &[]);
        let mut tokens = Vec::new();
        for _ in 0..8 {
            tokens.push(server.issued("owner", &secret).await);
        }
        let revocations: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let request = server
                    .form("/oauth2/revoke")
                    .basic("owner", &secret)
                    .body(format!("token={token}").into_bytes());
                tokio::spawn(async move { (token, request.try_send().await.map(|e| e.status).ok()) })
            })
            .collect();
        let client_id = format!("crash-{round}");
        let mut registration = Command::new(support::tessera_bin())
            .args(["client", "create", &client_id, "--scope", "read", "--json"])
            .env("TESSERA_STORE", &url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A different moment each round, from before the first write to after the last.
        tokio::time::sleep(Duration::from_millis(round * 37 % 300)).await;
        server.kill();
        let cli_exited = registration.try_wait().unwrap();
        let _ = registration.kill();
        let cli_output = registration.wait_with_output().unwrap();
        for task in revocations {
            match task.await.unwrap() {
                (token, Some(200)) => revoked.push(token),
                _ => unacknowledged += 1,
            }
        }
        if cli_exited.is_some_and(|status| status.success()) {
            let json: serde_json::Value = serde_json::from_slice(&cli_output.stdout).unwrap();
            registered.push((client_id, json["client_secret"].as_str().unwrap().to_owned()));
        }
    }
    eprintln!(
        "{rounds} rounds: {} revocations and {} registrations acknowledged, {unacknowledged} revocations cut off",
        revoked.len(),
        registered.len()
    );
    assert!(
        !revoked.is_empty(),
        "no revocation was ever acknowledged: the test proved nothing"
    );
    let check = replica(&url, &[]);
    for token in &revoked {
        assert!(
            !check.is_active(caller, token).await,
            "an acknowledged revocation was lost"
        );
    }
    for (id, secret) in &registered {
        let exchange = check.grant(id, secret).await;
        assert_eq!(exchange.status, 200, "acknowledged client {id} lost\n{exchange}");
    }
}

//! End to end: private_key_jwt on both faces, secret rotation with the CLI,
//! and throttling of repeated failures, against real `tessera` processes.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{ClientKey, Server, eventually, grpc_oauth_error, issue_request, register_key};
use tessera_proto::pb;
use tessera_server::keys::KeyAlgorithm;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(server: &Server, client_id: &str) -> Value {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    json!({"iss": client_id, "sub": client_id, "aud": server.url(), "exp": now() + 60, "iat": now(), "jti": format!("e2e-{}-{n}", now())})
}

async fn http_assertion(server: &Server, assertion: &str) -> support::Exchange {
    server
        .token_form(&format!(
            "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
        ))
        .send()
        .await
}

fn grpc_assertion(client_id: &str, assertion: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        grant_type: String::new(),
        client_id: client_id.into(),
        credential: Some(pb::issue_token_request::Credential::ClientAssertion(
            pb::ClientAssertion {
                assertion_type: JWT_BEARER.into(),
                assertion: assertion.into(),
            },
        )),
        scopes: vec![],
        audiences: vec![],
    }
}

#[tokio::test]
async fn a_signed_assertion_gets_a_token_over_http_and_grpc_rfc7523_2_2() {
    let server = Server::start();
    server.create_client("svc", &["--scope", "read"]);
    let key = register_key(&server, "svc", "k1", KeyAlgorithm::Es256);
    let exchange = http_assertion(&server, &key.sign(&claims(&server, "svc"))).await;
    assert_eq!(exchange.status, 200, "{exchange}");
    let claims_out = support::verify_with_http_jwks(&server, exchange.json()["access_token"].as_str().unwrap()).await;
    assert_eq!(claims_out["client_id"], "svc");
    let mut grpc = server.grpc().await;
    let response = grpc
        .issue_token(grpc_assertion("svc", &key.sign(&claims(&server, "svc"))))
        .await
        .expect("IssueToken");
    assert_eq!(response.get_ref().scopes, ["read"]);
}

#[tokio::test]
async fn every_bad_assertion_is_invalid_client_on_both_faces_threats_c() {
    let server = Server::builder().args(&["--failure-limit", "0"]).start();
    server.create_client("svc", &["--scope", "read"]);
    let key = register_key(&server, "svc", "k1", KeyAlgorithm::Es256);
    let unregistered = ClientKey::unregistered("k1", KeyAlgorithm::Es256);
    let other_alg = ClientKey::unregistered("k1", KeyAlgorithm::EdDsa);
    let replayed = key.sign(&claims(&server, "svc"));
    assert_eq!(http_assertion(&server, &replayed).await.status, 200, "first use");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&server, "svc");
        change(&mut c);
        key.sign(&c)
    };
    let cases: Vec<(&str, String)> = vec![
        ("replayed jti", replayed.clone()),
        ("wrong aud", with(&|c| c["aud"] = json!("https://someone-else.test"))),
        ("expired", with(&|c| c["exp"] = json!(now() - 3600))),
        ("too long-lived", with(&|c| c["exp"] = json!(now() + 86_400))),
        ("wrong algorithm", other_alg.sign(&claims(&server, "svc"))),
        ("unregistered key", unregistered.sign(&claims(&server, "svc"))),
        ("not a JWT", "not.a.jwt".to_owned()),
    ];
    let mut grpc = server.grpc().await;
    for (what, assertion) in cases {
        http_assertion(&server, &assertion)
            .await
            .assert_error(401, "invalid_client");
        let status = grpc.issue_token(grpc_assertion("svc", &assertion)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{what}: {status:?}");
        assert_eq!(grpc_oauth_error(&status), "invalid_client", "{what}");
    }
}

#[tokio::test]
async fn rotate_secret_keeps_the_old_secret_for_the_overlap_then_only_the_new_works() {
    let server = Server::start();
    let old = server.create_client("svc", &["--scope", "read"]);
    let out = server.cli(&["client", "rotate-secret", "svc", "--keep-old-for", "1h", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["client_id"], "svc");
    let new = json["client_secret"].as_str().unwrap().to_owned();
    let mut grpc = server.grpc().await;
    grpc.issue_token(issue_request("svc", &new))
        .await
        .expect("the new secret works at once");
    grpc.issue_token(issue_request("svc", &old))
        .await
        .expect("the old secret works during the overlap");

    let out = server.cli(&["client", "rotate-secret", "svc", "--keep-old-for", "0", "--json"]);
    let newest = serde_json::from_slice::<Value>(&out.stdout).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let retired = eventually(Duration::from_secs(2), async || {
        grpc.issue_token(issue_request("svc", &old)).await.is_err()
            && grpc.issue_token(issue_request("svc", &new)).await.is_err()
    })
    .await;
    assert!(retired, "secrets retired with --keep-old-for 0 still work 2 s later");
    grpc.issue_token(issue_request("svc", &newest))
        .await
        .expect("the newest secret works");
    let shown = String::from_utf8_lossy(&server.cli(&["client", "show", "svc"]).stdout).into_owned();
    assert!(
        !shown.contains(&newest) && !shown.contains(&old),
        "client show must never print a secret:\n{shown}"
    );
    assert_eq!(shown.matches("secret:").count(), 3, "{shown}");
}

/// docs/THREATS.md, row B-05: client ids are not secret, so whoever knows one must not be
/// able to lock its client out. 50 wrong secrets for X on both faces, then
/// X's correct secret, never seen by this server, is served at once.
#[tokio::test]
async fn wrong_secrets_for_a_client_never_lock_out_its_correct_secret_on_either_face() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let mut grpc = server.grpc().await;
    for _ in 0..25 {
        server
            .token_form("grant_type=client_credentials")
            .basic("svc", "guess")
            .send()
            .await
            .assert_error(401, "invalid_client");
        let status = grpc.issue_token(issue_request("svc", "guess")).await.unwrap_err();
        assert_eq!(grpc_oauth_error(&status), "invalid_client", "{status:?}");
    }
    let cold = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(cold.status, 200, "{cold}");
    let warm = grpc.issue_token(issue_request("svc", &secret)).await;
    assert!(warm.is_ok(), "{warm:?}");
}

/// A shared source address (a NAT, an egress proxy) full of failures:
/// 150 unknown client ids, then a never-seen client's correct secret from
/// the same address is served.
#[tokio::test]
async fn failures_from_a_shared_address_never_refuse_a_correct_secret_from_it() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    for i in 0..150 {
        server
            .token_form(&format!(
                "grant_type=client_credentials&client_id=nobody-{i}&client_secret=x"
            ))
            .send()
            .await
            .assert_error(401, "invalid_client");
    }
    let cold = server
        .token_form(&format!(
            "grant_type=client_credentials&client_id=svc&client_secret={secret}"
        ))
        .send()
        .await;
    assert_eq!(cold.status, 200, "{cold}");
}

/// The same for private_key_jwt: 50 assertions with bad signatures naming the
/// client, then its good assertion is accepted.
#[tokio::test]
async fn bad_assertion_signatures_never_lock_out_a_good_assertion() {
    let server = Server::start();
    server.create_client("svc", &["--scope", "read"]);
    let key = register_key(&server, "svc", "k1", KeyAlgorithm::Es256);
    let forger = ClientKey::unregistered("k1", KeyAlgorithm::Es256);
    for _ in 0..50 {
        let forged = forger.sign(&claims(&server, "svc"));
        http_assertion(&server, &forged)
            .await
            .assert_error(401, "invalid_client");
    }
    let answer = http_assertion(&server, &key.sign(&claims(&server, "svc"))).await;
    assert_eq!(answer.status, 200, "{answer}");
}

/// authlib and most libraries sign assertions that live an hour: accepted by
/// default, and refused past `--max-assertion-lifetime`.
#[tokio::test]
async fn an_assertion_living_an_hour_is_accepted_and_the_limit_is_configurable() {
    let hour = |server: &Server, id: &str| {
        let mut claims = claims(server, id);
        claims["exp"] = json!(now() + 3600);
        claims
    };
    let server = Server::start();
    server.create_client("svc", &["--scope", "read"]);
    let key = register_key(&server, "svc", "k1", KeyAlgorithm::Es256);
    let answer = http_assertion(&server, &key.sign(&hour(&server, "svc"))).await;
    assert_eq!(answer.status, 200, "{answer}");
    let strict = Server::builder().args(&["--max-assertion-lifetime", "300"]).start();
    strict.create_client("svc", &["--scope", "read"]);
    let key = register_key(&strict, "svc", "k1", KeyAlgorithm::Es256);
    http_assertion(&strict, &key.sign(&hour(&strict, "svc")))
        .await
        .assert_error(401, "invalid_client");
}

#[tokio::test]
async fn metadata_advertises_private_key_jwt_and_its_algorithms() {
    let server = Server::start();
    let json = server
        .http("GET", "/.well-known/oauth-authorization-server")
        .send()
        .await
        .json();
    assert!(
        json["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert_eq!(
        json["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256"])
    );
}

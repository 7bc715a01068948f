//! End to end: a real `tessera` process, clients registered with the real CLI,
//! tokens fetched over HTTP (Basic and post) and gRPC (raw and through the
//! SDK), each verified against the JWKS the server publishes.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]
mod support;

use std::time::Duration;

use support::{Server, eventually, grpc_oauth_error, issue_request, verify_with_http_jwks};
use tessera_proto::pb;

#[tokio::test]
async fn http_client_secret_basic_gets_a_token_that_verifies_against_the_jwks_rfc6749_4_4() {
    let server = Server::start();
    let secret = server.create_client("billing", &["--scope", "invoices:read", "--audience", "https://ledger"]);
    let exchange = server
        .token_form("grant_type=client_credentials")
        .basic("billing", &secret)
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
    let json = exchange.json();
    assert_eq!(json["token_type"], "Bearer", "{exchange}");
    assert_eq!(json["expires_in"], 3600, "{exchange}");
    assert_eq!(json["scope"], "invoices:read", "{exchange}");
    assert!(
        json.get("refresh_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token\n{exchange}"
    );
    let claims = verify_with_http_jwks(&server, json["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "billing");
    assert_eq!(claims["client_id"], "billing");
    assert_eq!(claims["aud"], "https://ledger");
    assert_eq!(claims["scope"], "invoices:read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
}

#[tokio::test]
async fn http_client_secret_post_gets_a_token_that_verifies_against_the_jwks() {
    let server = Server::start();
    let secret = server.create_client("billing", &["--scope", "a", "--scope", "b"]);
    let body = format!("grant_type=client_credentials&client_id=billing&client_secret={secret}&scope=b");
    let exchange = server.token_form(&body).send().await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert_eq!(exchange.json()["scope"], "b", "{exchange}");
    let claims = verify_with_http_jwks(&server, exchange.json()["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["scope"], "b");
    assert_eq!(
        claims["aud"],
        server.url(),
        "no registered audience: the token is for Tessera itself"
    );
}

#[tokio::test]
async fn token_answers_are_never_cached_rfc6749_5_1() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "a"]);
    let exchange = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert_eq!(exchange.header("content-type"), Some("application/json"), "{exchange}");
    assert_eq!(exchange.header("cache-control"), Some("no-store"), "{exchange}");
    assert_eq!(exchange.header("pragma"), Some("no-cache"), "{exchange}");
}

#[tokio::test]
async fn grpc_issue_token_returns_a_token_that_verifies_against_grpc_get_jwks() {
    let server = Server::start();
    let secret = server.create_client(
        "svc",
        &[
            "--scope",
            "a",
            "--scope",
            "b",
            "--audience",
            "https://x",
            "--ttl",
            "120",
        ],
    );
    let mut grpc = server.grpc().await;
    let mut request = issue_request("svc", &secret);
    request.scopes = vec!["a".into()];
    let response = grpc.issue_token(request).await.expect("IssueToken").into_inner();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, 120);
    assert_eq!(response.scopes, ["a"]);
    assert_eq!(response.audiences, ["https://x"]);

    let keys = grpc
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("GetJwks")
        .into_inner()
        .keys;
    let header = jsonwebtoken::decode_header(&response.access_token).unwrap();
    let jwk = keys
        .iter()
        .find(|k| Some(&k.kid) == header.kid.as_ref())
        .expect("kid published over gRPC");
    assert_eq!(
        (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str()),
        ("EC", "P-256", "ES256")
    );
    let key = jsonwebtoken::DecodingKey::from_ec_components(&jwk.x, &jwk.y).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://x"]);
    validation.set_issuer(&[server.url()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&response.access_token, &key, &validation)
        .expect("token verifies with the gRPC JWKS")
        .claims;
    assert_eq!(claims["scope"], "a");
}

#[tokio::test]
async fn the_sdk_gets_a_token_and_reports_refusals_with_their_oauth_code() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "a"]);
    let client = tessera_sdk::TokenClient::builder(server.url())
        .client_secret("svc", &secret)
        .build()
        .unwrap();
    let token = client
        .issue_token(&tessera_sdk::TokenRequest::new().scope("a"))
        .await
        .expect("a token");
    assert_eq!(token.scopes(), ["a"]);
    assert_eq!(token.expires_in(), Duration::from_secs(3600));
    verify_with_http_jwks(&server, token.access_token().expose()).await;

    let refused = client
        .issue_token(&tessera_sdk::TokenRequest::new().scope("admin"))
        .await
        .unwrap_err();
    assert_eq!(refused.oauth_error(), Some("invalid_scope"), "{refused:?}");
    assert_eq!(client.jwks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn metadata_names_the_endpoints_and_methods_rfc8414() {
    let server = Server::start();
    let exchange = server
        .http("GET", "/.well-known/oauth-authorization-server")
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
    let json = exchange.json();
    let url = server.url();
    assert_eq!(json["issuer"], url, "{exchange}");
    assert_eq!(json["token_endpoint"], format!("{url}/oauth2/token"), "{exchange}");
    assert_eq!(json["jwks_uri"], format!("{url}/.well-known/jwks.json"), "{exchange}");
    assert_eq!(
        json["grant_types_supported"],
        serde_json::json!(["client_credentials"]),
        "{exchange}"
    );
    assert_eq!(
        json["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"]),
        "{exchange}"
    );
}

#[tokio::test]
async fn a_restart_keeps_the_signing_key_and_earlier_tokens_still_verify() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "a"]);
    let first = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    let token = first.json()["access_token"].as_str().expect("token").to_owned();
    let kid_before = jsonwebtoken::decode_header(&token).unwrap().kid;
    let (dir, store) = server.kill();

    let restarted = Server::builder().store(dir, store).args(&[]).start();
    // The issuer is the bound address, which changed with port 0: compare keys, not issuers.
    let jwks = restarted.http("GET", "/.well-known/jwks.json").send().await.json();
    assert_eq!(
        jwks["keys"][0]["kid"].as_str(),
        kid_before.as_deref(),
        "same kid after restart"
    );
    let again = restarted
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(again.status, 200, "the client survived the kill -9\n{again}");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&set.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).expect("the earlier token still verifies");
}

#[tokio::test]
async fn a_client_created_with_the_cli_while_the_server_runs_gets_a_token_at_once() {
    let server = Server::start();
    let mut grpc = server.grpc().await;
    let before = grpc.issue_token(issue_request("late", "nothing")).await.unwrap_err();
    assert_eq!(grpc_oauth_error(&before), "invalid_client");
    let secret = server.create_client("late", &["--scope", "a"]);
    grpc.issue_token(issue_request("late", &secret))
        .await
        .expect("no restart, no wait");
}

#[tokio::test]
async fn a_cli_disable_takes_effect_in_the_running_server_within_two_seconds() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "a"]);
    let mut grpc = server.grpc().await;
    grpc.issue_token(issue_request("svc", &secret))
        .await
        .expect("enabled client gets a token");
    let out = server.cli(&["client", "disable", "svc"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = eventually(Duration::from_secs(2), async || {
        matches!(grpc.issue_token(issue_request("svc", &secret)).await, Err(s) if grpc_oauth_error(&s) == "invalid_client")
    })
    .await;
    assert!(refused, "still issuing 2 s after `client disable`");
    assert!(server.cli(&["client", "enable", "svc"]).status.success());
    let back = eventually(Duration::from_secs(2), async || {
        grpc.issue_token(issue_request("svc", &secret)).await.is_ok()
    })
    .await;
    assert!(back, "not issuing 2 s after `client enable`");
}

#[tokio::test]
async fn a_cli_delete_takes_effect_in_the_running_server_within_two_seconds() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "a"]);
    let mut grpc = server.grpc().await;
    grpc.issue_token(issue_request("svc", &secret))
        .await
        .expect("token before delete");
    assert!(server.cli(&["client", "delete", "svc"]).status.success());
    let refused = eventually(Duration::from_secs(2), async || {
        grpc.issue_token(issue_request("svc", &secret)).await.is_err()
    })
    .await;
    assert!(refused, "still issuing 2 s after `client delete`");
}

#[tokio::test]
async fn demo_mode_prints_a_curl_line_that_gets_a_token() {
    let server = Server::builder().args(&["--demo"]).start();
    let stdout = server.stdout();
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .unwrap_or_else(|| panic!("no curl line:\n{stdout}"));
    let body = line
        .split("-d \"")
        .nth(1)
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("-d \"BODY\"");
    let exchange = server.token_form(body).send().await;
    assert_eq!(exchange.status, 200, "{exchange}");
    // And with the real curl, exactly as printed, where curl is installed.
    let output = std::process::Command::new("sh").arg("-c").arg(line.trim()).output();
    if let Ok(output) = output
        && output.status.code() != Some(127)
    {
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("curl printed: {}", String::from_utf8_lossy(&output.stdout)));
        assert!(printed["access_token"].is_string(), "{printed}");
    }
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "a"]);
    let ok = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    let token = ok.json()["access_token"].as_str().unwrap().to_owned();
    let _wrong = server
        .token_form("grant_type=client_credentials")
        .basic("svc", "wrong-secret-xyz")
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = server.stderr();
    assert!(logs.contains("token_issued"), "the issuance is audited:\n{logs}");
    for needle in [secret.as_str(), token.as_str(), "wrong-secret-xyz"] {
        assert!(!logs.contains(needle), "a secret or token reached the log:\n{logs}");
    }
}

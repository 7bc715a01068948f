//! End to end: introspection (RFC 7662), revocation (RFC 7009) and signing-key
//! rotation, on both faces, against real `tessera` processes.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]
mod support;

use std::time::Duration;

use support::{Server, eventually, grpc_oauth_error, verify_with_http_jwks};
use tessera_proto::pb;
use tonic::Request;

/// A server with a resource server `rs` (may introspect) and a service `svc`.
fn setup() -> (Server, String, String) {
    let server = Server::start();
    let rs = server.create_client("rs", &["--scope", "tessera:introspect"]);
    let svc = server.create_client("svc", &["--scope", "read", "--audience", "https://api"]);
    (server, rs, svc)
}

async fn http_token(server: &Server, id: &str, secret: &str) -> String {
    let exchange = server
        .token_form("grant_type=client_credentials")
        .basic(id, secret)
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
    exchange.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn http_introspect(server: &Server, rs: &str, token: &str) -> support::Exchange {
    server
        .form("/oauth2/introspect")
        .basic("rs", rs)
        .body(format!("token={token}").into_bytes())
        .send()
        .await
}

fn with_basic<T>(message: T, id: &str, secret: &str) -> Request<T> {
    let mut request = Request::new(message);
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{id}:{secret}"));
    request.metadata_mut().insert(
        "authorization",
        format!("Basic {basic}").parse().expect("metadata value"),
    );
    request
}

fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata value"),
    );
    request
}

fn introspect_message(token: &str) -> pb::IntrospectTokenRequest {
    pb::IntrospectTokenRequest {
        token: token.into(),
        token_type_hint: String::new(),
    }
}

async fn grpc_active(server: &Server, rs: &str, token: &str) -> pb::IntrospectTokenResponse {
    let mut grpc = server.grpc().await;
    grpc.introspect_token(with_basic(introspect_message(token), "rs", rs))
        .await
        .expect("IntrospectToken")
        .into_inner()
}

#[tokio::test]
async fn a_valid_token_introspects_active_with_its_claims_over_http_rfc7662_2_2() {
    let (server, rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let exchange = http_introspect(&server, &rs, &token).await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert_eq!(exchange.header("cache-control"), Some("no-store"), "{exchange}");
    let json = exchange.json();
    assert_eq!(json["active"], true, "{exchange}");
    assert_eq!(json["client_id"], "svc", "{exchange}");
    assert_eq!(json["sub"], "svc", "{exchange}");
    assert_eq!(json["scope"], "read", "{exchange}");
    assert_eq!(json["aud"], "https://api", "{exchange}");
    assert_eq!(json["iss"], server.url(), "{exchange}");
    assert_eq!(json["token_type"], "Bearer", "{exchange}");
    for member in ["exp", "iat", "nbf"] {
        assert!(json[member].is_i64(), "{member}\n{exchange}");
    }
    let claims = verify_with_http_jwks(&server, &token).await;
    assert_eq!(json["jti"], claims["jti"], "{exchange}");
}

#[tokio::test]
async fn a_valid_token_introspects_active_over_grpc_with_basic_or_bearer_metadata() {
    let (server, rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let answer = grpc_active(&server, &rs, &token).await;
    assert!(answer.active);
    assert_eq!((answer.client_id.as_str(), answer.scope.as_str()), ("svc", "read"));
    assert_eq!(answer.aud, ["https://api"]);
    let rs_token = http_token(&server, "rs", &rs).await;
    let mut grpc = server.grpc().await;
    let by_bearer = grpc
        .introspect_token(with_bearer(introspect_message(&token), &rs_token))
        .await
        .unwrap();
    assert!(by_bearer.get_ref().active);
}

#[tokio::test]
async fn anything_but_a_valid_token_is_exactly_active_false_on_both_faces_threats_e_02() {
    let (server, rs, svc) = setup();
    let good = http_token(&server, "svc", &svc).await;
    let (body, signature) = good.rsplit_once('.').unwrap();
    let mut flipped = signature.to_owned().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{body}.{}", String::from_utf8(flipped).unwrap());
    let megabyte = "a".repeat(12 * 1024);
    for token in ["garbage", "a.b.c", tampered.as_str(), megabyte.as_str()] {
        let exchange = http_introspect(&server, &rs, token).await;
        assert_eq!(exchange.status, 200, "{exchange}");
        assert_eq!(exchange.body, r#"{"active":false}"#, "{exchange}");
        assert_eq!(
            grpc_active(&server, &rs, token).await,
            pb::IntrospectTokenResponse::default(),
            "{token:.40}"
        );
    }
}

#[tokio::test]
async fn introspection_without_caller_authentication_is_refused_on_both_faces_threats_e_01() {
    let (server, _rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let exchange = server
        .form("/oauth2/introspect")
        .body(format!("token={token}").into_bytes())
        .send()
        .await;
    exchange.assert_error(401, "invalid_client");
    let mut grpc = server.grpc().await;
    let status = grpc.introspect_token(introspect_message(&token)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert_eq!(grpc_oauth_error(&status), "invalid_client");
}

#[tokio::test]
async fn introspection_by_a_client_without_the_introspect_scope_is_refused() {
    let (server, _rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let exchange = server
        .form("/oauth2/introspect")
        .basic("svc", &svc)
        .body(format!("token={token}").into_bytes())
        .send()
        .await;
    exchange.assert_error(400, "unauthorized_client");
    let mut grpc = server.grpc().await;
    let status = grpc
        .introspect_token(with_basic(introspect_message(&token), "svc", &svc))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
}

#[tokio::test]
async fn the_token_parameter_is_required_once_and_a_wrong_hint_still_resolves_rfc7662_2_1() {
    let (server, rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let form = |body: String| {
        server
            .form("/oauth2/introspect")
            .basic("rs", &rs)
            .body(body.into_bytes())
    };
    form(String::new()).send().await.assert_error(400, "invalid_request");
    form(format!("token={token}&token={token}"))
        .send()
        .await
        .assert_error(400, "invalid_request");
    let hinted = form(format!("token={token}&token_type_hint=refresh_token"))
        .send()
        .await;
    assert_eq!(hinted.json()["active"], true, "{hinted}");
}

#[tokio::test]
async fn a_revoked_token_is_inactive_on_both_faces_at_once_rfc7009_2() {
    let (server, rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let revoke = server
        .form("/oauth2/revoke")
        .basic("svc", &svc)
        .body(format!("token={token}&token_type_hint=access_token").into_bytes())
        .send()
        .await;
    assert_eq!(revoke.status, 200, "{revoke}");
    assert_eq!(http_introspect(&server, &rs, &token).await.body, r#"{"active":false}"#);
    assert!(!grpc_active(&server, &rs, &token).await.active);
}

#[tokio::test]
async fn a_revocation_acknowledged_over_grpc_survives_kill_9_threats_e_06() {
    // A fixed issuer, so tokens stay valid across the restart on a new port.
    let issuer = "https://tessera.test";
    let server = Server::builder().args(&["--issuer", issuer]).start();
    let rs = server.create_client("rs", &["--scope", "tessera:introspect"]);
    let svc = server.create_client("svc", &["--scope", "read"]);
    let revoked = http_token(&server, "svc", &svc).await;
    let control = http_token(&server, "svc", &svc).await;
    let mut grpc = server.grpc().await;
    let revoke = pb::RevokeTokenRequest {
        token: revoked.clone(),
        token_type_hint: String::new(),
    };
    grpc.revoke_token(with_basic(revoke, "svc", &svc))
        .await
        .expect("RevokeToken");
    let (dir, store) = server.kill(); // SIGKILL right after the acknowledgement
    let restarted = Server::builder().store(dir, store).args(&["--issuer", issuer]).start();
    assert!(
        !grpc_active(&restarted, &rs, &revoked).await.active,
        "an acknowledged revocation was lost"
    );
    assert!(
        grpc_active(&restarted, &rs, &control).await.active,
        "the control token must stay active"
    );
}

#[tokio::test]
async fn revocation_without_caller_authentication_is_refused_on_both_faces() {
    let (server, rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let exchange = server
        .form("/oauth2/revoke")
        .body(format!("token={token}").into_bytes())
        .send()
        .await;
    exchange.assert_error(401, "invalid_client");
    let mut grpc = server.grpc().await;
    let status = grpc
        .revoke_token(pb::RevokeTokenRequest {
            token: token.clone(),
            token_type_hint: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(grpc_active(&server, &rs, &token).await.active, "not revoked");
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token_threats_e_07() {
    let (server, rs, svc) = setup();
    let other = server.create_client("other", &["--scope", "read"]);
    let token = http_token(&server, "svc", &svc).await;
    let exchange = server
        .form("/oauth2/revoke")
        .basic("other", &other)
        .body(format!("token={token}").into_bytes())
        .send()
        .await;
    exchange.assert_error(400, "unauthorized_client");
    assert!(grpc_active(&server, &rs, &token).await.active, "still active");
}

#[tokio::test]
async fn metadata_names_introspection_and_revocation_rfc8414() {
    let server = Server::start();
    let json = server
        .http("GET", "/.well-known/oauth-authorization-server")
        .send()
        .await
        .json();
    assert_eq!(
        json["introspection_endpoint"],
        format!("{}/oauth2/introspect", server.url())
    );
    assert_eq!(json["revocation_endpoint"], format!("{}/oauth2/revoke", server.url()));
    // RFC 8414 §2: registered method names only, and every one accepted.
    for member in [
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert_eq!(
            json[member],
            serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"]),
            "{member}"
        );
    }
}

async fn jwks_kids(server: &Server) -> Vec<String> {
    let jwks = server.http("GET", "/.well-known/jwks.json").send().await.json();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn keys_rotate_publishes_at_once_and_signs_after_the_delay_while_old_tokens_stay_valid() {
    let (server, rs, svc) = setup();
    let old_token = http_token(&server, "svc", &svc).await;
    let old_kid = kid_of(&old_token);
    let out = server.cli(&["keys", "rotate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        eventually(Duration::from_secs(2), async || jwks_kids(&server).await.len() == 2).await,
        "the new key is not in the JWKS within 2 s"
    );
    let during = http_token(&server, "svc", &svc).await;
    assert_eq!(
        kid_of(&during),
        old_kid,
        "the default publish-ahead delay (600 s) has not passed"
    );
    verify_with_http_jwks(&server, &old_token).await;
    assert!(grpc_active(&server, &rs, &old_token).await.active);

    // An immediate rotation: the newest key signs at once.
    assert!(server.cli(&["keys", "rotate", "--publish-ahead", "0"]).status.success());
    let switched = eventually(Duration::from_secs(2), async || {
        let token = http_token(&server, "svc", &svc).await;
        kid_of(&token) != old_kid && verify_with_http_jwks(&server, &token).await["sub"] == "svc"
    })
    .await;
    assert!(switched, "new tokens do not carry the new kid within 2 s");
    verify_with_http_jwks(&server, &old_token).await;
    assert!(
        grpc_active(&server, &rs, &old_token).await.active,
        "a pre-rotation token stays active"
    );
}

#[tokio::test]
async fn keys_revoke_removes_the_key_inactivates_its_tokens_and_a_fresh_key_signs() {
    let (server, rs, svc) = setup();
    let token = http_token(&server, "svc", &svc).await;
    let compromised = kid_of(&token);
    let out = server.cli(&["keys", "revoke", &compromised]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The server polls every 100 ms; 5 s leaves room for a loaded CI machine
    // (one full-suite run here missed 2 s; the cause is not understood yet).
    let gone = eventually(Duration::from_secs(5), async || {
        !jwks_kids(&server).await.contains(&compromised)
    })
    .await;
    assert!(gone, "the revoked key is still published 5 s later");
    assert!(
        !grpc_active(&server, &rs, &token).await.active,
        "a token of the revoked key is still active"
    );
    let fresh = http_token(&server, "svc", &svc).await;
    assert_ne!(kid_of(&fresh), compromised);
    verify_with_http_jwks(&server, &fresh).await;
    let listed = String::from_utf8_lossy(&server.cli(&["keys", "list"]).stdout).into_owned();
    assert!(listed.contains("revoked") && listed.contains("active"), "{listed}");
    let twice = server.cli(&["keys", "revoke", &compromised]);
    assert!(!twice.status.success(), "revoking twice is an error");
}

//! End to end: the SDK's token cache and auth layer against a real Tessera.
//! The cache's timing rules are specified with paused time in
//! `sdk/src/cache.rs`; these tests show them hold against the real server.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::Server;
use tessera_proto::pb;
use tessera_sdk::{AuthLayer, CachePolicy, TokenClient, TokenRequest};

/// Audit lines of issuances so far (the background log writer needs a moment).
async fn issuances(server: &Server) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stderr().matches("event=\"token_issued\"").count()
}

fn client(server: &Server, id: &str, secret: &str) -> TokenClient {
    TokenClient::builder(server.url())
        .client_secret(id, secret)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_thousand_concurrent_callers_at_expiry_cause_exactly_one_issue_token() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read", "--ttl", "2"]);
    let source = client(&server, "svc", &secret).token_source(TokenRequest::new(), CachePolicy::default());
    let first = source.token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await; // the 2 s token has expired
    let before = issuances(&server).await;
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap());
    }
    assert!(
        tokens.iter().all(|t| *t == tokens[0] && *t != first),
        "every caller got the one new token"
    );
    assert_eq!(
        issuances(&server).await - before,
        1,
        "exactly one IssueToken for 1,000 callers"
    );
}

#[tokio::test]
async fn with_the_server_stopped_the_cached_token_is_served_until_it_expires() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read", "--ttl", "3"]);
    let source = client(&server, "svc", &secret).token_source(TokenRequest::new(), CachePolicy::default());
    let cached = source.token().await.unwrap();
    drop(server.kill());
    // Refresh is due from 1.5 s (half the lifetime); the server is gone.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        source.token().await.unwrap(),
        cached,
        "a valid token is served while refreshes fail"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let err = source.token().await.unwrap_err();
    assert!(
        matches!(*err, tessera_sdk::Error::Transport(_)),
        "after expiry the error surfaces: {err:?}"
    );
}

#[tokio::test]
async fn the_auth_layer_stamps_a_bearer_token_on_every_tonic_call() {
    let server = Server::start();
    let rs_secret = server.create_client("rs", &["--scope", "tessera:introspect"]);
    let svc_secret = server.create_client("svc", &["--scope", "read"]);
    let svc_token = client(&server, "svc", &svc_secret)
        .issue_token(&TokenRequest::new())
        .await
        .unwrap();
    // The resource server calls IntrospectToken with a bearer token from its cache.
    let source = client(&server, "rs", &rs_secret).token_source(TokenRequest::new(), CachePolicy::default());
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect_lazy();
    let authenticated = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(source))
        .service(channel);
    let mut grpc = pb::token_service_client::TokenServiceClient::new(authenticated);
    for _ in 0..3 {
        let request = pb::IntrospectTokenRequest {
            token: svc_token.access_token().expose().to_owned(),
            token_type_hint: String::new(),
        };
        let answer = grpc
            .introspect_token(request)
            .await
            .expect("accepted: the layer authenticated the call");
        assert!(answer.get_ref().active);
    }
}

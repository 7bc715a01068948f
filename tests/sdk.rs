//! End to end: the SDK's token cache and auth layer against a real Tessera.
//! The cache's timing rules are specified with paused time in
//! `sdk/src/cache.rs`; these tests show them hold against the real server.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{Server, eventually};
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
        matches!(err, tessera_sdk::Error::Unreachable(_)),
        "after expiry the error surfaces, saying nothing was sent: {err:?}"
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

// ---- The verifier and RequireScopes, for resource servers ----

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_sdk::{Claims, RequireScopes, Verifier, VerifyError};

struct ResourceSetup {
    server: Server,
    verifier: Verifier,
    svc: TokenClient,
    rs_secret: String,
}

/// A Tessera, a service `svc` with scope read for audience https://api, and a
/// verifier for https://api whose client `rs` may introspect.
fn resource_setup(introspect: bool) -> ResourceSetup {
    let server = Server::start();
    let svc_secret = server.create_client(
        "svc",
        &["--scope", "read", "--scope", "write", "--audience", "https://api"],
    );
    let rs_secret = server.create_client("rs", &["--scope", "tessera:introspect"]);
    let verifier = Verifier::builder(client(&server, "rs", &rs_secret), server.url(), "https://api")
        .introspect(introspect)
        .build();
    let svc = client(&server, "svc", &svc_secret);
    ResourceSetup {
        server,
        verifier,
        svc,
        rs_secret,
    }
}

async fn token(svc: &TokenClient, request: TokenRequest) -> String {
    svc.issue_token(&request)
        .await
        .unwrap()
        .access_token()
        .expose()
        .to_owned()
}

#[tokio::test]
async fn the_verifier_accepts_a_valid_token_and_returns_its_claims() {
    let s = resource_setup(false);
    let claims = s
        .verifier
        .verify(&token(&s.svc, TokenRequest::new().scope("read")).await)
        .await
        .unwrap();
    assert_eq!(claims.client_id, "svc");
    assert_eq!(claims.scopes, ["read"]);
    assert_eq!(claims.audiences, ["https://api"]);
    assert!(claims.has_scopes(&["read"]) && !claims.has_scopes(&["write"]));
}

#[tokio::test]
async fn the_verifier_rejects_tokens_for_another_audience_threats_d_06() {
    let s = resource_setup(false);
    let other = Verifier::builder(client(&s.server, "rs", &s.rs_secret), s.server.url(), "https://billing").build();
    let err = other
        .verify(&token(&s.svc, TokenRequest::new()).await)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::Audience);
    assert_eq!(
        s.verifier.verify("not-a-jwt").await.unwrap_err(),
        VerifyError::Malformed
    );
}

#[tokio::test]
async fn after_a_key_rotation_the_verifier_accepts_new_tokens_without_restart() {
    let s = resource_setup(false);
    // The rotation below lands well within the default 1 s refetch limit of
    // the first fetch; a verifier running for a while has no such gap.
    let verifier = Verifier::builder(client(&s.server, "rs", &s.rs_secret), s.server.url(), "https://api")
        .min_refetch_interval(Duration::from_millis(50))
        .build();
    let s = ResourceSetup { verifier, ..s };
    let before = token(&s.svc, TokenRequest::new()).await;
    s.verifier.verify(&before).await.unwrap();
    assert_eq!(s.verifier.key_fetches(), 1);
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid;
    assert!(
        s.server
            .cli(&["keys", "rotate", "--publish-ahead", "0"])
            .status
            .success()
    );
    // Tessera notices the new key within its store poll interval.
    let mut fresh = None;
    for _ in 0..40 {
        let t = token(&s.svc, TokenRequest::new()).await;
        if jsonwebtoken::decode_header(&t).unwrap().kid != old_kid {
            fresh = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = fresh.expect("Tessera signs with the new key within 2 s");
    // Under load the new key can sign within the verifier's 50 ms refetch
    // limit of its first fetch, and a refetch that soon is refused by design.
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.verifier
        .verify(&fresh)
        .await
        .expect("a token of the new key verifies, no restart");
    assert_eq!(
        s.verifier.key_fetches(),
        2,
        "the unknown kid caused exactly one refetch"
    );
    s.verifier
        .verify(&before)
        .await
        .expect("a token of the old key still verifies");
}

/// RFC 9068 §2.1's `typ` written as the full media type,
/// `application/at+jwt`, is accepted, as the server accepts it; anything
/// else is not an access token.
#[tokio::test]
async fn the_verifier_accepts_typ_at_jwt_in_both_spellings_and_nothing_else() {
    let s = resource_setup(false);
    let issued = token(&s.svc, TokenRequest::new()).await;
    let header = jsonwebtoken::decode_header(&issued).unwrap();
    let (_, rest) = issued.split_once('.').unwrap();
    let (claims, _) = rest.split_once('.').unwrap();
    let store = tessera_server::store::open(&s.server.store_url).await.unwrap();
    let record = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| Some(&k.kid) == header.kid.as_ref())
        .unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_der(&record.private_pkcs8);
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    let signed_with = |typ: &str| {
        let mut header = header.clone();
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    s.verifier.verify(&signed_with("application/at+jwt")).await.unwrap();
    s.verifier.verify(&signed_with("AT+JWT")).await.unwrap();
    assert_eq!(
        s.verifier.verify(&signed_with("JWT")).await.unwrap_err(),
        VerifyError::WrongType
    );
}

#[tokio::test]
async fn forged_unknown_kids_are_rejected_without_hammering_tessera() {
    let s = resource_setup(false);
    let good = token(&s.svc, TokenRequest::new()).await;
    s.verifier.verify(&good).await.unwrap();
    let (_, rest) = good.split_once('.').unwrap();
    for i in 0..200 {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"forged-{i}"}}"#));
        assert_eq!(
            s.verifier.verify(&format!("{header}.{rest}")).await.unwrap_err(),
            VerifyError::UnknownKey
        );
    }
    assert!(
        s.verifier.key_fetches() <= 2,
        "{} fetches for 200 forged kids",
        s.verifier.key_fetches()
    );
}

/// A key revoked with `tessera keys revoke` leaves the verifier's key set
/// within its maximum age (Tessera says five minutes; this verifier caps it at
/// 2 s), and its tokens are refused, though no unknown `kid` ever appeared.
#[tokio::test]
async fn a_revoked_signing_key_is_refused_by_the_verifier_within_its_key_age() {
    let s = resource_setup(false);
    let verifier = Verifier::builder(client(&s.server, "rs", &s.rs_secret), s.server.url(), "https://api")
        .max_key_age(Duration::from_secs(2))
        .build();
    let signed = token(&s.svc, TokenRequest::new()).await;
    verifier.verify(&signed).await.expect("valid before the revocation");
    let kid = jsonwebtoken::decode_header(&signed).unwrap().kid.unwrap();
    let out = s.server.cli(&["keys", "revoke", &kid]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked_at = std::time::Instant::now();
    let refused = eventually(Duration::from_secs(10), async || {
        verifier.verify(&signed).await.is_err()
    })
    .await;
    let took = revoked_at.elapsed();
    println!("a revoked key stayed trusted by the verifier for {took:?}");
    assert!(refused, "the revoked key's token still verifies after {took:?}");
    assert_eq!(verifier.verify(&signed).await.unwrap_err(), VerifyError::UnknownKey);
}

/// Concurrent verifications of one token in introspection mode send one
/// IntrospectToken, not one each.
#[tokio::test]
async fn concurrent_introspections_of_one_token_are_one_request() {
    let s = resource_setup(true);
    let shared = token(&s.svc, TokenRequest::new()).await;
    let before = introspections(&s.server).await;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (verifier, token) = (s.verifier.clone(), shared.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("active");
    }
    assert_eq!(introspections(&s.server).await - before, 1);
}

/// IntrospectToken calls answered so far, from the server's metrics.
async fn introspections(server: &Server) -> u64 {
    server
        .metric(r#"tessera_requests_total{face="grpc",endpoint="introspect_token",outcome="ok"}"#)
        .await
}

#[tokio::test]
async fn introspection_mode_rejects_a_revoked_token_that_still_verifies_locally() {
    let s = resource_setup(true);
    let svc_secret = s
        .server
        .create_client("svc2", &["--scope", "read", "--audience", "https://api"]);
    let svc2 = client(&s.server, "svc2", &svc_secret);
    let revocable = token(&svc2, TokenRequest::new()).await;
    s.verifier.verify(&revocable).await.expect("active before revocation");
    let revoked = s
        .server
        .form("/oauth2/revoke")
        .body(format!("token={revocable}").into_bytes())
        .basic("svc2", &svc_secret)
        .send()
        .await;
    assert_eq!(revoked.status, 200, "{revoked}");
    tokio::time::sleep(Duration::from_secs(6)).await; // past the 5 s introspection cache
    assert_eq!(s.verifier.verify(&revocable).await.unwrap_err(), VerifyError::Inactive);
}

#[tokio::test]
async fn require_scopes_protects_an_axum_service_rfc6750_3_1() {
    let s = resource_setup(false);
    let app = axum::Router::new()
        .route(
            "/invoices",
            axum::routing::get(|axum::Extension(claims): axum::Extension<Claims>| async move { claims.client_id }),
        )
        .layer(RequireScopes::new(s.verifier.clone(), ["write"]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/invoices", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let read_only = token(&s.svc, TokenRequest::new().scope("read")).await;
    let narrow = http.get(&url).bearer_auth(&read_only).send().await.unwrap();
    assert_eq!(narrow.status(), 403);
    assert!(
        narrow.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let forged = format!("{}x", token(&s.svc, TokenRequest::new()).await);
    assert_eq!(http.get(&url).bearer_auth(&forged).send().await.unwrap().status(), 401);
    let full = token(&s.svc, TokenRequest::new().scope("write")).await;
    let ok = http.get(&url).bearer_auth(&full).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "svc", "the handler got the claims");
}

#[tokio::test]
async fn a_private_key_jwt_client_signs_a_fresh_assertion_for_every_token_rfc7523_2_2() {
    use tessera_sdk::{AssertionAlgorithm, AssertionKey};
    let server = Server::start();
    server.create_client("signer", &["--scope", "read", "--scope", "tessera:introspect"]);
    let key = support::register_key(&server, "signer", "k1", tessera_server::keys::KeyAlgorithm::Es256);
    let assertion_key = AssertionKey::from_pem(AssertionAlgorithm::Es256, "k1", key.private_pem().as_bytes()).unwrap();
    assert!(!format!("{assertion_key:?}").contains("PRIVATE"));
    let client = TokenClient::builder(server.url())
        .private_key_jwt("signer", assertion_key)
        .build()
        .unwrap();
    // Two calls: a reused assertion would be refused as a replay.
    let first = client.issue_token(&TokenRequest::new()).await.unwrap();
    let second = client.issue_token(&TokenRequest::new()).await.unwrap();
    assert_ne!(first.access_token().expose(), second.access_token().expose());
    assert_eq!(first.scopes(), ["read", "tessera:introspect"]);
    // Introspection authenticates with a token of its own.
    assert!(client.introspect(first.access_token().expose()).await.unwrap());
}

#[tokio::test]
async fn a_private_key_jwt_client_introspects_with_one_token_of_its_own_not_one_per_call() {
    use tessera_sdk::{AssertionAlgorithm, AssertionKey};
    let server = Server::start();
    server.create_client("signer", &["--scope", "read", "--scope", "tessera:introspect"]);
    let key = support::register_key(&server, "signer", "k1", tessera_server::keys::KeyAlgorithm::Es256);
    let assertion_key = AssertionKey::from_pem(AssertionAlgorithm::Es256, "k1", key.private_pem().as_bytes()).unwrap();
    let client = TokenClient::builder(server.url())
        .private_key_jwt("signer", assertion_key)
        .build()
        .unwrap();
    let subject = client.issue_token(&TokenRequest::new()).await.unwrap();
    let before = issuances(&server).await;
    for _ in 0..5 {
        assert!(client.introspect(subject.access_token().expose()).await.unwrap());
    }
    let issued = issuances(&server).await - before;
    assert_eq!(
        issued, 1,
        "five introspections cost {issued} tokens of the client's own"
    );
}

#[tokio::test]
async fn errors_say_whether_the_request_was_never_sent_unanswered_or_refused() {
    use tessera_sdk::Delivery;
    // Nothing listens: the connection is refused, nothing is sent.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = client_at(&closed_url)
        .issue_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err:?}");
    // A listener that accepts and never answers: sent, no answer.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let err = TokenClient::builder(silent_url)
        .client_secret("svc", "x")
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .issue_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::NoAnswer, "{err:?}");
    holder.abort();
    // Tessera refuses: the OAuth code comes back.
    let server = Server::start();
    let err = client(&server, "svc", "wrong")
        .issue_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::Refused, "{err:?}");
    assert_eq!(err.code(), Some(tessera_proto::oauth::ErrorCode::InvalidClient));
}

fn client_at(url: &str) -> TokenClient {
    TokenClient::builder(url).client_secret("svc", "x").build().unwrap()
}

#[tokio::test]
async fn a_verifier_needs_no_client_credentials_to_fetch_keys() {
    let server = Server::start();
    let svc_secret = server.create_client("svc", &["--scope", "read", "--audience", "https://api"]);
    let keys_only = TokenClient::builder(server.url()).build_keys_only().unwrap();
    let refused = keys_only.issue_token(&TokenRequest::new()).await.unwrap_err();
    assert!(matches!(refused, tessera_sdk::Error::Config(_)), "{refused:?}");
    let verifier = Verifier::builder(keys_only, server.url(), "https://api").build();
    let svc = client(&server, "svc", &svc_secret);
    let claims = verifier.verify(&token(&svc, TokenRequest::new()).await).await.unwrap();
    assert_eq!(claims.client_id, "svc");
    assert_eq!(verifier.key_fetches(), 1);
}

#[tokio::test]
async fn a_wrong_assertion_audience_is_refused_as_invalid_client() {
    use tessera_sdk::{AssertionAlgorithm, AssertionKey};
    let server = Server::start();
    server.create_client("signer", &["--scope", "read"]);
    let key = support::register_key(&server, "signer", "k1", tessera_server::keys::KeyAlgorithm::Es256);
    let client = TokenClient::builder(server.url())
        .private_key_jwt(
            "signer",
            AssertionKey::from_pem(AssertionAlgorithm::Es256, "k1", key.private_pem().as_bytes()).unwrap(),
        )
        .assertion_audience("https://someone-else.example")
        .build()
        .unwrap();
    let err = client.issue_token(&TokenRequest::new()).await.unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_client"), "{err:?}");
}

#[tokio::test]
async fn the_sdk_speaks_tls_and_mutual_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = support::TestPki::write(dir.path(), "sdk");
    let server = Server::builder()
        .args(&[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
            "--tls-client-ca",
            pki.ca.to_str().unwrap(),
        ])
        .start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let ca = std::fs::read(&pki.ca).unwrap();
    let with_certificate = TokenClient::builder(server.url())
        .client_secret("svc", &secret)
        .tls_ca_pem(ca.clone())
        .tls_identity(
            std::fs::read(&pki.client_cert).unwrap(),
            std::fs::read(&pki.client_key).unwrap(),
        )
        .tls_domain("localhost")
        .build()
        .unwrap();
    let token = with_certificate.issue_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(token.scopes(), ["read"]);
    let without = TokenClient::builder(server.url())
        .client_secret("svc", &secret)
        .tls_ca_pem(ca)
        .tls_domain("localhost")
        .build()
        .unwrap();
    let err = without.issue_token(&TokenRequest::new()).await.unwrap_err();
    assert!(
        err.oauth_error().is_none(),
        "refused at the TLS layer, not by OAuth: {err:?}"
    );
}

#[test]
fn tls_settings_on_a_plain_endpoint_are_refused_before_any_call() {
    let err = TokenClient::builder("http://127.0.0.1:1")
        .client_secret("a", "b")
        .tls_ca_pem(b"-----BEGIN CERTIFICATE-----".to_vec())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("https://"), "{err}");
}

/// The README's two-service walkthrough, run as written: the example
/// binaries, a real Tessera between them.
#[tokio::test]
async fn the_example_caller_and_resource_services_talk_through_tessera() {
    use std::process::{Command, Stdio};
    let server = Server::start();
    let resource_secret = server.create_client("invoices", &["--scope", "tessera:introspect"]);
    let caller_secret = server.create_client(
        "billing",
        &["--scope", "invoices:read", "--audience", "https://invoices.internal"],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut resource = Command::new(support::example_bin("resource_service"))
        .env("TESSERA", server.url())
        .env("CLIENT_ID", "invoices")
        .env("CLIENT_SECRET", &resource_secret)
        .env("LISTEN", &listen)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let caller = |secret: &str| {
        Command::new(support::example_bin("caller_service"))
            .env("TESSERA", server.url())
            .env("CLIENT_ID", "billing")
            .env("CLIENT_SECRET", secret)
            .env("INVOICES", format!("http://{listen}"))
            .output()
            .unwrap()
    };
    let mut out = caller(&caller_secret);
    for _ in 0..50 {
        if out.status.success() {
            break;
        }
        // The resource service may still be starting.
        tokio::time::sleep(Duration::from_millis(200)).await;
        out = caller(&caller_secret);
    }
    let _ = resource.kill();
    let _ = resource.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("(served to billing)").count(), 3, "{stdout}");
}

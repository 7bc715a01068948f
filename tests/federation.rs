//! End to end: no secrets at all. A workload's own platform identity — a
//! Kubernetes projected service-account token, a SPIFFE JWT-SVID — is its
//! client credential (RFC 7523 section 2.2; draft-ietf-oauth-spiffe-client-auth).
//!
//! The platform is a stand-in run for real (`support::platform`): its own
//! key pairs, its discovery document and JWKS served over HTTPS by a server
//! that wants a bearer token (as a Kubernetes API server does), and tokens
//! shaped like a kubelet's and like SPIRE's. Tessera is a real `tessera
//! serve` process, configured with the real CLI.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::pg_cluster::PgCluster;
use support::platform::PlatformIssuer;
use support::{Exchange, Server, eventually};
use tessera_proto::pb;

/// Tessera's issuer: what platform tokens name as their audience.
const ISSUER: &str = "https://tessera.test";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_SPIFFE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
const BILLING_SA: &str = "system:serviceaccount:payments:billing";
const BILLING_SPIFFE_ID: &str = "spiffe://example.org/ns/payments/sa/billing";

/// A Tessera that trusts a Kubernetes-like issuer through its JWKS URL (CA
/// file and bearer token file, as inside a cluster), with client `billing`
/// bound to the service account `payments/billing`.
struct Fleet {
    platform: PlatformIssuer,
    server: Server,
    _dir: tempfile::TempDir,
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(
        out.status.success(),
        "tessera {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn trust_by_url(server: &Server, platform: &PlatformIssuer) {
    cli_ok(
        server,
        &[
            "trust",
            "add",
            &platform.issuer,
            "--jwks-url",
            &platform.jwks_url(),
            "--ca-file",
            platform.ca_file.to_str().unwrap(),
            "--bearer-token-file",
            platform.token_file.to_str().unwrap(),
        ],
    );
}

/// `tessera client add-federated CLIENT --issuer ISSUER --subject SUBJECT`.
fn bind(server: &Server, client: &str, issuer: &str, subject: &str) {
    cli_ok(
        server,
        &[
            "client",
            "add-federated",
            client,
            "--issuer",
            issuer,
            "--subject",
            subject,
        ],
    );
}

fn kubernetes_fleet(serve_args: &[&str]) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let platform = PlatformIssuer::kubernetes(dir.path());
    let mut args = vec!["--issuer", ISSUER];
    if !serve_args.contains(&"--trusted-jwks-min-interval") {
        args.extend(["--trusted-jwks-min-interval", "1"]);
    }
    args.extend_from_slice(serve_args);
    let server = Server::builder().args(&args).start();
    trust_by_url(&server, &platform);
    server.create_client("billing", &["--scope", "invoices:read"]);
    bind(&server, "billing", &platform.issuer, BILLING_SA);
    Fleet {
        platform,
        server,
        _dir: dir,
    }
}

/// POST /oauth2/token with a client assertion and, when given, a client_id.
async fn token_with(server: &Server, assertion_type: &str, assertion: &str, client_id: Option<&str>) -> Exchange {
    let mut body = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        assertion_type.replace(':', "%3A")
    );
    if let Some(id) = client_id {
        body.push_str(&format!("&client_id={id}"));
    }
    server.token_form(&body).send().await
}

fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn assert_issued_to(exchange: &Exchange, client_id: &str) {
    assert_eq!(exchange.status, 200, "{exchange}");
    let claims = claims_of(exchange.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], client_id, "{exchange}");
    assert_eq!(claims["sub"], client_id, "{exchange}");
}

/// The answer to `assertion` once the server follows the store: a trust
/// added with the CLI is in force within the store poll (100 ms here) plus
/// the first fetch of its keys, so the first request may race both.
async fn in_force(server: &Server, assertion_type: &str, assertion: &str) -> Exchange {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let exchange = token_with(server, assertion_type, assertion, None).await;
        if exchange.status == 200 || std::time::Instant::now() >= deadline {
            return exchange;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh token of billing's service account, once the trust is in force.
async fn first_token(fleet: &Fleet) -> Exchange {
    let token = fleet.platform.kubelet_token("payments", "billing", ISSUER);
    in_force(&fleet.server, JWT_BEARER, &token).await
}

/// A fresh token of billing's service account, sent once.
async fn billing_token(fleet: &Fleet) -> Exchange {
    let token = fleet.platform.kubelet_token("payments", "billing", ISSUER);
    token_with(&fleet.server, JWT_BEARER, &token, None).await
}

#[tokio::test]
async fn a_kubernetes_service_account_token_gets_an_access_token_over_http_rfc7523_2_2() {
    let fleet = kubernetes_fleet(&[]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    // Naming the client is allowed too, and must agree.
    let token = fleet.platform.kubelet_token("payments", "billing", ISSUER);
    assert_issued_to(
        &token_with(&fleet.server, JWT_BEARER, &token, Some("billing")).await,
        "billing",
    );
    assert!(fleet.platform.fetches() >= 1);
    let server = &fleet.server;
    assert_eq!(server.metric("tessera_trusted_issuers").await, 1);
    assert_eq!(server.metric("tessera_trusted_issuers_without_keys").await, 0);
    assert_eq!(server.metric("tessera_trusted_issuers_stale").await, 0);
    assert!(server.metric("tessera_verified_platform_tokens").await >= 1);
}

/// An issuer whose keys cannot be fetched shows in the metrics, so that an
/// operator can alert on it before a workload notices.
#[tokio::test]
async fn an_issuer_whose_keys_cannot_be_fetched_shows_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let platform = PlatformIssuer::kubernetes(dir.path());
    platform.set_available(false);
    let server = Server::builder()
        .args(&["--issuer", ISSUER, "--trusted-jwks-min-interval", "1"])
        .start();
    trust_by_url(&server, &platform);
    let shown = eventually(Duration::from_secs(5), async || {
        server.metric("tessera_trusted_issuers").await == 1
            && server.metric("tessera_trusted_issuers_without_keys").await == 1
            && server.metric("tessera_trusted_issuers_stale").await == 1
    })
    .await;
    assert!(shown, "{}", server.http("GET", "/metrics").send().await.body);
    platform.set_available(true);
    server.create_client("billing", &["--scope", "invoices:read"]);
    bind(&server, "billing", &platform.issuer, BILLING_SA);
    let token = platform.kubelet_token("payments", "billing", ISSUER);
    // Once the issuer is back, the next token with its kid fetches the keys.
    assert_issued_to(&in_force(&server, JWT_BEARER, &token).await, "billing");
    assert_eq!(server.metric("tessera_trusted_issuers_without_keys").await, 0);
    assert_eq!(server.metric("tessera_trusted_issuers_stale").await, 0);
}

#[tokio::test]
async fn a_kubernetes_service_account_token_gets_an_access_token_over_grpc() {
    let fleet = kubernetes_fleet(&[]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    let mut grpc = fleet.server.grpc().await;
    for client_id in ["", "billing"] {
        let request = pb::IssueTokenRequest {
            grant_type: String::new(),
            client_id: client_id.into(),
            credential: Some(pb::issue_token_request::Credential::ClientAssertion(
                pb::ClientAssertion {
                    assertion_type: JWT_BEARER.into(),
                    assertion: fleet.platform.kubelet_token("payments", "billing", ISSUER),
                },
            )),
            scopes: vec![],
            audiences: vec![],
        };
        let answer = grpc.issue_token(request).await.unwrap().into_inner();
        assert_eq!(claims_of(&answer.access_token)["sub"], "billing");
        assert_eq!(answer.scopes, ["invoices:read"]);
    }
}

#[tokio::test]
async fn the_issuers_keys_are_found_through_openid_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let platform = PlatformIssuer::kubernetes(dir.path());
    let server = Server::builder().args(&["--issuer", ISSUER]).start();
    cli_ok(
        &server,
        &[
            "trust",
            "add",
            &platform.issuer,
            "--discovery",
            "--ca-file",
            platform.ca_file.to_str().unwrap(),
            "--bearer-token-file",
            platform.token_file.to_str().unwrap(),
        ],
    );
    server.create_client("billing", &["--scope", "invoices:read"]);
    bind(&server, "billing", &platform.issuer, BILLING_SA);
    let token = platform.kubelet_token("payments", "billing", ISSUER);
    assert_issued_to(&in_force(&server, JWT_BEARER, &token).await, "billing");
}

/// A SPIFFE trust domain is trusted with its bundle; its JWT-SVIDs (no
/// `iss`, as SPIRE issues them) authenticate with the jwt-spiffe type.
#[tokio::test]
async fn a_spiffe_jwt_svid_gets_an_access_token_on_both_faces() {
    let dir = tempfile::tempdir().unwrap();
    let spire = PlatformIssuer::spire(dir.path());
    let server = Server::builder().args(&["--issuer", ISSUER]).start();
    let bundle = dir.path().join("bundle.json");
    std::fs::write(&bundle, spire.jwks()).unwrap();
    cli_ok(
        &server,
        &[
            "trust",
            "add",
            "spiffe://example.org",
            "--jwks-file",
            bundle.to_str().unwrap(),
        ],
    );
    server.create_client("billing", &["--scope", "invoices:read"]);
    bind(&server, "billing", "spiffe://example.org", BILLING_SPIFFE_ID);
    let svid = spire.jwt_svid(BILLING_SPIFFE_ID, ISSUER);
    assert_issued_to(&in_force(&server, JWT_SPIFFE, &svid).await, "billing");
    let mut grpc = server.grpc().await;
    let request = pb::IssueTokenRequest {
        grant_type: String::new(),
        client_id: "billing".into(),
        credential: Some(pb::issue_token_request::Credential::ClientAssertion(
            pb::ClientAssertion {
                assertion_type: JWT_SPIFFE.into(),
                assertion: spire.jwt_svid(BILLING_SPIFFE_ID, ISSUER),
            },
        )),
        scopes: vec![],
        audiences: vec![],
    };
    let answer = grpc.issue_token(request).await.unwrap().into_inner();
    assert_eq!(claims_of(&answer.access_token)["sub"], "billing");
    // A JWT-SVID of another workload of the same trust domain is no one's credential.
    let stranger = spire.jwt_svid("spiffe://example.org/ns/payments/sa/intruder", ISSUER);
    token_with(&server, JWT_SPIFFE, &stranger, None)
        .await
        .assert_error(401, "invalid_client");
}

/// Each way a platform token can be wrong is `invalid_client` (RFC 6749
/// section 5.2), and none of them keeps the real workload out afterwards.
#[tokio::test]
async fn every_wrong_platform_token_is_invalid_client_and_locks_no_one_out() {
    let fleet = kubernetes_fleet(&[]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    let platform = &fleet.platform;
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = PlatformIssuer::kubernetes(foreign_dir.path());
    let header_and_claims = |header: Value, claims: &Value| {
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}", b64(&header), b64(claims))
    };
    let good = platform.kubelet_claims("payments", "billing", ISSUER, 3600);
    let with = |patch: Value| {
        let mut claims = good.clone();
        for (name, value) in patch.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let now = good["iat"].as_i64().unwrap();
    // HS256 signed with the issuer's public key as the secret: the classic confusion.
    let public_jwk = platform.jwks();
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(platform.current_kid());
        jsonwebtoken::encode(
            &header,
            &good,
            &jsonwebtoken::EncodingKey::from_secret(public_jwk.as_bytes()),
        )
        .unwrap()
    };
    let own_access_token = {
        let secret = fleet.server.create_client("other", &["--scope", "invoices:read"]);
        let exchange = fleet
            .server
            .token_form("grant_type=client_credentials")
            .basic("other", &secret)
            .send()
            .await;
        exchange.json()["access_token"].as_str().unwrap().to_owned()
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "an unbound subject",
            platform.kubelet_token("payments", "intruder", ISSUER),
        ),
        (
            "an issuer not trusted",
            foreign.kubelet_token("payments", "billing", ISSUER),
        ),
        (
            "another audience",
            platform.kubelet_token("payments", "billing", "https://ledger.internal"),
        ),
        (
            "expired",
            platform.sign(&with(json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}))),
        ),
        (
            "living two days",
            platform.sign(&with(json!({"exp": now + 2 * 86_400}))),
        ),
        (
            "not valid yet",
            platform.sign(&with(json!({"nbf": now + 3600, "iat": now + 3600, "exp": now + 7200}))),
        ),
        (
            "without exp",
            platform.sign(&{
                let mut claims = good.clone();
                claims.as_object_mut().unwrap().remove("exp");
                claims
            }),
        ),
        (
            "alg none",
            format!(
                "{}.",
                header_and_claims(json!({"alg": "none", "kid": platform.current_kid()}), &good)
            ),
        ),
        ("HS256 keyed with the public key", hs256),
        ("a key the issuer never published", platform.impostor_key().sign(&good)),
        ("a signature of another token", {
            let other = platform.kubelet_token("payments", "other", ISSUER);
            let real = platform.kubelet_token("payments", "billing", ISSUER);
            let mut parts: Vec<&str> = real.split('.').collect();
            parts[2] = other.split('.').nth(2).unwrap();
            parts.join(".")
        }),
        ("this server's own access token", own_access_token),
    ];
    for (case, assertion) in &cases {
        let exchange = token_with(&fleet.server, JWT_BEARER, assertion, None).await;
        assert_eq!(exchange.status, 401, "{case}: {exchange}");
        assert_eq!(exchange.oauth_error(), "invalid_client", "{case}: {exchange}");
        let named = token_with(&fleet.server, JWT_BEARER, assertion, Some("billing")).await;
        assert_eq!(
            named.oauth_error(),
            "invalid_client",
            "{case}, client_id=billing: {named}"
        );
    }
    // Thirty more failures in billing's name: the real workload still gets its token.
    for _ in 0..30 {
        let forged = platform.impostor_key().sign(&good);
        token_with(&fleet.server, JWT_BEARER, &forged, Some("billing")).await;
    }
    assert_issued_to(&billing_token(&fleet).await, "billing");
    let audit = fleet.server.stderr();
    assert!(audit.contains("federated_credential_refused"), "{audit}");
    // No token, ours or the platform's, reaches the log.
    for (case, assertion) in &cases {
        let signature = assertion.rsplit('.').next().unwrap();
        assert!(signature.is_empty() || !audit.contains(signature), "{case} logged");
    }
}

#[tokio::test]
async fn the_issuer_rotating_its_key_is_followed_without_a_restart() {
    let fleet = kubernetes_fleet(&[]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    let kid = fleet.platform.rotate();
    let token = fleet.platform.kubelet_token("payments", "billing", ISSUER);
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    // The unknown kid makes Tessera fetch again (at most once a second here).
    let accepted = eventually(Duration::from_secs(5), async || {
        token_with(&fleet.server, JWT_BEARER, &token, None).await.status == 200
    })
    .await;
    assert!(
        accepted,
        "a token signed with the rotated key {kid} was not accepted; log:\n{}",
        fleet.server.stderr()
    );
}

#[tokio::test]
async fn known_keys_keep_working_while_the_issuers_jwks_endpoint_is_down() {
    let fleet = kubernetes_fleet(&[]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    fleet.platform.set_available(false);
    // A token naming a key Tessera does not know makes it fetch, and the fetch fails...
    fleet.platform.rotate();
    let rotated = fleet.platform.kubelet_token("payments", "billing", ISSUER);
    let failed = eventually(Duration::from_secs(5), async || {
        token_with(&fleet.server, JWT_BEARER, &rotated, None).await;
        fleet.server.stderr().contains("issuer_keys_fetch_failed")
    })
    .await;
    assert!(failed, "no failed fetch was logged:\n{}", fleet.server.stderr());
    // ...and a token signed with a key it knew still works.
    let old_key_token = fleet
        .platform
        .sign_with_previous(&fleet.platform.kubelet_claims("payments", "billing", ISSUER, 3600));
    assert_issued_to(
        &token_with(&fleet.server, JWT_BEARER, &old_key_token, None).await,
        "billing",
    );
    // When the endpoint is back, the rotated key is picked up too.
    fleet.platform.set_available(true);
    let recovered = eventually(Duration::from_secs(5), async || {
        token_with(&fleet.server, JWT_BEARER, &rotated, None).await.status == 200
    })
    .await;
    assert!(recovered, "{}", fleet.server.stderr());
}

/// Made-up key ids cost at most one fetch per interval, however many come.
#[tokio::test]
async fn a_flood_of_unknown_key_ids_costs_at_most_one_fetch_per_interval() {
    let fleet = kubernetes_fleet(&["--trusted-jwks-min-interval", "3600"]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    let before = fleet.platform.fetches();
    let claims = fleet.platform.kubelet_claims("payments", "billing", ISSUER, 3600);
    for i in 0..50 {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(format!("made-up-{i}"));
        let forged = jsonwebtoken::encode(&header, &claims, fleet.platform.impostor_key().private_key()).unwrap();
        token_with(&fleet.server, JWT_BEARER, &forged, None)
            .await
            .assert_error(401, "invalid_client");
    }
    let after = fleet.platform.fetches();
    assert!(after - before <= 1, "{} fetches for 50 made-up kids", after - before);
}

#[tokio::test]
async fn tesseras_own_issuer_can_never_be_trusted() {
    let server = Server::builder().args(&["--issuer", ISSUER]).start();
    let out = server.cli(&["trust", "add", ISSUER, "--discovery", "--issuer-of-this-server", ISSUER]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("own issuer"), "{stderr}");
    // Even trusted by a CLI that did not know the server's issuer, our own
    // access tokens never authenticate anyone.
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("own.json");
    std::fs::write(&jwks, server.http("GET", "/.well-known/jwks.json").send().await.body).unwrap();
    cli_ok(
        &server,
        &["trust", "add", ISSUER, "--jwks-file", jwks.to_str().unwrap()],
    );
    let secret = server.create_client("billing", &["--scope", "invoices:read"]);
    bind(&server, "billing", ISSUER, "billing");
    let exchange = server
        .token_form("grant_type=client_credentials")
        .basic("billing", &secret)
        .send()
        .await;
    let own = exchange.json()["access_token"].as_str().unwrap().to_owned();
    token_with(&server, JWT_BEARER, &own, None)
        .await
        .assert_error(401, "invalid_client");
    // The server itself ignores such a trust, and says so.
    let said = eventually(Duration::from_secs(5), async || {
        server.stderr().contains("own issuer and is ignored")
    })
    .await;
    assert!(said, "{}", server.stderr());
}

#[tokio::test]
async fn trust_is_listed_shown_and_removed_and_removal_is_in_force() {
    let fleet = kubernetes_fleet(&[]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    let issuer = fleet.platform.issuer.clone();
    let list: Value = serde_json::from_str(&cli_ok(&fleet.server, &["trust", "list", "--json"])).unwrap();
    assert_eq!(list[0]["issuer"], issuer.as_str());
    assert_eq!(list[0]["jwks_source"], "url");
    assert_eq!(list[0]["max_lifetime"], 86_400);
    let show = cli_ok(&fleet.server, &["trust", "show", &issuer]);
    assert!(show.contains(&fleet.platform.jwks_url()), "{show}");
    let bearer = std::fs::read_to_string(&fleet.platform.token_file).unwrap();
    assert!(
        !show.contains(bearer.trim()),
        "the bearer token itself is never stored or shown: {show}"
    );
    let client: Value = serde_json::from_str(&cli_ok(&fleet.server, &["client", "show", "billing", "--json"])).unwrap();
    assert_eq!(client["federated"][0]["subject"], BILLING_SA);
    // The same identity cannot belong to a second client.
    fleet.server.create_client("ledger", &["--scope", "ledger:write"]);
    let taken = fleet.server.cli(&[
        "client",
        "add-federated",
        "ledger",
        "--issuer",
        &issuer,
        "--subject",
        BILLING_SA,
    ]);
    assert_eq!(
        taken.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    cli_ok(&fleet.server, &["trust", "remove", &issuer]);
    let refused = eventually(Duration::from_secs(2), async || {
        billing_token(&fleet).await.status == 401
    })
    .await;
    assert!(refused, "a removed trust still authenticated");
    // Unbinding works the same way.
    trust_by_url(&fleet.server, &fleet.platform);
    assert_issued_to(&first_token(&fleet).await, "billing");
    cli_ok(
        &fleet.server,
        &[
            "client",
            "remove-federated",
            "billing",
            "--issuer",
            &issuer,
            "--subject",
            BILLING_SA,
        ],
    );
    assert!(
        eventually(Duration::from_secs(2), async || billing_token(&fleet).await.status
            == 401)
        .await
    );
}

/// The SDK reads the token file before every request: a file the platform
/// replaces is picked up without a restart.
#[tokio::test]
async fn the_sdk_reads_a_token_file_that_is_replaced_while_it_runs() {
    let fleet = kubernetes_fleet(&[]);
    assert_issued_to(&first_token(&fleet).await, "billing");
    let file = fleet._dir.path().join("projected-token");
    let replace = |token: String| {
        // As the kubelet does: write aside, then rename over.
        let aside = fleet._dir.path().join("projected-token.tmp");
        std::fs::write(&aside, token).unwrap();
        std::fs::rename(&aside, &file).unwrap();
    };
    replace(fleet.platform.kubelet_token("payments", "billing", ISSUER));
    let client = tessera_sdk::TokenClient::builder(fleet.server.url())
        .federated_token_file("billing", &file)
        .build()
        .unwrap();
    let request = tessera_sdk::TokenRequest::new();
    let first = client.issue_token(&request).await.unwrap();
    assert_eq!(claims_of(first.access_token().expose())["sub"], "billing");
    // The platform writes a token for another service account: refused,
    // which shows the file was read again.
    replace(fleet.platform.kubelet_token("payments", "intruder", ISSUER));
    let error = client.issue_token(&request).await.unwrap_err();
    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    // And a fresh token of its own again: accepted.
    replace(fleet.platform.kubelet_token("payments", "billing", ISSUER));
    client.issue_token(&request).await.unwrap();
    // A missing file is said plainly, and nothing is sent.
    std::fs::remove_file(&file).unwrap();
    let error = client.issue_token(&request).await.unwrap_err();
    assert!(matches!(error, tessera_sdk::Error::TokenFile { .. }), "{error}");
}

/// With replicas on one PostgreSQL, a trust added or removed through the
/// shared store is in force at every replica within 2 s (they poll once a
/// minute here: what acts within 2 s is LISTEN/NOTIFY).
#[tokio::test]
async fn a_trust_added_or_removed_is_in_force_at_every_replica_within_2s() {
    let Some(cluster) = PgCluster::start_or_skip("a_trust_added_or_removed_is_in_force_at_every_replica_within_2s")
    else {
        return;
    };
    let url = cluster.create_database("tessera");
    let dir = tempfile::tempdir().unwrap();
    let platform = PlatformIssuer::kubernetes(dir.path());
    let replica = || {
        Server::builder()
            .store(std::sync::Arc::new(tempfile::tempdir().unwrap()), url.clone())
            .args(&["--issuer", ISSUER, "--store-poll-ms", "60000"])
            .start()
    };
    let (a, b) = (replica(), replica());
    a.create_client("billing", &["--scope", "invoices:read"]);
    trust_by_url(&a, &platform);
    bind(&a, "billing", &platform.issuer, BILLING_SA);
    let bound = Duration::from_secs(2);
    for server in [&a, &b] {
        let in_force = eventually(bound, async || {
            let token = platform.kubelet_token("payments", "billing", ISSUER);
            token_with(server, JWT_BEARER, &token, None).await.status == 200
        })
        .await;
        assert!(
            in_force,
            "the trust was not in force within 2 s at {}:\n{}",
            server.url(),
            server.stderr()
        );
    }
    cli_ok(&b, &["trust", "remove", &platform.issuer]);
    for server in [&a, &b] {
        let gone = eventually(bound, async || {
            let token = platform.kubelet_token("payments", "billing", ISSUER);
            token_with(server, JWT_BEARER, &token, None).await.status == 401
        })
        .await;
        assert!(
            gone,
            "the removed trust still authenticated after 2 s at {}",
            server.url()
        );
    }
}

/// RFC 8414 section 2 lets a server add metadata: the assertion types say
/// that SPIFFE JWT-SVIDs and trusted issuers' tokens are accepted.
#[tokio::test]
async fn the_metadata_lists_both_assertion_types() {
    let server = Server::builder().args(&["--issuer", ISSUER]).start();
    let metadata = server
        .http("GET", "/.well-known/oauth-authorization-server")
        .send()
        .await;
    assert_eq!(metadata.status, 200, "{metadata}");
    assert_eq!(
        metadata.json()["client_assertion_types_supported"],
        json!([JWT_BEARER, JWT_SPIFFE]),
        "{metadata}"
    );
}

/// What cannot work is refused when it is said, with the reason, and
/// nothing is stored.
#[tokio::test]
async fn trust_and_bindings_that_cannot_work_are_refused_with_the_reason() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let no_keys = dir.path().join("empty.json");
    std::fs::write(&no_keys, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "trust",
                "add",
                "https://k8s.example",
                "--jwks-url",
                "http://k8s.example/jwks",
            ],
            "not https",
        ),
        (
            vec!["trust", "add", "http://k8s.example", "--discovery"],
            "https:// URL",
        ),
        (
            vec!["trust", "add", "spiffe://example.org", "--discovery"],
            "no OpenID discovery",
        ),
        (
            vec![
                "trust",
                "add",
                "spiffe://example.org/ns/x",
                "--jwks-file",
                no_keys.to_str().unwrap(),
            ],
            "trust domain",
        ),
        (
            vec![
                "trust",
                "add",
                "https://k8s.example",
                "--jwks-file",
                no_keys.to_str().unwrap(),
            ],
            "none of the 1 keys",
        ),
        (
            vec![
                "trust",
                "add",
                "https://k8s.example",
                "--discovery",
                "--bearer-token-file",
                "token",
            ],
            "absolute path",
        ),
        (
            vec![
                "trust",
                "add",
                "https://k8s.example",
                "--discovery",
                "--max-lifetime",
                "0",
            ],
            "lifetime",
        ),
        (
            vec![
                "client",
                "add-federated",
                "billing",
                "--issuer",
                "https://k8s.example",
                "--subject",
                "x",
            ],
            "tessera trust add",
        ),
    ];
    for (args, reason) in &cases {
        let out = server.cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "tessera {args:?}: {stderr}");
        assert!(
            stderr.contains(reason),
            "tessera {args:?} should say {reason:?}: {stderr}"
        );
    }
    let both = server.cli(&[
        "trust",
        "add",
        "https://k8s.example",
        "--discovery",
        "--jwks-url",
        "https://x",
    ]);
    assert_eq!(both.status.code(), Some(2), "two key sources are bad usage");
    let list: Value = serde_json::from_str(&cli_ok(&server, &["trust", "list", "--json"])).unwrap();
    assert_eq!(list, json!([]), "nothing was stored");
}

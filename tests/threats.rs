//! The threat catalogue as tests, grouped as the catalogue groups them.
//! `docs/THREATS.md` is the catalogue: each row, Tessera's answer, and which
//! test shows it (many rows are shown in the other test files; the rest are
//! here, on both faces where the row applies). Every test name here starts
//! with its row id.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::{ClientKey, Server, eventually, grpc_oauth_error, issue_request, register_key};
use tessera_proto::pb;
use tessera_server::keys::KeyAlgorithm;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn assertion_claims(server: &Server, jti: &str) -> Value {
    json!({"iss": "svc", "sub": "svc", "aud": server.url(), "iat": now(), "exp": now() + 60, "jti": jti})
}

/// The HTTP and gRPC answers to one assertion, as OAuth codes ("ok" for a token).
async fn assertion_outcomes(server: &Server, assertion: &str) -> (u16, String, String) {
    let http = server
        .token_form(&format!(
            "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
        ))
        .send()
        .await;
    let http_code = if http.status == 200 {
        "ok".to_owned()
    } else {
        http.oauth_error()
    };
    let request = pb::IssueTokenRequest {
        grant_type: String::new(),
        client_id: "svc".into(),
        credential: Some(pb::issue_token_request::Credential::ClientAssertion(
            pb::ClientAssertion {
                assertion_type: JWT_BEARER.into(),
                assertion: assertion.into(),
            },
        )),
        scopes: vec![],
        audiences: vec![],
    };
    let grpc = match server.grpc().await.issue_token(request).await {
        Ok(_) => "ok".to_owned(),
        // Over the 64 KiB message limit: refused before the handler (H-01).
        Err(status) if status.code() == tonic::Code::OutOfRange => "out_of_range".to_owned(),
        Err(status) => grpc_oauth_error(&status),
    };
    (http.status, http_code, grpc)
}

fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// True once no argon2 verification runs (per `/metrics`), within 10 s.
async fn hashing_settles(server: &Server) -> bool {
    eventually(Duration::from_secs(10), async || {
        server
            .http("GET", "/metrics")
            .send()
            .await
            .body
            .contains("tessera_hashing_busy 0")
    })
    .await
}

fn server_with_signer() -> (Server, ClientKey) {
    let server = Server::builder()
        .args(&["--failure-limit", "0", "--source-failure-limit", "0"])
        .start();
    server.create_client("svc", &["--scope", "read"]);
    let key = register_key(&server, "svc", "k1", KeyAlgorithm::Es256);
    (server, key)
}

// ---------------------------------------------------------------- A. Request shape

#[tokio::test]
async fn a_13_introspection_answers_are_json_and_never_cached_and_tokens_carry_no_refresh_token() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let issued = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert!(issued.json().get("refresh_token").is_none(), "{issued}");
    let token = issued.json()["access_token"].as_str().unwrap().to_owned();
    for body in [format!("token={token}"), "token=garbage".to_owned()] {
        let answer = server
            .form("/oauth2/introspect")
            .basic("svc", &secret)
            .body(body.into_bytes())
            .send()
            .await;
        assert_eq!(answer.status, 200, "{answer}");
        assert_eq!(answer.header("content-type"), Some("application/json"), "{answer}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{answer}");
        assert_eq!(answer.header("pragma"), Some("no-cache"), "{answer}");
    }
    let refused = server
        .token_form("grant_type=client_credentials")
        .basic("svc", "wrong")
        .send()
        .await;
    assert_eq!(refused.header("cache-control"), Some("no-store"), "{refused}");
}

#[tokio::test]
async fn a_14_tls_below_1_2_gets_no_handshake_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let pki = support::TestPki::write(dir.path(), "a14");
    let server = Server::builder()
        .args(&[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
        ])
        .start();
    let url = format!("https://localhost:{}/.well-known/jwks.json", server.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.addr.port());
    let curl = |extra: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--resolve", &resolve, "--cacert"])
            .arg(&pki.ca)
            .args(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    let old = curl(&["--tlsv1.0", "--tls-max", "1.1"]);
    assert!(
        !old.status.success() && !String::from_utf8_lossy(&old.stdout).contains("keys"),
        "a TLS 1.1 client was served: {}",
        String::from_utf8_lossy(&old.stdout)
    );
    let current = curl(&["--tlsv1.2"]);
    assert!(
        String::from_utf8_lossy(&current.stdout).contains("keys"),
        "{}",
        String::from_utf8_lossy(&current.stderr)
    );
}

#[tokio::test]
async fn a_15_x_forwarded_for_does_not_dodge_the_per_source_limit() {
    // Only failures that still cost argon2 are throttled: those against
    // secrets stored before check values existed. Give six clients one each.
    let server = Server::builder()
        .args(&["--failure-limit", "0", "--source-failure-limit", "3"])
        .start();
    let store = tessera_server::store::open(&server.store_url).await.unwrap();
    for i in 0..6 {
        let id = format!("legacy{i}");
        server.create_client(&id, &["--scope", "read"]);
        let (_, mut record) = tessera_server::admin::new_secret(0, None).await.unwrap();
        record.check = None;
        assert!(store.add_secret(&id, record, Some(0)).await.unwrap());
    }
    let mut statuses = Vec::new();
    for i in 0..6 {
        let answer = server
            .token_form("grant_type=client_credentials")
            .basic(&format!("legacy{i}"), "wrong")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("forwarded", format!("for=198.51.100.{i}"))
            .send()
            .await;
        statuses.push(answer.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "the fourth failure from one peer is throttled whatever the headers claim: {statuses:?}"
    );
}

// ---------------------------------------------------------------- B. Secrets and argon2

#[tokio::test]
async fn b_06_a_flood_of_random_credentials_is_bounded_and_answered_quickly_while_warm_clients_work() {
    let server = Server::builder()
        .args(&["--failure-limit", "0", "--source-failure-limit", "0"])
        .start();
    let secret = server.create_client("warm", &["--scope", "read"]);
    let warm = server
        .token_form("grant_type=client_credentials")
        .basic("warm", &secret);
    assert_eq!(warm.clone().send().await.status, 200);
    // Far more distinct credentials than there are hashing slots (one per core).
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let request = server
                .token_form("grant_type=client_credentials")
                .basic(&format!("random{i}"), &format!("guess{i}"));
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let answer = request.send().await;
                (answer.status, answer.oauth_error(), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let during = warm.clone().send().await;
    assert_eq!(
        during.status, 200,
        "the warm client is served during the flood: {during}"
    );
    let mut busy = 0;
    for answer in flood {
        let (status, code, took) = answer.await.unwrap();
        match status {
            401 => assert_eq!(code, "invalid_client"),
            503 => {
                assert_eq!(code, "temporarily_unavailable");
                busy += 1;
                assert!(took < Duration::from_secs(3), "a shed caller waited {took:?}");
            }
            other => panic!("a flood request got {other} {code}"),
        }
    }
    eprintln!("{busy} of 40 flood requests were shed with 503");
    assert!(
        hashing_settles(&server).await,
        "a hashing slot stayed taken after the flood"
    );
}

#[tokio::test]
async fn b_07_callers_that_give_up_do_not_free_their_hashing_slot_early() {
    let server = Server::builder()
        .args(&["--failure-limit", "0", "--source-failure-limit", "0"])
        .start();
    // gRPC callers with a 5 ms deadline, gone long before their hash ends.
    let mut given_up = 0;
    for i in 0..12 {
        let mut request = tonic::Request::new(issue_request(&format!("gone{i}"), "x"));
        request.set_timeout(Duration::from_millis(5));
        if server.grpc().await.issue_token(request).await.is_err() {
            given_up += 1;
        }
    }
    assert_eq!(given_up, 12);
    let metrics = server.http("GET", "/metrics").send().await.body;
    let busy: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_hashing_busy "))
        .unwrap()
        .parse()
        .unwrap();
    let permits = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    assert!(busy <= permits, "{busy} verifications at once with {permits} slots");
    assert!(hashing_settles(&server).await, "a slot stayed taken");
}

#[tokio::test]
async fn b_13_a_dump_of_the_store_holds_no_plaintext_secret() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let rotated = server.cli(&["client", "rotate-secret", "svc", "--json"]);
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(server.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("tessera.db") {
            dump.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(dump.len() > 4096, "the store files were not found");
    let dump = String::from_utf8_lossy(&dump);
    assert!(dump.contains("$argon2id$"), "secrets are stored as argon2id");
    for secret in [&secret, &new_secret] {
        assert!(!dump.contains(secret.as_str()), "a secret is in the store in the clear");
    }
}

// ---------------------------------------------------------------- C. Client assertions

#[tokio::test]
async fn c_04_hostile_kids_are_refused_without_a_500_on_both_faces() {
    let (server, key) = server_with_signer();
    let claims = assertion_claims(&server, "c04");
    let signature = key.sign(&claims).rsplit('.').next().unwrap().to_owned();
    for kid in [
        json!("../../../../etc/passwd"),
        json!("k1' OR '1'='1"),
        json!("k".repeat(8192)),
        json!(42),
        json!({"nested": ["k1"]}),
        json!(null),
    ] {
        let assertion = forge(&json!({"alg": "ES256", "kid": kid}), &claims, &signature);
        let (status, http, grpc) = assertion_outcomes(&server, &assertion).await;
        assert!(status < 500, "kid {kid}: HTTP {status}");
        assert!(
            ["invalid_client", "invalid_request"].contains(&http.as_str()),
            "kid {kid}: {http}"
        );
        assert_eq!(http, grpc, "kid {kid}: the faces disagree");
    }
}

#[tokio::test]
async fn c_05_jku_x5u_and_embedded_keys_in_the_header_are_never_fetched_or_used() {
    let (server, key) = server_with_signer();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap = format!("http://{}/keys", listener.local_addr().unwrap());
    // An attacker's own key, embedded or pointed to, signs the assertion.
    let attacker = ClientKey::unregistered("k1", KeyAlgorithm::Es256);
    let claims = assertion_claims(&server, "c05");
    let attacker_signature = attacker.sign(&claims).rsplit('.').next().unwrap().to_owned();
    let jwk: Value = serde_json::from_str(attacker.public_jwk()).unwrap();
    for header in [
        json!({"alg": "ES256", "kid": "k1", "jku": trap}),
        json!({"alg": "ES256", "kid": "k1", "x5u": trap}),
        json!({"alg": "ES256", "kid": "k1", "jwk": jwk}),
        json!({"alg": "ES256", "kid": "k1", "x5c": ["MIIB"]}),
    ] {
        let assertion = forge(&header, &claims, &attacker_signature);
        let (_, http, grpc) = assertion_outcomes(&server, &assertion).await;
        assert_eq!(
            (http.as_str(), grpc.as_str()),
            ("invalid_client", "invalid_client"),
            "{header}"
        );
    }
    let fetched = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(
        fetched.is_err(),
        "Tessera connected to a URL named in an assertion header"
    );
    // The registered key still works: the refusals were about the header, not the client.
    let (_, ok, _) = assertion_outcomes(&server, &key.sign(&assertion_claims(&server, "c05-ok"))).await;
    assert_eq!(ok, "ok");
}

#[tokio::test]
async fn c_06_a_flipped_signature_bit_or_a_borrowed_signature_is_refused() {
    let (server, key) = server_with_signer();
    let genuine = key.sign(&assertion_claims(&server, "c06-a"));
    let other = key.sign(&assertion_claims(&server, "c06-b"));
    let mut flipped = genuine.clone().into_bytes();
    let last = flipped.len() - 3;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let (head_a, _) = genuine.rsplit_once('.').unwrap();
    let (_, sig_b) = other.rsplit_once('.').unwrap();
    let borrowed = format!("{head_a}.{sig_b}");
    for (what, assertion) in [("flipped bit", flipped), ("borrowed signature", borrowed)] {
        let (_, http, grpc) = assertion_outcomes(&server, &assertion).await;
        assert_eq!(
            (http.as_str(), grpc.as_str()),
            ("invalid_client", "invalid_client"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn c_07_malformed_jwts_get_400_or_401_never_500_on_both_faces() {
    let (server, _key) = server_with_signer();
    let claims = assertion_claims(&server, "c07");
    let header = json!({"alg": "ES256", "kid": "k1"});
    let b64 = |text: &str| URL_SAFE_NO_PAD.encode(text);
    let cases = [
        ("one segment", b64(&header.to_string())),
        (
            "two segments",
            format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string())),
        ),
        ("four segments", format!("{}.a.b.c", b64(&header.to_string()))),
        (
            "padding",
            format!("{}==.{}==.AAAA", b64(&header.to_string()), b64(&claims.to_string())),
        ),
        ("header null", forge(&Value::Null, &claims, "AAAA")),
        (
            "duplicate keys",
            format!(
                "{}.{}.AAAA",
                b64(r#"{"alg":"ES256","alg":"none","kid":"k1"}"#),
                b64(r#"{"iss":"svc","iss":"evil"}"#)
            ),
        ),
        (
            "deep nesting",
            format!(
                "{}.{}.AAAA",
                b64(&header.to_string()),
                b64(&format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)))
            ),
        ),
        (
            "64 KiB",
            format!("{}.{}.AAAA", b64(&header.to_string()), "A".repeat(64 * 1024)),
        ),
        ("not base64", "!!!.???.***".to_owned()),
        ("empty segments", "..".to_owned()),
    ];
    for (what, assertion) in cases {
        let (status, http, grpc) = assertion_outcomes(&server, &assertion).await;
        assert!(status == 400 || status == 401, "{what}: HTTP {status} {http}");
        assert!(
            ["invalid_client", "invalid_request", "out_of_range"].contains(&grpc.as_str()),
            "{what}: gRPC {grpc}"
        );
    }
}

// ---------------------------------------------------------------- D. Issuance

#[tokio::test]
async fn d_01_scope_case_and_prefix_tricks_are_invalid_scope_on_both_faces() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "invoices:read"]);
    for scope in [
        "INVOICES:READ",
        "invoices",
        "invoices:read:all",
        "invoices:rea",
        "invoices:*",
    ] {
        let http = server
            .token_form(&format!("grant_type=client_credentials&scope={scope}"))
            .basic("svc", &secret)
            .send()
            .await;
        http.assert_error(400, "invalid_scope");
        let mut request = issue_request("svc", &secret);
        request.scopes = vec![scope.into()];
        let status = server.grpc().await.issue_token(request).await.unwrap_err();
        assert_eq!(grpc_oauth_error(&status), "invalid_scope", "{scope}");
    }
}

#[tokio::test]
async fn d_02_scope_characters_outside_the_rfc6749_3_3_grammar_are_invalid_scope() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    // %22 ", %5C \, é: none is an NQCHAR.
    for encoded in ["read%22", "re%5Cad", "r%C3%A9ad"] {
        let http = server
            .token_form(&format!("grant_type=client_credentials&scope={encoded}"))
            .basic("svc", &secret)
            .send()
            .await;
        http.assert_error(400, "invalid_scope");
    }
    // A control character is refused earlier, by the form parser (A-09).
    server
        .token_form("grant_type=client_credentials&scope=read%7F")
        .basic("svc", &secret)
        .send()
        .await
        .assert_error(400, "invalid_request");
    for scope in ["read\"", "re\\ad", "read\u{7f}", "réad"] {
        let mut request = issue_request("svc", &secret);
        request.scopes = vec![scope.into()];
        let status = server.grpc().await.issue_token(request).await.unwrap_err();
        assert_eq!(grpc_oauth_error(&status), "invalid_scope", "{scope:?}");
    }
}

#[tokio::test]
async fn d_07_every_token_is_an_rfc9068_at_jwt_with_our_kid_its_lifetime_and_a_unique_jti() {
    let server = Server::start();
    let secret = server.create_client(
        "svc",
        &["--scope", "read", "--audience", "https://api.test", "--ttl", "900"],
    );
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let http = server
            .token_form("grant_type=client_credentials")
            .basic("svc", &secret)
            .send()
            .await;
        tokens.push(http.json()["access_token"].as_str().unwrap().to_owned());
        let grpc = server
            .grpc()
            .await
            .issue_token(issue_request("svc", &secret))
            .await
            .unwrap();
        tokens.push(grpc.into_inner().access_token);
    }
    let mut jtis = std::collections::HashSet::new();
    for token in &tokens {
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert!(matches!(
            header.alg,
            jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::EdDSA | jsonwebtoken::Algorithm::RS256
        ));
        assert!(kids.contains(&header.kid.as_deref().unwrap()), "kid not in the JWKS");
        let claims = support::verify_with_http_jwks(&server, token).await;
        for claim in ["iss", "sub", "client_id", "aud", "exp", "iat", "jti", "scope"] {
            assert!(claims.get(claim).is_some(), "no {claim} in {claims}");
        }
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
        assert_eq!(claims["aud"], "https://api.test");
        assert!(
            jtis.insert(claims["jti"].as_str().unwrap().to_owned()),
            "a jti repeated"
        );
    }
}

// ---------------------------------------------------------------- E. Introspection

#[tokio::test]
async fn e_09_two_thousand_garbage_introspections_are_cheap_and_leave_nothing_behind() {
    let server = Server::start();
    let secret = server.create_client("rs", &["--scope", "tessera:introspect"]);
    let started = std::time::Instant::now();
    for i in 0..2000 {
        let answer = server
            .form("/oauth2/introspect")
            .basic("rs", &secret)
            .body(format!("token=eyJhbGciOiJFUzI1NiJ9.{i}.garbage").into_bytes())
            .send()
            .await;
        assert_eq!(answer.body, r#"{"active":false}"#, "{answer}");
    }
    eprintln!("2000 garbage introspections in {:?}", started.elapsed());
    let metrics = server.http("GET", "/metrics").send().await.body;
    assert!(
        metrics.contains("tessera_verified_token_cache_size 0"),
        "garbage must not fill the verified-token cache"
    );
}

// ---------------------------------------------------------------- F. Signing keys

#[tokio::test]
async fn f_04_the_jwks_has_public_members_only() {
    for alg in ["ES256", "EdDSA", "RS256"] {
        let server = Server::builder().args(&["--signing-alg", alg]).start();
        let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for key in jwks["keys"].as_array().unwrap() {
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(key.get(private).is_none(), "{alg}: private member {private} published");
            }
            assert_eq!(key["use"], "sig");
        }
        let grpc = server.grpc().await.get_jwks(pb::GetJwksRequest {}).await.unwrap();
        assert!(!grpc.into_inner().keys.is_empty());
    }
}

#[test]
fn f_05_a_symmetric_algorithm_for_access_tokens_is_refused_at_start_up() {
    for alg in ["HS256", "hs512", "none", "RS128"] {
        let out = std::process::Command::new(support::tessera_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--signing-alg", alg])
            .env("TESSERA_STORE", "sqlite:///nonexistent-dir-never-created/t.db")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{alg} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--signing-alg"), "{alg}: {stderr}");
    }
}

// ---------------------------------------------------------------- G. Logs

#[tokio::test]
async fn g_03_audit_lines_cover_issuance_failure_revocation_and_administration_with_ids() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let issued = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    let token = issued.json()["access_token"].as_str().unwrap().to_owned();
    let jti = support::verify_with_http_jwks(&server, &token).await["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .token_form("grant_type=client_credentials")
        .basic("svc", "wrong")
        .send()
        .await;
    server
        .form("/oauth2/revoke")
        .basic("svc", &secret)
        .body(format!("token={token}").into_bytes())
        .send()
        .await;
    let disable = server.cli(&["client", "disable", "svc"]);
    assert!(String::from_utf8_lossy(&disable.stderr).contains("client_disabled"));
    let log = async || server.stderr();
    assert!(
        eventually(Duration::from_secs(5), async || log().await.contains("token_revoked")).await,
        "{}",
        server.stderr()
    );
    let log = server.stderr();
    let line = |event: &str| {
        log.lines()
            .find(|l| l.contains(event))
            .unwrap_or_else(|| panic!("no {event} line in:\n{log}"))
            .to_owned()
    };
    let issued_line = line("token_issued");
    assert!(issued_line.contains("request_id=") && issued_line.contains("client_id=svc") && issued_line.contains(&jti));
    let failed = line("client_authentication_failed");
    assert!(
        failed.contains("request_id=") && failed.contains("client_id=svc"),
        "{failed}"
    );
    assert!(line("token_refused").contains("reason=\"invalid_client\""));
    let revoked = line("token_revoked");
    assert!(revoked.contains(&jti) && revoked.contains("request_id="), "{revoked}");
}

#[tokio::test]
async fn g_03_a_client_id_carrying_a_newline_cannot_forge_an_audit_line() {
    let server = Server::start();
    // The caller's client id is logged on a failed authentication; this one
    // tries to end that line and start a forged issuance line of its own.
    // The HTTP face refuses control characters in any parameter (400), so it
    // comes over gRPC, where a protobuf string may hold anything.
    let forged =
        "evil\n1999-01-01T00:00:00.000000Z  INFO tessera::audit: event=\"token_issued\" client_id=admin\u{1b}[2K";
    let status = server
        .grpc()
        .await
        .issue_token(support::issue_request(forged, "wrong"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        eventually(Duration::from_secs(5), async || server
            .stderr()
            .contains("client_authentication_failed"))
        .await,
        "{}",
        server.stderr()
    );
    let log = server.stderr();
    assert!(
        log.contains(r"client_id=evil\n1999"),
        "the id is logged, escaped:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("1999-01-01")),
        "a forged line reached the log:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "an escape sequence reached the log:\n{log}");
    assert!(!log.contains("token_issued"), "{log}");
}

// ---------------------------------------------------------------- H. gRPC

#[tokio::test]
async fn h_04_a_short_deadline_while_argon2_is_queued_is_deadline_exceeded_and_leaks_no_slot() {
    let server = Server::builder()
        .args(&["--failure-limit", "0", "--source-failure-limit", "0"])
        .start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    // Keep the hashing slots busy with cold requests (correct secrets never
    // seen before: wrong ones no longer reach argon2), and callers queued
    // behind them.
    let cold: Vec<_> = (0..16)
        .map(|i| {
            let id = format!("cold{i}");
            let secret = server.create_client(&id, &["--scope", "read"]);
            (id, secret)
        })
        .collect();
    let load: Vec<_> = cold
        .iter()
        .map(|(id, secret)| {
            let request = server.token_form("grant_type=client_credentials").basic(id, secret);
            tokio::spawn(async move { request.send().await.status })
        })
        .collect();
    let queued = async || {
        let metrics = server.http("GET", "/metrics").send().await.body;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("tessera_hashing_queue_depth "))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    };
    assert!(
        eventually(Duration::from_secs(5), queued).await,
        "the load never queued for argon2"
    );
    let mut request = tonic::Request::new(issue_request("svc", &secret));
    request.set_timeout(Duration::from_millis(50));
    let status = server.grpc().await.issue_token(request).await.unwrap_err();
    // The server answers DEADLINE_EXCEEDED at the deadline (unit test
    // `server::tests::a_call_past_its_grpc_timeout_is_answered_deadline_exceeded`);
    // tonic's client enforces the same deadline itself and may report it first.
    assert!(
        status.code() == tonic::Code::DeadlineExceeded
            || (status.code() == tonic::Code::Cancelled && status.message().contains("Timeout")),
        "{status:?}"
    );
    for answer in load {
        // Served after argon2, or 503 when the hashing queue sheds them.
        let status = answer.await.unwrap();
        assert!(status == 200 || status == 503, "{status}");
    }
    assert!(hashing_settles(&server).await, "a slot stayed taken");
    // The same caller without a deadline is served.
    server
        .grpc()
        .await
        .issue_token(issue_request("svc", &secret))
        .await
        .unwrap();
}

/// Wrong secrets whose gRPC deadline passes cost no argon2 at all (they are
/// refused by their check value first), so cancelling cannot be used to run
/// uncounted hashes.
#[tokio::test]
async fn h_04_wrong_secrets_past_their_deadline_run_no_argon2() {
    let server = Server::start();
    server.create_client("svc", &["--scope", "read"]);
    let hashed = async || server.metric("tessera_hashing_wait_seconds_count").await;
    let before = hashed().await;
    let mut grpc = server.grpc().await;
    for _ in 0..12 {
        let mut request = tonic::Request::new(issue_request("svc", "wrong"));
        request.set_timeout(Duration::from_millis(1));
        assert!(grpc.issue_token(request).await.is_err());
    }
    assert_eq!(hashed().await, before, "no argon2 ran for a wrong secret");
}

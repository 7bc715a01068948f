//! Fuzzing on stable Rust: property-based harnesses (proptest) that throw
//! generated hostile input at the HTTP shim's whole request path — the form
//! parser, the `Authorization` parser, credential resolution, the
//! client-assertion decoder and validator, the scope and audience parser,
//! and introspection and revocation of arbitrary tokens — in process, against
//! a real SQLite store.
//!
//! The property everywhere: no panic, no 5xx, and every refusal is a JSON
//! OAuth error. The CI run is a couple of thousand cases in total; for a long
//! run: `bench/fuzz.sh` (or `TESSERA_FUZZ_CASES=200000 cargo test --release
//! -p tessera-server --test fuzz`). A failure prints the shrunk request.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use tessera_server::admin::{self, NewClient};
use tessera_server::authority::{Authority, AuthorityConfig, ThrottleConfig};
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::keys::KeyAlgorithm;
use tessera_server::store::SqliteStore;
use tower::ServiceExt as _;

const ISSUER: &str = "https://tessera.fuzz";

/// One server for every case: a runtime, an authority on a temp store, and a
/// client `fz` whose secret the generators sometimes use, so that cases
/// reach past authentication.
struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    secret: String,
    token: String,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (router, secret, token) = runtime.block_on(async {
            let store = Arc::new(SqliteStore::open(dir.path().join("fuzz.db")).await.unwrap());
            let config = AuthorityConfig {
                issuer: ISSUER.into(),
                default_token_ttl: 3600,
                max_token_ttl: 7200,
                signing_alg: KeyAlgorithm::Es256,
                hashing_permits: 2,
                hashing_wait: Duration::from_secs(30),
                key_rotation: None,
                key_publish_ahead: Duration::from_secs(600),
                // Throttling would answer most cases with 429 before they reach the parsers' depths.
                throttle: ThrottleConfig {
                    client_failures: 0,
                    source_failures: 0,
                    window_secs: 60,
                },
                require_audience: false,
                max_assertion_lifetime_secs: 3600,
                federation: Default::default(),
                client_certificates: false,
                custody: std::sync::Arc::new(tessera_server::keys::KeyCustody::clear()),
            };
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let new = NewClient {
                client_id: "fz".into(),
                scopes: vec!["read".into(), "write".into(), "tessera:introspect".into()],
                audiences: vec!["https://api.fuzz".into()],
                token_ttl: None,
                bind_to_certificate: false,
            };
            let secret = admin::create_client(store.as_ref(), new, clock.now()).await.unwrap();
            let authority = Arc::new(Authority::new(config, store, clock).await.unwrap());
            let router = tessera_server::server::app(&tessera_server::health::Health::new(authority));
            let basic = STANDARD.encode(format!("fz:{}", secret.expose()));
            let response = router
                .clone()
                .oneshot(
                    http::Request::post("/oauth2/token")
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("authorization", format!("Basic {basic}"))
                        .body(Body::from("grant_type=client_credentials"))
                        .unwrap(),
                )
                .await
                .unwrap();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let token = json["access_token"].as_str().unwrap().to_owned();
            (router, secret.expose().to_owned(), token)
        });
        Harness {
            runtime,
            router,
            secret,
            token,
            _dir: dir,
        }
    })
}

fn cases() -> u32 {
    std::env::var("TESSERA_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400)
}

/// A generated request, kept printable for the failure report.
#[derive(Clone)]
struct FuzzRequest {
    path: &'static str,
    content_type: Option<String>,
    authorization: Vec<Vec<u8>>,
    body: Vec<u8>,
}

impl std::fmt::Debug for FuzzRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        f.debug_struct("FuzzRequest")
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field(
                "authorization",
                &self.authorization.iter().map(|v| lossy(v)).collect::<Vec<_>>(),
            )
            .field("body", &lossy(&self.body))
            .finish()
    }
}

/// Sends it and checks the property; the error names what broke.
fn check(request: &FuzzRequest) -> Result<(), String> {
    let h = harness();
    let mut builder = http::Request::post(request.path);
    if let Some(content_type) = &request.content_type {
        builder = builder.header("content-type", content_type.as_str());
    }
    for value in &request.authorization {
        match http::HeaderValue::from_bytes(value) {
            Ok(value) => builder = builder.header("authorization", value),
            Err(_) => return Ok(()), // not sendable over HTTP at all
        }
    }
    let http_request = builder.body(Body::from(request.body.clone())).unwrap();
    let (status, body) = h.runtime.block_on(async {
        let response = h.router.clone().oneshot(http_request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, body)
    });
    let text = String::from_utf8_lossy(&body);
    if status.is_server_error() {
        return Err(format!("{status} for {request:?}: {text}"));
    }
    if status.is_success() {
        return Ok(());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{status}, not JSON ({e}): {text}"))?;
    if !json["error"].is_string() {
        return Err(format!("{status} without an OAuth error: {text}"));
    }
    Ok(())
}

/// Text that parsers find awkward: percent-escapes (good and bad), `+`,
/// `&` and `=`, NUL and control characters, non-ASCII, long runs.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z:_.-]{0,12}",
        "(%[0-9A-Fa-f]{2}|%[G-Zg-z]{0,2}|[+&=;/]|[a-z]){0,24}",
        "\\PC{0,24}",
        "[\\x00-\\x1f\\x7f]{1,8}",
        Just("a".repeat(5000)),
        Just(String::new()),
    ]
}

fn parameter_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("grant_type".to_owned()),
        Just("client_id".to_owned()),
        Just("client_secret".to_owned()),
        Just("client_assertion_type".to_owned()),
        Just("client_assertion".to_owned()),
        Just("scope".to_owned()),
        Just("resource".to_owned()),
        Just("audience".to_owned()),
        Just("token".to_owned()),
        Just("token_type_hint".to_owned()),
        nasty_text(),
    ]
}

/// A JWT-shaped assertion: base64url JSON header and claims (sometimes
/// plausible, sometimes hostile), any signature.
fn assertion() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#.to_owned()),
        Just(r#"{"alg":"none"}"#.to_owned()),
        Just(r#"{"alg":"HS256","kid":"k1"}"#.to_owned()),
        Just(r#"{"alg":"ES256","kid":"../../etc/passwd"}"#.to_owned()),
        Just(r#"{"alg":"ES256","kid":{"a":[1,2,3]}}"#.to_owned()),
        Just(r#"{"alg":"ES256","jku":"http://127.0.0.1:1/"}"#.to_owned()),
        Just("null".to_owned()),
        "\\PC{0,40}",
    ];
    let claims = prop_oneof![
        Just(format!(
            r#"{{"iss":"fz","sub":"fz","aud":"{ISSUER}","exp":9999999999,"jti":"x"}}"#
        )),
        Just(r#"{"iss":"fz","sub":"fz","exp":"9999999999","iat":null}"#.to_owned()),
        Just(r#"{"iss":"fz","iss":"other"}"#.to_owned()),
        Just(format!("{}{}", "[".repeat(200), "]".repeat(200))),
        "\\PC{0,60}",
    ];
    let segments = prop_oneof![Just(3usize), 0usize..6];
    (header, claims, "[A-Za-z0-9_=+/-]{0,90}", segments).prop_map(|(header, claims, signature, segments)| {
        let parts = [
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            signature,
        ];
        (0..segments)
            .map(|i| parts[i % 3].as_str())
            .collect::<Vec<_>>()
            .join(".")
    })
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let h = harness();
    let known = prop_oneof![
        Just("grant_type=client_credentials".to_owned()),
        Just("client_id=fz".to_owned()),
        Just(format!("client_secret={}", h.secret)),
        Just(format!("token={}", h.token)),
        Just("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer".to_owned()),
        assertion().prop_map(|a| format!("client_assertion={a}")),
        (parameter_name(), nasty_text()).prop_map(|(k, v)| format!("{k}={v}")),
        nasty_text(),
    ];
    prop_oneof![
        prop::collection::vec(known, 0..8).prop_map(|pairs| pairs.join("&").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn authorization() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let h = harness();
    let one = prop_oneof![
        Just(format!("Basic {}", STANDARD.encode(format!("fz:{}", h.secret))).into_bytes()),
        Just(format!("Bearer {}", h.token).into_bytes()),
        nasty_text().prop_map(|t| format!("Basic {}", STANDARD.encode(t)).into_bytes()),
        nasty_text().prop_map(|t| format!("Basic {t}").into_bytes()),
        nasty_text().prop_map(|t| format!("Bearer {t}").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..60),
    ];
    prop::collection::vec(one, 0..3)
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        1 => Just(Some("application/x-www-form-urlencoded; charset=UTF-8".to_owned())),
        1 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => "\\PC{0,30}".prop_map(Some),
    ]
}

fn request(path: &'static str) -> impl Strategy<Value = FuzzRequest> {
    (content_type(), authorization(), form_body()).prop_map(move |(content_type, authorization, body)| FuzzRequest {
        path,
        content_type,
        authorization,
        body,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// The form and `Authorization` parsers, credential resolution, the
    /// assertion decoder, and the scope and audience parser, via the token endpoint.
    #[test]
    fn the_token_endpoint_never_fails_on_hostile_input(request in request("/oauth2/token")) {
        check(&request).map_err(TestCaseError::fail)?;
    }

    /// The introspection input path: arbitrary tokens and callers.
    #[test]
    fn introspection_never_fails_on_hostile_input(request in request("/oauth2/introspect")) {
        check(&request).map_err(TestCaseError::fail)?;
    }

    /// Revocation of arbitrary tokens by arbitrary callers.
    #[test]
    fn revocation_never_fails_on_hostile_input(request in request("/oauth2/revoke")) {
        check(&request).map_err(TestCaseError::fail)?;
    }
}

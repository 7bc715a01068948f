//! The core's behaviour, one test per rule, against a real SQLite store and
//! an injected clock.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::Value;

use super::*;
use crate::admin::{self, NewClient};
use crate::clock::ManualClock;
use crate::store::{SecretRecord, SqliteStore};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://tessera.test";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    authority: Authority,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).await.unwrap());
    let clock = Arc::new(ManualClock::new(NOW));
    let config = AuthorityConfig {
        issuer: ISSUER.into(),
        default_token_ttl: 3600,
        max_token_ttl: 7200,
        signing_alg: KeyAlgorithm::Es256,
        hashing_permits: 2,
        hashing_wait: Duration::from_secs(5),
        key_rotation: None,
        key_publish_ahead: Duration::from_secs(600),
        throttle: ThrottleConfig::default(),
        require_audience: false,
        max_assertion_lifetime_secs: 3600,
    };
    let authority = Authority::new(config, store.clone(), clock.clone()).await.unwrap();
    Fixture {
        _dir: dir,
        store,
        clock,
        authority,
    }
}

impl Fixture {
    async fn client(&self, id: &str, scopes: &[&str], audiences: &[&str], ttl: Option<u32>) -> ClientSecret {
        let new = NewClient {
            client_id: id.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            token_ttl: ttl,
        };
        admin::create_client(self.store.as_ref(), new, NOW).await.unwrap()
    }

    async fn issue(&self, request: TokenRequest) -> Result<IssuedToken, AuthError> {
        self.authority.issue(request).await
    }

    fn claims(&self, token: &IssuedToken) -> Value {
        let ring = self.authority.key_ring();
        let mut validation = Validation::new(ring.signer(NOW).algorithm().jwt_algorithm());
        validation.validate_exp = false; // the manual clock is in the future
        validation.validate_aud = false;
        decode::<Value>(
            token.access_token.expose(),
            ring.signer(NOW).decoding_key(),
            &validation,
        )
        .unwrap()
        .claims
    }
}

fn post(id: &str, secret: &ClientSecret) -> TokenRequest {
    TokenRequest {
        grant_type: Some(CLIENT_CREDENTIALS.into()),
        credentials: PresentedCredentials {
            client_id: Some(id.into()),
            client_secret: Some(secret.clone()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn with_scopes(mut request: TokenRequest, scopes: &[&str]) -> TokenRequest {
    request.scopes = scopes.iter().map(|s| s.to_string()).collect();
    request
}

fn with_audiences(mut request: TokenRequest, audiences: &[&str]) -> TokenRequest {
    request.audiences = audiences.iter().map(|s| s.to_string()).collect();
    request
}

#[tokio::test]
async fn issued_token_is_an_rfc9068_jwt_with_every_claim() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &["https://api.test"], None).await;
    let token = f.issue(post("svc", &secret)).await.unwrap();
    let header = decode_header(token.access_token.expose()).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 section 2.1");
    assert_eq!(header.kid.as_deref(), Some(f.authority.key_ring().signer(NOW).kid()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let claims = f.claims(&token);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["aud"], "https://api.test");
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["nbf"], NOW);
    assert_eq!(claims["exp"], NOW + 3600);
    assert_eq!(claims["jti"], token.jti.as_str());
    assert!(token.jti.len() >= 22, "jti carries at least 128 bits");
}

#[tokio::test]
async fn every_token_gets_a_fresh_jti() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let a = f.issue(post("svc", &secret)).await.unwrap();
    let b = f.issue(post("svc", &secret)).await.unwrap();
    assert_ne!(a.jti, b.jti);
}

#[tokio::test]
async fn no_scope_requested_grants_the_clients_scopes() {
    let f = fixture().await;
    let secret = f.client("svc", &["read", "write"], &[], None).await;
    let token = f.issue(post("svc", &secret)).await.unwrap();
    assert_eq!(token.scopes, ["read", "write"]);
}

#[tokio::test]
async fn a_requested_subset_of_scopes_is_granted_exactly() {
    let f = fixture().await;
    let secret = f.client("svc", &["read", "write"], &[], None).await;
    let token = f.issue(with_scopes(post("svc", &secret), &["write"])).await.unwrap();
    assert_eq!(token.scopes, ["write"]);
    assert_eq!(f.claims(&token)["scope"], "write");
}

#[tokio::test]
async fn repeated_scopes_are_granted_once() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let token = f
        .issue(with_scopes(post("svc", &secret), &["read", "read"]))
        .await
        .unwrap();
    assert_eq!(token.scopes, ["read"]);
}

#[tokio::test]
async fn scopes_beyond_the_client_are_invalid_scope_rfc6749_5_2() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    for extra in ["admin", "READ", "rea", "read:all", "read "] {
        let err = f
            .issue(with_scopes(post("svc", &secret), &["read", extra]))
            .await
            .unwrap_err();
        assert_eq!(err.oauth_code(), "invalid_scope", "scope {extra:?}");
    }
}

/// A client registered with a scope named twice, not next to each other,
/// holds it once, in the order first given.
#[tokio::test]
async fn a_client_registered_with_repeated_scopes_and_audiences_holds_each_once() {
    let f = fixture().await;
    f.client("svc", &["a", "b", "a"], &["https://x", "https://y", "https://x"], None)
        .await;
    let stored = f.store.client("svc").await.unwrap().unwrap();
    assert_eq!(stored.scopes, ["a", "b"]);
    assert_eq!(stored.audiences, ["https://x", "https://y"]);
}

#[tokio::test]
async fn scope_outside_the_rfc6749_3_3_grammar_is_invalid_scope() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    for bad in ["a\"b", "a\\b", "é"] {
        let err = f.issue(with_scopes(post("svc", &secret), &[bad])).await.unwrap_err();
        assert_eq!(err.oauth_code(), "invalid_scope", "scope {bad:?}");
    }
}

#[tokio::test]
async fn too_many_scopes_are_refused_as_invalid_request() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let many: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
    let mut request = post("svc", &secret);
    request.scopes = many;
    assert_eq!(f.issue(request).await.unwrap_err().oauth_code(), "invalid_request");
}

#[tokio::test]
async fn audiences_default_to_the_clients_and_may_be_narrowed() {
    let f = fixture().await;
    let secret = f
        .client("svc", &["read"], &["https://a.test", "https://b.test"], None)
        .await;
    let all = f.issue(post("svc", &secret)).await.unwrap();
    assert_eq!(
        f.claims(&all)["aud"],
        serde_json::json!(["https://a.test", "https://b.test"])
    );
    let one = f
        .issue(with_audiences(post("svc", &secret), &["https://b.test"]))
        .await
        .unwrap();
    assert_eq!(f.claims(&one)["aud"], "https://b.test");
}

#[tokio::test]
async fn an_audience_not_allowed_is_invalid_target_rfc8707() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &["https://a.test"], None).await;
    let err = f
        .issue(with_audiences(post("svc", &secret), &["https://evil.test"]))
        .await
        .unwrap_err();
    assert_eq!(err.oauth_code(), "invalid_target");
}

#[tokio::test]
async fn a_client_without_audiences_gets_tokens_for_the_issuer_never_an_empty_aud() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let token = f.issue(post("svc", &secret)).await.unwrap();
    assert_eq!(f.claims(&token)["aud"], ISSUER);
}

#[tokio::test]
async fn client_lifetime_override_applies_and_is_capped() {
    let f = fixture().await;
    let short = f.client("short", &["read"], &[], Some(60)).await;
    let long = f.client("long", &["read"], &[], Some(999_999)).await;
    let token = f.issue(post("short", &short)).await.unwrap();
    assert_eq!(token.expires_in, 60);
    assert_eq!(f.claims(&token)["exp"], NOW + 60);
    assert_eq!(
        f.issue(post("long", &long)).await.unwrap().expires_in,
        7200,
        "capped by max_token_ttl"
    );
}

#[tokio::test]
async fn unknown_client_wrong_secret_and_disabled_client_get_one_identical_error() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let off = f.client("off", &["read"], &[], None).await;
    f.store.set_client_disabled("off", true).await.unwrap();
    let wrong = ClientSecret::new("not-the-secret");
    let errors = [
        f.issue(post("nobody", &secret)).await.unwrap_err(),
        f.issue(post("svc", &wrong)).await.unwrap_err(),
        f.issue(post("off", &off)).await.unwrap_err(),
        f.issue(post("SVC", &secret)).await.unwrap_err(),
        f.issue(post("svc ", &secret)).await.unwrap_err(),
    ];
    for err in &errors {
        assert_eq!(
            *err,
            AuthError::InvalidClient {
                challenge: Challenge::None
            }
        );
    }
}

#[tokio::test]
async fn an_expired_secret_no_longer_authenticates() {
    let f = fixture().await;
    f.client("svc", &["read"], &[], None).await;
    let (secret, mut record) = admin::new_secret(NOW, Some(NOW + 60)).await.unwrap();
    record.secret_id = "short-lived".into();
    f.store.add_secret("svc", record, Some(NOW)).await.unwrap();
    f.authority.sync_with_store().await.unwrap();
    assert!(f.issue(post("svc", &secret)).await.is_ok());
    f.clock.advance(60);
    assert_eq!(
        f.issue(post("svc", &secret)).await.unwrap_err().oauth_code(),
        "invalid_client"
    );
}

#[tokio::test]
async fn basic_credentials_authenticate_and_failures_ask_for_basic() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let basic = |secret: ClientSecret| TokenRequest {
        grant_type: Some(CLIENT_CREDENTIALS.into()),
        credentials: PresentedCredentials {
            authorization: Some(Authorization::Basic {
                client_id: "svc".into(),
                secret,
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(f.issue(basic(secret)).await.is_ok());
    let err = f.issue(basic(ClientSecret::new("wrong"))).await.unwrap_err();
    assert_eq!(
        err,
        AuthError::InvalidClient {
            challenge: Challenge::Basic
        }
    );
}

#[tokio::test]
async fn two_authentication_methods_are_invalid_request_rfc6749_2_3() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let mut request = post("svc", &secret);
    request.credentials.authorization = Some(Authorization::Basic {
        client_id: "svc".into(),
        secret: secret.clone(),
    });
    assert_eq!(f.issue(request).await.unwrap_err().oauth_code(), "invalid_request");
}

#[tokio::test]
async fn a_body_client_id_that_contradicts_basic_is_invalid_request() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let request = TokenRequest {
        grant_type: Some(CLIENT_CREDENTIALS.into()),
        credentials: PresentedCredentials {
            authorization: Some(Authorization::Basic {
                client_id: "svc".into(),
                secret,
            }),
            client_id: Some("other".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(f.issue(request).await.unwrap_err().oauth_code(), "invalid_request");
}

#[tokio::test]
async fn a_secret_without_client_id_is_invalid_request() {
    let f = fixture().await;
    let mut request = post("svc", &ClientSecret::new("x"));
    request.credentials.client_id = None;
    assert_eq!(f.issue(request).await.unwrap_err().oauth_code(), "invalid_request");
}

#[tokio::test]
async fn no_credentials_at_all_is_invalid_client() {
    let f = fixture().await;
    let request = TokenRequest {
        grant_type: Some(CLIENT_CREDENTIALS.into()),
        ..Default::default()
    };
    assert_eq!(f.issue(request).await.unwrap_err().oauth_code(), "invalid_client");
}

#[tokio::test]
async fn grant_type_is_required_and_only_client_credentials_is_served() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let mut missing = post("svc", &secret);
    missing.grant_type = None;
    assert_eq!(f.issue(missing).await.unwrap_err().oauth_code(), "invalid_request");
    for other in ["password", "authorization_code", "refresh_token", "urn:x"] {
        let mut request = post("svc", &secret);
        request.grant_type = Some(other.into());
        assert_eq!(
            f.issue(request).await.unwrap_err().oauth_code(),
            "unsupported_grant_type",
            "{other}"
        );
    }
}

#[tokio::test]
async fn oversized_client_id_and_secret_are_refused_before_lookup() {
    let f = fixture().await;
    let long_id = "a".repeat(MAX_CLIENT_ID_LEN + 1);
    let err = f.issue(post(&long_id, &ClientSecret::new("x"))).await.unwrap_err();
    assert_eq!(err.oauth_code(), "invalid_request");
    let long_secret = ClientSecret::new("s".repeat(64 * 1024));
    let err = f.issue(post("svc", &long_secret)).await.unwrap_err();
    assert_eq!(err.oauth_code(), "invalid_request");
}

#[tokio::test]
async fn a_client_disabled_in_the_store_is_refused_after_the_next_sync() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    assert!(f.issue(post("svc", &secret)).await.is_ok(), "warms the hot copy");
    f.store.set_client_disabled("svc", true).await.unwrap();
    assert!(f.authority.sync_with_store().await.unwrap(), "the change counter moved");
    assert_eq!(
        f.issue(post("svc", &secret)).await.unwrap_err().oauth_code(),
        "invalid_client"
    );
}

#[tokio::test]
async fn a_client_created_after_start_gets_a_token_at_once() {
    let f = fixture().await;
    assert!(f.issue(post("late", &ClientSecret::new("x"))).await.is_err());
    let secret = f.client("late", &["read"], &[], None).await;
    assert!(
        f.issue(post("late", &secret)).await.is_ok(),
        "a cache miss reads the store"
    );
}

#[tokio::test]
async fn a_restart_keeps_the_signing_key() {
    let f = fixture().await;
    let kid = f.authority.key_ring().signer(NOW).kid().to_owned();
    let config = f.authority.config.clone();
    let again = Authority::new(config, f.store.clone(), f.clock.clone()).await.unwrap();
    assert_eq!(again.key_ring().signer(NOW).kid(), kid);
    assert_eq!(again.jwks().len(), 1);
}

#[tokio::test]
async fn hostile_argon2_parameters_in_the_store_fail_closed() {
    let f = fixture().await;
    f.client("svc", &["read"], &[], None).await;
    let hostile = SecretRecord {
        secret_id: "x".into(),
        phc: "$argon2id$v=19$m=4194304,t=1000,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        check: None,
        created_at: NOW,
        expires_at: None,
    };
    f.store.add_secret("svc", hostile, Some(NOW)).await.unwrap();
    f.authority.sync_with_store().await.unwrap();
    let err = f.issue(post("svc", &ClientSecret::new("anything"))).await.unwrap_err();
    assert_eq!(err.oauth_code(), "invalid_client");
}

// ---- Introspection (RFC 7662), revocation (RFC 7009), key rotation ----

mod resource_server {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    /// A fixture with a resource server allowed to introspect, and a service.
    async fn fixture_with_introspector() -> (Fixture, ClientSecret, ClientSecret) {
        let f = fixture().await;
        let rs = f.client("rs", &[INTROSPECT_SCOPE], &[], None).await;
        let svc = f.client("svc", &["read"], &["https://api.test"], None).await;
        (f, rs, svc)
    }

    fn basic(id: &str, secret: &ClientSecret) -> PresentedCredentials {
        PresentedCredentials {
            authorization: Some(Authorization::Basic {
                client_id: id.into(),
                secret: secret.clone(),
            }),
            ..Default::default()
        }
    }

    impl Fixture {
        async fn token(&self, id: &str, secret: &ClientSecret) -> String {
            self.issue(post(id, secret)).await.unwrap().access_token.into_inner()
        }

        async fn active(&self, rs: &ClientSecret, token: &str) -> Option<ActiveToken> {
            self.authority.introspect(basic("rs", rs), token).await.unwrap()
        }

        /// Signs arbitrary claims with the current key, as Tessera would.
        fn forge_with_our_key(&self, claims: Value) -> String {
            self.authority
                .key_ring()
                .signer(self.clock.now())
                .sign_jwt(&claims)
                .unwrap()
        }

        fn valid_claims(&self) -> Value {
            let now = self.clock.now();
            json!({"iss": ISSUER, "sub": "svc", "client_id": "svc", "aud": "https://api.test", "scope": "read",
                   "exp": now + 60, "iat": now, "nbf": now, "jti": "forged-jti"})
        }

        async fn private_key_der(&self) -> Vec<u8> {
            self.store.signing_keys().await.unwrap().pop().unwrap().private_pkcs8
        }
    }

    #[tokio::test]
    async fn a_valid_token_introspects_active_with_its_claims_rfc7662_2_2() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let active = f.active(&rs, &token).await.expect("active");
        assert_eq!(active.client_id, "svc");
        assert_eq!(active.sub, "svc");
        assert_eq!(active.scopes, ["read"]);
        assert_eq!(active.audiences, ["https://api.test"]);
        assert_eq!(active.iss, ISSUER);
        assert_eq!((active.iat, active.nbf, active.exp), (NOW, NOW, NOW + 3600));
    }

    #[tokio::test]
    async fn introspection_needs_an_authenticated_caller_rfc7662_2_1() {
        let (f, _rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let anonymous = f
            .authority
            .introspect(PresentedCredentials::default(), &token)
            .await
            .unwrap_err();
        assert_eq!(anonymous.oauth_code(), "invalid_client");
        let wrong = f
            .authority
            .introspect(basic("rs", &ClientSecret::new("nope")), &token)
            .await
            .unwrap_err();
        assert_eq!(
            wrong,
            AuthError::InvalidClient {
                challenge: Challenge::Basic
            }
        );
        let bad_bearer = f.authority.introspect(bearer("garbage"), &token).await.unwrap_err();
        assert_eq!(bad_bearer.oauth_code(), "invalid_client");
    }

    #[tokio::test]
    async fn introspection_needs_the_introspect_scope() {
        let (f, _rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let err = f.authority.introspect(basic("svc", &svc), &token).await.unwrap_err();
        assert_eq!(err.oauth_code(), "unauthorized_client");
    }

    #[tokio::test]
    async fn a_bearer_token_with_the_introspect_scope_may_introspect() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let rs_token = f.token("rs", &rs).await;
        let token = f.token("svc", &svc).await;
        assert!(
            f.authority
                .introspect(bearer(rs_token), &token)
                .await
                .unwrap()
                .is_some()
        );
        // A token for Tessera itself (no registered audience) of a client
        // without the scope: authenticated, not allowed.
        let plain = f.client("plain", &["read"], &[], None).await;
        let plain_token = f.token("plain", &plain).await;
        let err = f.authority.introspect(bearer(plain_token), &token).await.unwrap_err();
        assert_eq!(err.oauth_code(), "unauthorized_client");
    }

    #[tokio::test]
    async fn malformed_tokens_are_inactive() {
        let (f, rs, _) = fixture_with_introspector().await;
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        for garbage in [
            "",
            "garbage",
            "a.b",
            "a.b.c",
            "a.b.c.d",
            "..",
            &huge,
            "eyJhbGciOiJub25lIn0.e30.",
        ] {
            assert_eq!(f.active(&rs, garbage).await, None, "{garbage:.40}");
        }
    }

    #[tokio::test]
    async fn a_token_with_a_flipped_signature_bit_is_inactive() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let (body, signature) = token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
        raw[10] ^= 1;
        let tampered = format!("{body}.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(f.active(&rs, &tampered).await, None);
        // Header and payload of one token with the signature of another.
        let other = f.token("svc", &svc).await;
        let spliced = format!("{body}.{}", other.rsplit_once('.').unwrap().1);
        assert_eq!(f.active(&rs, &spliced).await, None);
    }

    #[tokio::test]
    async fn alg_none_in_any_casing_is_inactive_rfc8725_2_1() {
        let (f, rs, _) = fixture_with_introspector().await;
        let kid = f.authority.key_ring().signer(NOW).kid().to_owned();
        let payload = URL_SAFE_NO_PAD.encode(f.valid_claims().to_string());
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid, "typ": "at+jwt"}).to_string());
            assert_eq!(f.active(&rs, &format!("{header}.{payload}.")).await, None, "alg {alg}");
        }
    }

    #[tokio::test]
    async fn hs256_keyed_with_our_public_key_is_inactive_rfc8725_2_1() {
        let (f, rs, _) = fixture_with_introspector().await;
        let signer = f.authority.key_ring().signer(NOW).clone();
        let jwk = serde_json::to_string(signer.public_jwk()).unwrap();
        let x = signer.public_jwk().x.clone().unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(signer.kid().to_owned());
        header.typ = Some("at+jwt".into());
        for secret in [jwk.as_bytes(), x.as_bytes(), &URL_SAFE_NO_PAD.decode(&x).unwrap()] {
            let token = encode(&header, &f.valid_claims(), &EncodingKey::from_secret(secret)).unwrap();
            assert_eq!(f.active(&rs, &token).await, None);
        }
    }

    #[tokio::test]
    async fn a_token_of_ours_with_the_wrong_typ_is_inactive_rfc9068_4() {
        let (f, rs, _) = fixture_with_introspector().await;
        let key = EncodingKey::from_ec_der(&f.private_key_der().await);
        for typ in [Some("JWT"), None, Some("id_token")] {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(f.authority.key_ring().signer(NOW).kid().to_owned());
            header.typ = typ.map(str::to_owned);
            let token = encode(&header, &f.valid_claims(), &key).unwrap();
            assert_eq!(f.active(&rs, &token).await, None, "typ {typ:?}");
        }
        // The control: the same key and claims with typ at+jwt are active.
        assert!(f.active(&rs, &f.forge_with_our_key(f.valid_claims())).await.is_some());
    }

    #[tokio::test]
    async fn an_unknown_kid_is_inactive() {
        let (f, rs, _) = fixture_with_introspector().await;
        let key = EncodingKey::from_ec_der(&f.private_key_der().await);
        for kid in [Some("unknown"), None, Some("../../etc/passwd"), Some("' OR 1=1 --")] {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = kid.map(str::to_owned);
            header.typ = Some("at+jwt".into());
            let token = encode(&header, &f.valid_claims(), &key).unwrap();
            assert_eq!(f.active(&rs, &token).await, None, "kid {kid:?}");
        }
    }

    #[tokio::test]
    async fn expired_and_not_yet_valid_tokens_are_inactive() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let mut early = f.valid_claims();
        early["nbf"] = json!(NOW + 3600);
        let early = f.forge_with_our_key(early);
        assert_eq!(f.active(&rs, &early).await, None, "nbf an hour ahead");
        f.clock.advance(3599);
        assert!(f.active(&rs, &token).await.is_some(), "one second before exp");
        f.clock.advance(1);
        assert_eq!(f.active(&rs, &token).await, None, "at exp");
    }

    #[tokio::test]
    async fn another_issuers_token_signed_with_our_key_is_inactive() {
        let (f, rs, _) = fixture_with_introspector().await;
        let mut claims = f.valid_claims();
        claims["iss"] = json!("https://evil.test");
        assert_eq!(f.active(&rs, &f.forge_with_our_key(claims)).await, None);
    }

    #[tokio::test]
    async fn time_claims_of_the_wrong_json_type_are_inactive_threats_c_10() {
        let (f, rs, _) = fixture_with_introspector().await;
        for (claim, value) in [
            ("exp", json!("9999999999")),
            ("exp", json!(9_999_999_999.5)),
            ("nbf", json!(null)),
        ] {
            let mut claims = f.valid_claims();
            claims[claim] = value.clone();
            assert_eq!(
                f.active(&rs, &f.forge_with_our_key(claims)).await,
                None,
                "{claim}: {value}"
            );
        }
    }

    #[tokio::test]
    async fn tokens_of_a_disabled_or_deleted_client_are_inactive_threats_b_11() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        f.store.set_client_disabled("svc", true).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None, "disabled");
        f.store.set_client_disabled("svc", false).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert!(f.active(&rs, &token).await.is_some(), "enabled again");
        f.store.delete_client("svc").await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None, "deleted");
    }

    /// A client deleted and registered again under the same id does not
    /// inherit the tokens of the one before.
    #[tokio::test]
    async fn a_client_registered_again_under_a_deleted_id_does_not_inherit_its_tokens() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        f.store.delete_client("svc").await.unwrap();
        let new = NewClient {
            client_id: "svc".into(),
            scopes: vec!["read".into()],
            audiences: vec!["https://api.test".into()],
            token_ttl: None,
        };
        admin::create_client(f.store.as_ref(), new, NOW + 10).await.unwrap();
        f.clock.advance(10);
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None);
    }

    /// A revocation accepted while the token's client is disabled is
    /// recorded, so the token stays revoked once the client is enabled again.
    #[tokio::test]
    async fn a_revocation_made_while_the_client_is_disabled_holds_after_it_is_enabled() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let admin = f.client("admin", &[REVOKE_SCOPE], &[], None).await;
        let token = f.token("svc", &svc).await;
        f.store.set_client_disabled("svc", true).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        f.authority.revoke(basic("admin", &admin), &token).await.unwrap();
        assert_eq!(f.store.revoked_tokens(NOW).await.unwrap().len(), 1, "recorded");
        f.store.set_client_disabled("svc", false).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None, "still revoked after enable");
    }

    /// A token a client sent to some resource server (its `aud` is that
    /// server) does not let the server act as the client at introspection
    /// or revocation: a bearer caller's token must be issued for Tessera.
    #[tokio::test]
    async fn a_bearer_token_for_another_audience_is_not_a_caller() {
        let f = fixture().await;
        let svc = f
            .client("svc", &["read", INTROSPECT_SCOPE], &["https://api.test"], None)
            .await;
        let for_api = f.token("svc", &svc).await;
        let other = f.token("svc", &svc).await;
        let err = f
            .authority
            .introspect(bearer(for_api.clone()), &other)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::InvalidClient {
                challenge: Challenge::Bearer
            }
        );
        let err = f.authority.revoke(bearer(for_api), &other).await.unwrap_err();
        assert_eq!(err.oauth_code(), "invalid_client");
        assert!(f.store.revoked_tokens(NOW).await.unwrap().is_empty(), "nothing revoked");
    }

    /// Introspection and revocation callers with wrong credentials cost no
    /// argon2, from any number of client ids.
    #[tokio::test]
    async fn failed_introspection_callers_cost_no_argon2() {
        let (f, _rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let runs = f.authority.hashing_runs();
        for i in 0..120 {
            let mut caller = basic(&format!("id-{i}"), &ClientSecret::generate());
            caller.source = Some("192.0.2.5".parse().unwrap());
            let err = f.authority.introspect(caller, &token).await.unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client");
        }
        assert_eq!(f.authority.hashing_runs(), runs);
    }

    #[tokio::test]
    async fn a_client_revokes_its_own_token_rfc7009_2() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let kept = f.token("svc", &svc).await;
        f.authority.revoke(basic("svc", &svc), &token).await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None);
        assert!(f.active(&rs, &kept).await.is_some(), "only that token");
        assert_eq!(f.authority.revoked_count(), 1);
    }

    #[tokio::test]
    async fn revoking_an_invalid_or_revoked_token_succeeds_rfc7009_2_2() {
        let (f, _rs, svc) = fixture_with_introspector().await;
        f.authority.revoke(basic("svc", &svc), "garbage").await.unwrap();
        let token = f.token("svc", &svc).await;
        f.authority.revoke(basic("svc", &svc), &token).await.unwrap();
        f.authority.revoke(basic("svc", &svc), &token).await.unwrap();
    }

    #[tokio::test]
    async fn a_client_cannot_revoke_another_clients_token_threats_e_07() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let other = f.client("other", &["read"], &[], None).await;
        let token = f.token("svc", &svc).await;
        let err = f.authority.revoke(basic("other", &other), &token).await.unwrap_err();
        assert_eq!(err.oauth_code(), "unauthorized_client");
        assert!(f.active(&rs, &token).await.is_some(), "still active");
        let admin = f.client("admin", &[REVOKE_SCOPE], &[], None).await;
        f.authority.revoke(basic("admin", &admin), &token).await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None, "tessera:revoke may revoke any token");
    }

    #[tokio::test]
    async fn revocations_survive_a_restart() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        f.authority.revoke(basic("svc", &svc), &token).await.unwrap();
        let restarted = Authority::new(f.authority.config.clone(), f.store.clone(), f.clock.clone())
            .await
            .unwrap();
        assert_eq!(restarted.introspect(basic("rs", &rs), &token).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_revocation_made_elsewhere_applies_after_the_next_sync() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        let other_replica = Authority::new(f.authority.config.clone(), f.store.clone(), f.clock.clone())
            .await
            .unwrap();
        other_replica.revoke(basic("svc", &svc), &token).await.unwrap();
        assert!(f.active(&rs, &token).await.is_some(), "not yet seen");
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None);
    }

    #[tokio::test]
    async fn a_rotated_key_signs_only_after_the_publish_ahead_delay_and_old_tokens_stay_valid() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let old_kid = f.authority.key_ring().signer(NOW).kid().to_owned();
        let before = f.token("svc", &svc).await;
        let rotated = admin::rotate_key(f.store.as_ref(), None, NOW, 600).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        let kids: Vec<_> = f.authority.jwks().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, [old_kid.clone(), rotated.kid.clone()], "published at once");
        let during = f.token("svc", &svc).await;
        assert_eq!(decode_header(&during).unwrap().kid.unwrap(), old_kid, "not signing yet");
        f.clock.advance(600);
        let after = f.token("svc", &svc).await;
        assert_eq!(
            decode_header(&after).unwrap().kid.unwrap(),
            rotated.kid,
            "signing after the delay"
        );
        assert!(
            f.active(&rs, &before).await.is_some(),
            "an old token still introspects active"
        );
        // The old key leaves the JWKS once its last token (3600 s, capped at 7200 s) expired.
        f.clock.advance(7200 + crate::keys::RETIREMENT_MARGIN_SECS);
        let kids: Vec<_> = f.authority.jwks().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, [rotated.kid]);
    }

    #[tokio::test]
    async fn a_revoked_key_leaves_the_jwks_its_tokens_go_inactive_and_a_fresh_key_signs() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let compromised = f.authority.key_ring().signer(NOW).kid().to_owned();
        let token = f.token("svc", &svc).await;
        let replacement = admin::revoke_key(f.store.as_ref(), &compromised, NOW)
            .await
            .unwrap()
            .expect("replacement");
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None, "its tokens are inactive before exp");
        let kids: Vec<_> = f.authority.jwks().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, std::slice::from_ref(&replacement.kid));
        let fresh = f.token("svc", &svc).await;
        assert_eq!(
            decode_header(&fresh).unwrap().kid.unwrap(),
            replacement.kid,
            "signs at once"
        );
        assert!(f.active(&rs, &fresh).await.is_some());
    }

    #[tokio::test]
    async fn a_token_remembered_as_verified_still_goes_inactive_when_its_key_is_revoked_or_it_expires() {
        let (f, rs, svc) = fixture_with_introspector().await;
        let token = f.token("svc", &svc).await;
        assert!(f.active(&rs, &token).await.is_some(), "verified and remembered");
        assert!(f.active(&rs, &token).await.is_some(), "served from memory");
        let kid = f.authority.key_ring().signer(NOW).kid().to_owned();
        admin::revoke_key(f.store.as_ref(), &kid, NOW).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(f.active(&rs, &token).await, None, "the key change drops the memory");
        let fresh = f.token("svc", &svc).await;
        assert!(f.active(&rs, &fresh).await.is_some());
        f.clock.advance(3600);
        assert_eq!(f.active(&rs, &fresh).await, None, "expiry is checked on every hit");
    }

    #[tokio::test]
    async fn scheduled_rotation_adds_one_key_when_the_newest_is_old_enough() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).await.unwrap());
        let clock = Arc::new(ManualClock::new(NOW));
        let a = rotating(KeyAlgorithm::Es256, store.clone(), clock.clone()).await;
        let b = rotating(KeyAlgorithm::Es256, store.clone(), clock.clone()).await;
        a.housekeeping().await;
        assert_eq!(store.signing_keys().await.unwrap().len(), 1, "not due yet");
        clock.advance(86_400);
        a.housekeeping().await;
        b.housekeeping().await; // a second replica, with a stale view, at the same moment
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2, "exactly one rotation");
        assert_eq!(keys[1].activates_at, NOW + 86_400 + 600);
    }

    /// An authority rotating its key daily, on `store`.
    async fn rotating(alg: KeyAlgorithm, store: Arc<SqliteStore>, clock: Arc<ManualClock>) -> Authority {
        let config = AuthorityConfig {
            issuer: ISSUER.into(),
            default_token_ttl: 3600,
            max_token_ttl: 7200,
            signing_alg: alg,
            hashing_permits: 2,
            hashing_wait: Duration::from_secs(5),
            key_rotation: Some(Duration::from_secs(86_400)),
            key_publish_ahead: Duration::from_secs(600),
            throttle: ThrottleConfig::default(),
            require_audience: false,
            max_assertion_lifetime_secs: 3600,
        };
        Authority::new(config, store, clock).await.unwrap()
    }

    /// Revoking the pending key of a rotation must not stop rotation for
    /// good: the next one builds on the newest key still in force.
    #[tokio::test]
    async fn scheduled_rotation_resumes_after_the_pending_key_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).await.unwrap());
        let clock = Arc::new(ManualClock::new(NOW));
        let a = rotating(KeyAlgorithm::Es256, store.clone(), clock.clone()).await;
        clock.advance(86_400);
        a.housekeeping().await;
        let pending = store.signing_keys().await.unwrap().pop().unwrap();
        assert!(store.revoke_signing_key(&pending.kid, clock.now()).await.unwrap());
        a.sync_with_store().await.unwrap();
        a.housekeeping().await;
        let live: Vec<_> = store
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .collect();
        assert_eq!(live.len(), 2, "a new pending key replaced the revoked one: {live:?}");
    }

    /// A deployment restarted without `--signing-alg` (default ES256) keeps
    /// rotating to the algorithm it signs with.
    #[tokio::test]
    async fn scheduled_rotation_keeps_the_current_keys_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).await.unwrap());
        let clock = Arc::new(ManualClock::new(NOW));
        drop(rotating(KeyAlgorithm::Rs256, store.clone(), clock.clone()).await);
        let restarted = rotating(KeyAlgorithm::Es256, store.clone(), clock.clone()).await;
        clock.advance(86_400);
        restarted.housekeeping().await;
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.alg == "RS256"), "{keys:?}");
    }
}

// ---- Client authentication: private_key_jwt, rotation, remembered secrets, throttling ----

mod client_auth {
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;
    use crate::admin::KeyMaterial;
    use crate::keys::SigningKey;

    /// A client key pair: the private half signs assertions in the test, the
    /// public half is registered with `add_client_key`.
    struct ClientKey {
        kid: String,
        alg: Algorithm,
        private: EncodingKey,
        public_jwk: String,
    }

    fn client_key(kid: &str, alg: KeyAlgorithm) -> ClientKey {
        let record = SigningKey::generate(alg, NOW).unwrap();
        let public_jwk = serde_json::to_string(SigningKey::from_record(&record).unwrap().public_jwk()).unwrap();
        let private = match alg {
            KeyAlgorithm::Es256 => EncodingKey::from_ec_der(&record.private_pkcs8),
            KeyAlgorithm::EdDsa => EncodingKey::from_ed_der(&record.private_pkcs8),
            KeyAlgorithm::Rs256 => EncodingKey::from_rsa_der(&record.private_pkcs8),
        };
        ClientKey {
            kid: kid.into(),
            alg: alg.jwt_algorithm(),
            private,
            public_jwk,
        }
    }

    impl ClientKey {
        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = Some(self.kid.clone());
            encode(&header, claims, &self.private).unwrap()
        }
    }

    async fn with_key(f: &Fixture, id: &str, key: &ClientKey) {
        f.client(id, &["read"], &[], None).await;
        let material = KeyMaterial::Jwk(key.public_jwk.clone());
        admin::add_client_key(f.store.as_ref(), id, material, Some(key.kid.clone()), None, NOW)
            .await
            .unwrap();
        f.authority.sync_with_store().await.unwrap();
    }

    fn claims(id: &str, now: i64) -> Value {
        json!({"iss": id, "sub": id, "aud": ISSUER, "exp": now + 120, "iat": now, "jti": format!("jti-{now}-{}", rand_suffix())})
    }

    fn rand_suffix() -> String {
        URL_SAFE_NO_PAD.encode(secret::random_bytes::<8>())
    }

    fn assertion_request(client_id: Option<&str>, assertion: String) -> TokenRequest {
        TokenRequest {
            grant_type: Some(CLIENT_CREDENTIALS.into()),
            credentials: PresentedCredentials {
                client_id: client_id.map(str::to_owned),
                client_assertion_type: Some(JWT_BEARER_ASSERTION.into()),
                client_assertion: Some(assertion),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    async fn outcome(f: &Fixture, assertion: String) -> Result<IssuedToken, AuthError> {
        f.issue(assertion_request(None, assertion)).await
    }

    #[tokio::test]
    async fn a_valid_assertion_gets_a_token_rfc7523_2_2() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let token = outcome(&f, key.sign(&claims("svc", NOW))).await.unwrap();
        assert_eq!(token.client_id, "svc");
        let eddsa = client_key("k2", KeyAlgorithm::EdDsa);
        with_key(&f, "edge", &eddsa).await;
        assert!(
            outcome(&f, eddsa.sign(&claims("edge", NOW))).await.is_ok(),
            "EdDSA client keys work too"
        );
    }

    #[tokio::test]
    async fn the_token_endpoint_url_is_an_accepted_audience_rfc7523_3() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let mut c = claims("svc", NOW);
        c["aud"] = json!(format!("{ISSUER}/oauth2/token"));
        assert!(outcome(&f, key.sign(&c)).await.is_ok());
    }

    #[tokio::test]
    async fn a_replayed_assertion_is_refused_threats_c_11() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let assertion = key.sign(&claims("svc", NOW));
        assert!(outcome(&f, assertion.clone()).await.is_ok());
        assert_eq!(outcome(&f, assertion).await.unwrap_err().oauth_code(), "invalid_client");
    }

    #[tokio::test]
    async fn a_replay_across_replicas_in_parallel_succeeds_exactly_once() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let other = Authority::new(f.authority.config.clone(), f.store.clone(), f.clock.clone())
            .await
            .unwrap();
        let assertion = key.sign(&claims("svc", NOW));
        let (a, b) = tokio::join!(
            f.authority.issue(assertion_request(None, assertion.clone())),
            other.issue(assertion_request(None, assertion.clone())),
        );
        assert_eq!(
            [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{a:?} / {b:?}"
        );
        let restarted = Authority::new(f.authority.config.clone(), f.store.clone(), f.clock.clone())
            .await
            .unwrap();
        assert!(
            restarted.issue(assertion_request(None, assertion)).await.is_err(),
            "and not after a restart"
        );
    }

    #[tokio::test]
    async fn assertions_with_bad_claims_are_invalid_client_threats_c_09() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        // More failures than the throttle allows one client: this test is about each answer.
        let mut config = f.authority.config.clone();
        config.throttle.client_failures = 0;
        let unthrottled = Authority::new(config, f.store.clone(), f.clock.clone()).await.unwrap();
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            ("aud someone else", Box::new(|c| c["aud"] = json!("https://other.test"))),
            (
                "aud missing",
                Box::new(|c| drop(c.as_object_mut().unwrap().remove("aud"))),
            ),
            ("iss differs from sub", Box::new(|c| c["iss"] = json!("other"))),
            (
                "exp missing",
                Box::new(|c| drop(c.as_object_mut().unwrap().remove("exp"))),
            ),
            (
                "exp past the leeway",
                Box::new(|c| c["exp"] = json!(NOW - ASSERTION_LEEWAY_SECS - 1)),
            ),
            ("exp a year ahead", Box::new(|c| c["exp"] = json!(NOW + 365 * 86_400))),
            (
                "exp as a string",
                Box::new(|c| c["exp"] = json!((NOW + 60).to_string())),
            ),
            ("nbf a day ahead", Box::new(|c| c["nbf"] = json!(NOW + 86_400))),
            ("iat in the future", Box::new(|c| c["iat"] = json!(NOW + 3600))),
            (
                "jti missing",
                Box::new(|c| drop(c.as_object_mut().unwrap().remove("jti"))),
            ),
            ("jti empty", Box::new(|c| c["jti"] = json!(""))),
            ("jti with a NUL", Box::new(|c| c["jti"] = json!("a\u{0}b"))),
        ];
        for (what, change) in cases {
            let mut c = claims("svc", NOW);
            change(&mut c);
            let err = unthrottled
                .issue(assertion_request(None, key.sign(&c)))
                .await
                .unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client", "{what}");
        }
    }

    #[tokio::test]
    async fn clock_skew_inside_the_leeway_is_accepted_threats_c_13() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let mut c = claims("svc", NOW);
        c["exp"] = json!(NOW - ASSERTION_LEEWAY_SECS + 1);
        c["iat"] = json!(NOW + ASSERTION_LEEWAY_SECS - 1);
        assert!(outcome(&f, key.sign(&c)).await.is_ok());
    }

    #[tokio::test]
    async fn an_unregistered_key_or_another_algorithm_is_refused_threats_c_02_c_03() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let impostor = client_key("k1", KeyAlgorithm::Es256);
        assert_eq!(
            outcome(&f, impostor.sign(&claims("svc", NOW)))
                .await
                .unwrap_err()
                .oauth_code(),
            "invalid_client"
        );
        let other_alg = client_key("k1", KeyAlgorithm::EdDsa);
        assert_eq!(
            outcome(&f, other_alg.sign(&claims("svc", NOW)))
                .await
                .unwrap_err()
                .oauth_code(),
            "invalid_client"
        );
        // HS256 keyed with the registered public key, in the forms an attacker might try.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let jwk: Value = serde_json::from_str(&key.public_jwk).unwrap();
        for secret in [key.public_jwk.as_bytes(), jwk["x"].as_str().unwrap().as_bytes()] {
            let forged = encode(&header, &claims("svc", NOW), &EncodingKey::from_secret(secret)).unwrap();
            assert_eq!(outcome(&f, forged).await.unwrap_err().oauth_code(), "invalid_client");
        }
    }

    #[tokio::test]
    async fn alg_none_assertions_are_refused_threats_c_01() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let payload = URL_SAFE_NO_PAD.encode(claims("svc", NOW).to_string());
        for alg in ["none", "None", "NONE"] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": "k1"}).to_string());
            let err = outcome(&f, format!("{header}.{payload}.")).await.unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client", "alg {alg}");
        }
    }

    #[tokio::test]
    async fn kid_may_be_omitted_only_when_the_client_has_one_key() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let unnamed = encode(&Header::new(Algorithm::ES256), &claims("svc", NOW), &key.private).unwrap();
        assert!(outcome(&f, unnamed).await.is_ok());
        let second = client_key("k2", KeyAlgorithm::Es256);
        admin::add_client_key(
            f.store.as_ref(),
            "svc",
            KeyMaterial::Jwk(second.public_jwk.clone()),
            Some("k2".into()),
            None,
            NOW,
        )
        .await
        .unwrap();
        f.authority.sync_with_store().await.unwrap();
        let unnamed = encode(&Header::new(Algorithm::ES256), &claims("svc", NOW), &key.private).unwrap();
        assert_eq!(outcome(&f, unnamed).await.unwrap_err().oauth_code(), "invalid_client");
    }

    #[tokio::test]
    async fn a_client_id_that_contradicts_the_assertion_is_refused() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let err = f
            .issue(assertion_request(Some("other"), key.sign(&claims("svc", NOW))))
            .await
            .unwrap_err();
        assert_eq!(err.oauth_code(), "invalid_client");
        assert!(
            f.issue(assertion_request(Some("svc"), key.sign(&claims("svc", NOW))))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_wrong_assertion_type_is_invalid_request_threats_c_08() {
        let f = fixture().await;
        let mut request = assertion_request(None, "x.y.z".into());
        request.credentials.client_assertion_type =
            Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into());
        assert_eq!(f.issue(request).await.unwrap_err().oauth_code(), "invalid_request");
    }

    #[tokio::test]
    async fn a_disabled_clients_assertion_is_refused() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        f.store.set_client_disabled("svc", true).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(
            outcome(&f, key.sign(&claims("svc", NOW)))
                .await
                .unwrap_err()
                .oauth_code(),
            "invalid_client"
        );
    }

    #[tokio::test]
    async fn private_or_weak_keys_cannot_be_registered() {
        let f = fixture().await;
        f.client("svc", &["read"], &[], None).await;
        let private_jwk = r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}"#;
        let err = admin::add_client_key(
            f.store.as_ref(),
            "svc",
            KeyMaterial::Jwk(private_jwk.into()),
            None,
            None,
            NOW,
        )
        .await
        .unwrap_err();
        assert!(err.contains("private"), "{err}");
        let symmetric = r#"{"kty":"oct","k":"c2VjcmV0"}"#;
        assert!(
            admin::add_client_key(
                f.store.as_ref(),
                "svc",
                KeyMaterial::Jwk(symmetric.into()),
                None,
                None,
                NOW
            )
            .await
            .is_err()
        );
        let small_rsa = r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#;
        let err = admin::add_client_key(
            f.store.as_ref(),
            "svc",
            KeyMaterial::Jwk(small_rsa.into()),
            None,
            None,
            NOW,
        )
        .await
        .unwrap_err();
        assert!(err.contains("2048"), "{err}");
        let key = client_key("k1", KeyAlgorithm::Es256);
        let err = admin::add_client_key(
            f.store.as_ref(),
            "svc",
            KeyMaterial::Jwk(key.public_jwk.clone()),
            None,
            Some(KeyAlgorithm::Rs256),
            NOW,
        )
        .await
        .unwrap_err();
        assert!(err.contains("cannot sign"), "{err}");
    }

    #[tokio::test]
    async fn after_rotation_old_and_new_secrets_both_work_until_the_overlap_ends_threats_b_09() {
        let f = fixture().await;
        let old = f.client("svc", &["read"], &[], None).await;
        let new = admin::rotate_secret(f.store.as_ref(), "svc", 3600, NOW).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert!(
            f.issue(post("svc", &old)).await.is_ok(),
            "old secret during the overlap"
        );
        assert!(f.issue(post("svc", &new)).await.is_ok(), "new secret at once");
        f.clock.advance(3600);
        assert_eq!(
            f.issue(post("svc", &old)).await.unwrap_err().oauth_code(),
            "invalid_client",
            "old after the overlap"
        );
        assert!(f.issue(post("svc", &new)).await.is_ok());
    }

    #[tokio::test]
    async fn rotation_without_overlap_retires_the_remembered_old_secret_at_once() {
        let f = fixture().await;
        let old = f.client("svc", &["read"], &[], None).await;
        assert!(f.issue(post("svc", &old)).await.is_ok(), "old secret remembered");
        admin::rotate_secret(f.store.as_ref(), "svc", 0, NOW).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(
            f.issue(post("svc", &old)).await.unwrap_err().oauth_code(),
            "invalid_client"
        );
    }

    #[tokio::test]
    async fn a_change_to_another_client_leaves_a_warm_client_warm_threats_b_06() {
        let f = fixture().await;
        let secret = f.client("warm", &["read"], &[], None).await;
        f.authority.sync_with_store().await.unwrap();
        f.issue(post("warm", &secret)).await.unwrap();
        let runs = f.authority.hashing_runs();
        f.client("newcomer", &["read"], &[], None).await;
        admin::rotate_secret(f.store.as_ref(), "newcomer", 0, NOW)
            .await
            .unwrap();
        assert!(f.authority.sync_with_store().await.unwrap(), "the registry changed");
        f.issue(post("warm", &secret)).await.unwrap();
        assert_eq!(
            f.authority.hashing_runs(),
            runs,
            "another client's changes sent a warm client back to argon2"
        );
    }

    #[tokio::test]
    async fn a_client_holds_a_bounded_number_of_live_secrets() {
        let f = fixture().await;
        f.client("svc", &["read"], &[], None).await;
        for _ in 1..admin::MAX_LIVE_SECRETS {
            admin::rotate_secret(f.store.as_ref(), "svc", 3600, NOW).await.unwrap();
        }
        let err = admin::rotate_secret(f.store.as_ref(), "svc", 3600, NOW)
            .await
            .unwrap_err();
        assert!(err.contains("live secrets"), "{err}");
        admin::rotate_secret(f.store.as_ref(), "svc", 0, NOW)
            .await
            .expect("retiring all others is always allowed");
    }

    #[tokio::test]
    async fn a_warm_client_skips_argon2() {
        let f = fixture().await;
        let secret = f.client("svc", &["read"], &[], None).await;
        f.issue(post("svc", &secret)).await.unwrap();
        let after_first = f.authority.hashing_runs();
        for _ in 0..5 {
            f.issue(post("svc", &secret)).await.unwrap();
        }
        assert_eq!(f.authority.hashing_runs(), after_first, "remembered: no more hashing");
        let err = f.issue(post("svc", &ClientSecret::new("wrong"))).await.unwrap_err();
        assert_eq!(err.oauth_code(), "invalid_client", "a wrong secret is not remembered");
        assert_eq!(
            f.authority.hashing_runs(),
            after_first,
            "a wrong secret is refused by its check value, without argon2"
        );
    }

    #[tokio::test]
    async fn a_remembered_secret_is_forgotten_when_the_client_is_disabled_or_the_secret_expires() {
        let f = fixture().await;
        f.client("svc", &["read"], &[], None).await;
        let (secret, record) = admin::new_secret(NOW, Some(NOW + 100)).await.unwrap();
        f.store.add_secret("svc", record, Some(NOW)).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        f.issue(post("svc", &secret)).await.unwrap();
        f.clock.advance(100);
        assert_eq!(
            f.issue(post("svc", &secret)).await.unwrap_err().oauth_code(),
            "invalid_client",
            "expired"
        );
        let live = f.client("live", &["read"], &[], None).await;
        f.issue(post("live", &live)).await.unwrap();
        f.store.set_client_disabled("live", true).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        assert_eq!(
            f.issue(post("live", &live)).await.unwrap_err().oauth_code(),
            "invalid_client",
            "disabled"
        );
    }

    /// A fresh authority on the same store: a replica that never saw the
    /// client, or the server after a restart.
    async fn cold_replica(f: &Fixture) -> Authority {
        let config = f.authority.config.clone();
        Authority::new(config, f.store.clone(), f.clock.clone()).await.unwrap()
    }

    fn from(mut request: TokenRequest, source: &str) -> TokenRequest {
        request.credentials.source = Some(source.parse().unwrap());
        request
    }

    /// THREATS B-05: whoever knows a client id cannot keep the client from
    /// its token, however many wrong secrets they send, and those cost no argon2.
    #[tokio::test]
    async fn wrong_secrets_for_a_client_never_refuse_its_correct_secret_cold() {
        let f = fixture().await;
        let secret = f.client("svc", &["read"], &[], None).await;
        for _ in 0..50 {
            let err = f
                .issue(from(post("svc", &ClientSecret::generate()), "192.0.2.66"))
                .await
                .unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client");
        }
        assert_eq!(f.authority.hashing_runs(), 0, "wrong secrets never reach argon2");
        let cold = cold_replica(&f).await;
        let issued = cold.issue(from(post("svc", &secret), "192.0.2.66")).await;
        assert!(issued.is_ok(), "{issued:?}");
        let warm = f.issue(post("svc", &secret)).await;
        assert!(warm.is_ok(), "{warm:?}");
    }

    /// A shared egress address (a NAT, a proxy) full of failures does not
    /// refuse a never-seen client's correct secret from the same address.
    #[tokio::test]
    async fn failures_from_a_shared_address_never_refuse_a_correct_secret_from_it() {
        let f = fixture().await;
        let secret = f.client("svc", &["read"], &[], None).await;
        for i in 0..150 {
            let err = f
                .issue(from(post(&format!("id-{i}"), &ClientSecret::new("x")), "192.0.2.9"))
                .await
                .unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client");
        }
        let issued = f.issue(from(post("svc", &secret), "192.0.2.9")).await;
        assert!(issued.is_ok(), "{issued:?}");
    }

    /// A secret stored before check values existed verifies with argon2 and
    /// gains its check value at its first success; from then on a wrong
    /// secret costs no argon2. Until then its failures stay throttled.
    #[tokio::test]
    async fn a_legacy_secret_gains_its_check_value_at_its_next_success() {
        let f = fixture().await;
        f.client("svc", &["read"], &[], None).await;
        let (secret, mut record) = admin::new_secret(NOW, None).await.unwrap();
        record.check = None;
        let secret_id = record.secret_id.clone();
        f.store.add_secret("svc", record, Some(NOW)).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        let limit = ThrottleConfig::default().client_failures;
        for _ in 0..limit {
            let err = f.issue(post("svc", &ClientSecret::generate())).await.unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client");
        }
        assert_eq!(
            f.authority.hashing_runs(),
            u64::from(limit),
            "legacy: argon2 per failure"
        );
        let throttled = f.issue(post("svc", &ClientSecret::generate())).await.unwrap_err();
        assert!(matches!(throttled, AuthError::TooManyRequests { .. }), "{throttled:?}");
        f.clock.advance(60);
        f.issue(post("svc", &secret)).await.unwrap();
        let stored = f.store.client("svc").await.unwrap().unwrap();
        let check = stored
            .secrets
            .iter()
            .find(|s| s.secret_id == secret_id)
            .unwrap()
            .check
            .clone();
        assert!(check.is_some_and(|c| secret::passes_check(&c, &secret)));
        let cold = cold_replica(&f).await;
        for _ in 0..2 * limit {
            let err = cold.issue(post("svc", &ClientSecret::generate())).await.unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client");
        }
        assert_eq!(cold.hashing_runs(), 0, "with a check value, failures are free");
        assert!(cold.issue(post("svc", &secret)).await.is_ok());
    }

    /// THREATS B-02: unknown, wrong-secret and disabled answers all wait for
    /// the refusal floor, so the microseconds between them do not show.
    #[tokio::test]
    async fn every_refusal_takes_at_least_the_floor() {
        let f = fixture().await;
        let secret = f.client("svc", &["read"], &[], None).await;
        let disabled = f.client("off", &["read"], &[], None).await;
        f.store.set_client_disabled("off", true).await.unwrap();
        f.authority.sync_with_store().await.unwrap();
        for request in [
            post("nobody", &secret),
            post("svc", &ClientSecret::generate()),
            post("off", &disabled),
        ] {
            let started = std::time::Instant::now();
            let err = f.issue(request).await.unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client");
            assert!(started.elapsed() >= REFUSAL_FLOOR, "{:?}", started.elapsed());
        }
    }

    /// A caller that goes away while argon2 runs (a gRPC deadline, a client
    /// hanging up) leaves no shared verification behind.
    #[tokio::test]
    async fn a_cancelled_verification_leaves_nothing_in_flight() {
        let f = fixture().await;
        let secret = f.client("svc", &["read"], &[], None).await;
        let cancelled = tokio::time::timeout(Duration::from_millis(1), f.issue(post("svc", &secret))).await;
        assert!(cancelled.is_err(), "argon2 takes longer than 1 ms");
        assert_eq!(f.authority.in_flight_count(), 0);
        assert!(f.issue(post("svc", &secret)).await.is_ok());
    }

    /// Bad signatures naming a client do not refuse its good assertion.
    #[tokio::test]
    async fn bad_assertions_never_refuse_a_good_one() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let forger = client_key("k1", KeyAlgorithm::Es256);
        for _ in 0..50 {
            let forged = forger.sign(&claims("svc", NOW));
            let err = f
                .issue(from(assertion_request(Some("svc"), forged), "192.0.2.7"))
                .await
                .unwrap_err();
            assert_eq!(err.oauth_code(), "invalid_client");
        }
        let good = f
            .issue(from(
                assertion_request(Some("svc"), key.sign(&claims("svc", NOW))),
                "192.0.2.7",
            ))
            .await;
        assert!(good.is_ok(), "{good:?}");
    }

    /// Regression: failed assertions that named no client_id were all counted
    /// under one empty key, so junk assertions throttled every other client.
    #[tokio::test]
    async fn junk_assertions_do_not_throttle_other_clients() {
        let f = fixture().await;
        let key = client_key("k1", KeyAlgorithm::Es256);
        with_key(&f, "svc", &key).await;
        let limit = ThrottleConfig::default().client_failures;
        for i in 0..=limit {
            let junk = if i % 2 == 0 {
                "x.y.z".to_owned()
            } else {
                key.sign(&claims("someone-else", NOW))
            };
            assert!(outcome(&f, junk).await.is_err());
        }
        assert!(outcome(&f, key.sign(&claims("svc", NOW))).await.is_ok());
    }

    #[tokio::test]
    async fn a_pem_public_key_can_be_registered_and_verifies_assertions() {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let f = fixture().await;
        f.client("svc", &["read"], &[], None).await;
        let record = SigningKey::generate(KeyAlgorithm::Es256, NOW).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &record.private_pkcs8).unwrap();
        let der: PublicKeyX509Der = pair.public_key().as_der().unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n");
        let stored = admin::add_client_key(
            f.store.as_ref(),
            "svc",
            KeyMaterial::Pem(pem),
            Some("pem-key".into()),
            None,
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(stored.alg, "ES256");
        f.authority.sync_with_store().await.unwrap();
        let key = ClientKey {
            kid: "pem-key".into(),
            alg: Algorithm::ES256,
            private: EncodingKey::from_ec_der(&record.private_pkcs8),
            public_jwk: String::new(),
        };
        assert!(outcome(&f, key.sign(&claims("svc", NOW))).await.is_ok());
        let private_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned();
        let err = admin::add_client_key(f.store.as_ref(), "svc", KeyMaterial::Pem(private_pem), None, None, NOW)
            .await
            .unwrap_err();
        assert!(err.contains("private"), "{err}");
    }

    #[tokio::test]
    async fn a_server_requiring_audiences_refuses_requests_that_name_none() {
        let f = fixture().await;
        let mut config = f.authority.config.clone();
        config.require_audience = true;
        let strict = Authority::new(config, f.store.clone(), f.clock.clone()).await.unwrap();
        let secret = f.client("svc", &["read"], &["https://a.test"], None).await;
        assert_eq!(
            strict.issue(post("svc", &secret)).await.unwrap_err().oauth_code(),
            "invalid_target"
        );
        assert!(
            strict
                .issue(with_audiences(post("svc", &secret), &["https://a.test"]))
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn concurrent_requests_with_the_same_new_secret_share_one_verification() {
    let f = fixture().await;
    let secret = f.client("svc", &["read"], &[], None).await;
    let before = f.authority.hashing_runs();
    let authority = Arc::new(f.authority);
    let burst: Vec<_> = (0..32)
        .map(|_| {
            let (authority, request) = (authority.clone(), post("svc", &secret));
            tokio::spawn(async move { authority.issue(request).await })
        })
        .collect();
    for request in burst {
        assert!(request.await.unwrap().is_ok(), "no request of the burst is refused");
    }
    let runs = authority.hashing_runs() - before;
    assert!(runs <= 2, "{runs} argon2 runs for a burst of 32 with one secret");
}

//! Issuance (RFC 6749 section 4.4): claims, scopes, audiences, lifetimes,
//! and the refusals of the token endpoint.

use super::*;

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

//! Client authentication: private_key_jwt, secret rotation, remembered
//! secrets, check values, throttling of legacy secrets.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use super::*;
use crate::admin::KeyMaterial;
use tessera_testkit::ClientKey;

/// A client key pair from the testkit (the end-to-end tests use the same):
/// the private half signs assertions, the public half is registered with
/// `add_client_key`.
fn client_key(kid: &str, alg: KeyAlgorithm) -> ClientKey {
    ClientKey::generate(kid, alg.jws_name())
}

async fn with_key(f: &Fixture, id: &str, key: &ClientKey) {
    f.client(id, &["read"], &[], None).await;
    let material = KeyMaterial::Jwk(key.public_jwk().to_owned());
    admin::add_client_key(f.store.as_ref(), id, material, Some(key.kid().to_owned()), None, NOW)
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
    let jwk: Value = serde_json::from_str(key.public_jwk()).unwrap();
    for secret in [key.public_jwk().as_bytes(), jwk["x"].as_str().unwrap().as_bytes()] {
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
    let unnamed = encode(&Header::new(Algorithm::ES256), &claims("svc", NOW), key.private_key()).unwrap();
    assert!(outcome(&f, unnamed).await.is_ok());
    let second = client_key("k2", KeyAlgorithm::Es256);
    admin::add_client_key(
        f.store.as_ref(),
        "svc",
        KeyMaterial::Jwk(second.public_jwk().to_owned()),
        Some("k2".into()),
        None,
        NOW,
    )
    .await
    .unwrap();
    f.authority.sync_with_store().await.unwrap();
    let unnamed = encode(&Header::new(Algorithm::ES256), &claims("svc", NOW), key.private_key()).unwrap();
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
    request.credentials.client_assertion_type = Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into());
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
    assert!(err.to_string().contains("private"), "{err}");
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
    assert!(err.to_string().contains("2048"), "{err}");
    let key = client_key("k1", KeyAlgorithm::Es256);
    let err = admin::add_client_key(
        f.store.as_ref(),
        "svc",
        KeyMaterial::Jwk(key.public_jwk().to_owned()),
        None,
        Some(KeyAlgorithm::Rs256),
        NOW,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot sign"), "{err}");
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
    assert!(err.to_string().contains("live secrets"), "{err}");
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

/// docs/THREATS.md, row B-05: whoever knows a client id cannot keep the client from
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

/// docs/THREATS.md, row B-02: unknown, wrong-secret and disabled answers all wait for
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
    assert_eq!(f.authority.secrets.in_flight_count(), 0);
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
    let f = fixture().await;
    f.client("svc", &["read"], &[], None).await;
    let key = ClientKey::generate("pem-key", "ES256");
    let pem = key.public_pem();
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
    assert!(outcome(&f, key.sign(&claims("svc", NOW))).await.is_ok());
    let private_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned();
    let err = admin::add_client_key(f.store.as_ref(), "svc", KeyMaterial::Pem(private_pem), None, None, NOW)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
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

//! Introspection (RFC 7662), revocation (RFC 7009) and signing-key rotation.

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
        self.store
            .signing_keys()
            .await
            .unwrap()
            .pop()
            .unwrap()
            .private_pkcs8
            .to_vec()
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
        bind_to_certificate: false,
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
    let rotated = admin::rotate_key(f.store.as_ref(), &crate::keys::KeyCustody::clear(), None, NOW, 600)
        .await
        .unwrap();
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
    let replacement = admin::revoke_key(f.store.as_ref(), &crate::keys::KeyCustody::clear(), &compromised, NOW)
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
    admin::revoke_key(f.store.as_ref(), &crate::keys::KeyCustody::clear(), &kid, NOW)
        .await
        .unwrap();
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
        federation: Default::default(),
        client_certificates: false,
        custody: std::sync::Arc::new(crate::keys::KeyCustody::clear()),
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

//! The store contract: one suite every `Store` implementation must pass.

use super::{
    CertificateMatch, ClientCertificateRecord, ClientKeyRecord, ClientRecord, ClientUpdate, FederatedIdentityRecord,
    JwksSource, KeyMaterialChange, RevokedToken, SecretRecord, SeenAssertion, SigningKeyRecord, Store, StoreError,
    StoreSnapshot, TrustedIssuerRecord,
};

pub fn sample_client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.to_owned(),
        scopes: vec!["read".into(), "write".into()],
        audiences: vec!["https://api.example".into()],
        token_ttl: Some(600),
        disabled: false,
        created_at: 1_700_000_000,
        secrets: vec![SecretRecord {
            secret_id: format!("{id}-s1"),
            phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            check: Some("v1$c2FsdA$AAAAAAAAAAA".into()),
            created_at: 1_700_000_000,
            expires_at: None,
        }],
        keys: vec![],
        federated: vec![],
        certificates: vec![],
        bind_to_certificate: false,
    }
}

fn sample_key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        private_pkcs8: vec![1, 2, 3].into(),
        created_at,
        activates_at: created_at,
        revoked_at: None,
    }
}

/// Calls `$callback!` with the name of every case, so the list lives here
/// once: each store's tests declare one `#[tokio::test]` per case from it.
macro_rules! with_contract_cases {
    ($callback:ident) => {
        $callback!(
            created_client_reads_back_identically,
            duplicate_client_id_is_refused,
            lookup_is_exact_byte_for_byte,
            disable_and_delete_report_whether_the_client_existed,
            first_signing_key_is_inserted_once,
            every_write_bumps_the_generation,
            sql_like_ids_are_data,
            keys_are_added_only_on_top_of_the_expected_newest,
            a_key_is_revoked_once,
            revoked_tokens_are_kept_until_they_expire,
            same_second_keys_keep_insertion_order,
            revocations_are_read_incrementally,
            rotation_adds_a_secret_and_shortens_the_others,
            client_keys_are_stored_per_client_and_kid,
            an_assertion_id_is_accepted_once,
            a_legacy_secret_gets_its_check_value_once,
            a_revocation_after_pruning_is_never_behind_a_cursor,
            a_federated_identity_belongs_to_one_client,
            deleting_a_client_unbinds_its_identities,
            trusted_issuers_read_back_and_go,
            client_certificates_read_back_in_order_and_go,
            deleting_a_client_drops_its_certificates,
            an_update_changes_only_what_it_names,
            a_client_created_with_certificates_reads_back_identically,
            a_snapshot_restores_into_an_empty_store_identically_and_only_there,
            key_material_is_replaced_all_or_nothing,
        );
    };
}
pub(crate) use with_contract_cases;

// Every case starts from an empty store and sets up what it needs, so each
// runs (and fails) on its own.

/// Positions are never reused: after pruning empties the table, a new
/// revocation still lies beyond every cursor handed out before.
pub async fn a_revocation_after_pruning_is_never_behind_a_cursor(store: &dyn Store) {
    let revoked = |jti: &str, expires_at| RevokedToken {
        jti: jti.into(),
        client_id: "svc".into(),
        expires_at,
        revoked_at: 1,
    };
    store.revoke_token(revoked("prune-1", 10)).await.unwrap();
    let (_, cursor) = store.revoked_tokens_after(0, 0).await.unwrap();
    store.prune_expired(5_000_000_000).await.unwrap();
    store.revoke_token(revoked("prune-2", 6_000_000_000)).await.unwrap();
    let (after, _) = store.revoked_tokens_after(0, cursor).await.unwrap();
    assert!(
        after.iter().any(|r| r.jti == "prune-2"),
        "a revocation recorded after pruning was behind the cursor {cursor}: {after:?}"
    );
}

/// A secret stored before check values existed gets one recorded at its next
/// verification, once; a recorded one is never overwritten.
pub async fn a_legacy_secret_gets_its_check_value_once(store: &dyn Store) {
    let mut client = sample_client("contract-check");
    client.secrets[0].check = None;
    store.create_client(client).await.unwrap();
    assert!(
        store
            .set_secret_check("contract-check", "contract-check-s1", "v1$a$b")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_secret_check("contract-check", "contract-check-s1", "v1$c$d")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_secret_check("contract-check", "no-such-secret", "v1$c$d")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_secret_check("no-such-client", "contract-check-s1", "v1$c$d")
            .await
            .unwrap()
    );
    let stored = store.client("contract-check").await.unwrap().unwrap();
    assert_eq!(stored.secrets[0].check.as_deref(), Some("v1$a$b"));
}

pub async fn created_client_reads_back_identically(store: &dyn Store) {
    let client = sample_client("contract-read");
    store.create_client(client.clone()).await.unwrap();
    assert_eq!(store.client("contract-read").await.unwrap(), Some(client));
}

pub async fn duplicate_client_id_is_refused(store: &dyn Store) {
    store.create_client(sample_client("contract-dup")).await.unwrap();
    let again = store.create_client(sample_client("contract-dup")).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(_))), "{again:?}");
}

pub async fn lookup_is_exact_byte_for_byte(store: &dyn Store) {
    store.create_client(sample_client("contract-exact")).await.unwrap();
    for near in ["CONTRACT-EXACT", "contract-exact ", " contract-exact", "contract-exac"] {
        assert_eq!(store.client(near).await.unwrap(), None, "{near:?} matched");
    }
}

pub async fn disable_and_delete_report_whether_the_client_existed(store: &dyn Store) {
    store.create_client(sample_client("contract-life")).await.unwrap();
    assert!(store.set_client_disabled("contract-life", true).await.unwrap());
    assert!(store.client("contract-life").await.unwrap().unwrap().disabled);
    assert!(!store.set_client_disabled("contract-nobody", true).await.unwrap());
    assert!(store.delete_client("contract-life").await.unwrap());
    assert_eq!(store.client("contract-life").await.unwrap(), None);
    assert!(!store.delete_client("contract-life").await.unwrap());
    let listed = store.list_clients().await.unwrap();
    assert!(listed.iter().all(|c| c.client_id != "contract-life"));
}

pub async fn first_signing_key_is_inserted_once(store: &dyn Store) {
    let first = store.insert_first_signing_key(sample_key("k1", 10)).await.unwrap();
    let second = store.insert_first_signing_key(sample_key("k2", 20)).await.unwrap();
    assert_eq!(first, vec![sample_key("k1", 10)]);
    assert_eq!(second, first, "a second first key must not be added");
    assert_eq!(store.signing_keys().await.unwrap(), first);
}

pub async fn every_write_bumps_the_generation(store: &dyn Store) {
    let mut last = store.generations().await.unwrap().clients;
    let mut bumped = |now: u64, what: &str| {
        assert!(
            now > last,
            "{what} did not bump the clients generation ({last} -> {now})"
        );
        last = now;
    };
    store.create_client(sample_client("contract-gen")).await.unwrap();
    bumped(store.generations().await.unwrap().clients, "create_client");
    store.set_client_disabled("contract-gen", true).await.unwrap();
    bumped(store.generations().await.unwrap().clients, "set_client_disabled");
    store
        .add_secret("contract-gen", sample_client("x").secrets[0].clone(), None)
        .await
        .unwrap();
    bumped(store.generations().await.unwrap().clients, "add_secret");
    store
        .add_client_key("contract-gen", sample_client_key("k"))
        .await
        .unwrap();
    bumped(store.generations().await.unwrap().clients, "add_client_key");
    store.delete_client("contract-gen").await.unwrap();
    bumped(store.generations().await.unwrap().clients, "delete_client");
}

pub async fn sql_like_ids_are_data(store: &dyn Store) {
    store.create_client(sample_client("contract-plain")).await.unwrap();
    let id = "x'); DROP TABLE clients; --";
    store.create_client(sample_client(id)).await.unwrap();
    assert_eq!(store.client(id).await.unwrap().unwrap().client_id, id);
    assert!(store.list_clients().await.unwrap().len() > 1);
}

pub async fn keys_are_added_only_on_top_of_the_expected_newest(store: &dyn Store) {
    store.insert_first_signing_key(sample_key("k1", 10)).await.unwrap();
    let mut k3 = sample_key("k3", 30);
    k3.activates_at = 40;
    assert!(store.add_signing_key(k3.clone(), Some("k1")).await.unwrap());
    assert!(
        !store.add_signing_key(sample_key("k4", 31), Some("k1")).await.unwrap(),
        "k1 is no longer the newest"
    );
    assert!(
        store.add_signing_key(sample_key("k5", 32), None).await.unwrap(),
        "unconditional add"
    );
    let kids: Vec<_> = store.signing_keys().await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["k1", "k5", "k3"], "ordered by activation");
}

pub async fn a_key_is_revoked_once(store: &dyn Store) {
    store.insert_first_signing_key(sample_key("k1", 10)).await.unwrap();
    store.add_signing_key(sample_key("k5", 32), None).await.unwrap();
    assert!(store.revoke_signing_key("k5", 50).await.unwrap());
    assert!(!store.revoke_signing_key("k5", 51).await.unwrap(), "already revoked");
    assert!(!store.revoke_signing_key("nope", 51).await.unwrap());
    let k5 = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == "k5")
        .unwrap();
    assert_eq!(k5.revoked_at, Some(50));
}

pub async fn revoked_tokens_are_kept_until_they_expire(store: &dyn Store) {
    let revoked = |jti: &str, expires_at| RevokedToken {
        jti: jti.into(),
        client_id: "c".into(),
        expires_at,
        revoked_at: 1,
    };
    let before = store.generations().await.unwrap();
    store.revoke_token(revoked("t1", 100)).await.unwrap();
    store.revoke_token(revoked("t1", 100)).await.unwrap();
    store.revoke_token(revoked("t2", 200)).await.unwrap();
    assert!(
        store.generations().await.unwrap().revocations > before.revocations,
        "a revocation bumps the generation"
    );
    let live: Vec<_> = store
        .revoked_tokens(150)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.jti)
        .collect();
    assert_eq!(live, ["t2"]);
    assert_eq!(store.prune_expired(150).await.unwrap(), 1);
    assert_eq!(store.revoked_tokens(0).await.unwrap().len(), 1);
}

/// Keys activating in the same second come back in the order they were added,
/// so the later one signs (a rotation right after start, a revocation's replacement).
pub async fn same_second_keys_keep_insertion_order(store: &dyn Store) {
    let mut kids = Vec::new();
    for kid in ["zz-first", "aa-second", "mm-third"] {
        let mut key = sample_key(kid, 5_000);
        key.activates_at = 5_000;
        store.add_signing_key(key, None).await.unwrap();
        kids.push(kid);
    }
    let stored: Vec<_> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.activates_at == 5_000)
        .map(|k| k.kid)
        .collect();
    assert_eq!(stored, kids);
}

fn sample_client_key(kid: &str) -> ClientKeyRecord {
    ClientKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        jwk: r#"{"kty":"EC"}"#.into(),
        created_at: 1,
    }
}

pub async fn rotation_adds_a_secret_and_shortens_the_others(store: &dyn Store) {
    let mut client = sample_client("contract-secrets");
    client.secrets[0].expires_at = Some(10_000);
    let mut forever = client.secrets[0].clone();
    forever.secret_id = "forever".into();
    forever.expires_at = None;
    client.secrets.push(forever);
    let mut short = client.secrets[0].clone();
    short.secret_id = "short".into();
    short.expires_at = Some(50);
    client.secrets.push(short);
    store.create_client(client).await.unwrap();
    let fresh = SecretRecord {
        secret_id: "fresh".into(),
        phc: "p".into(),
        check: None,
        created_at: 100,
        expires_at: None,
    };
    assert!(store.add_secret("contract-secrets", fresh, Some(3_700)).await.unwrap());
    let stored = store.client("contract-secrets").await.unwrap().unwrap().secrets;
    let expiry = |id: &str| stored.iter().find(|s| s.secret_id == id).unwrap().expires_at;
    assert_eq!(expiry("fresh"), None);
    assert_eq!(
        expiry("forever"),
        Some(3_700),
        "a secret that never expired now expires with the overlap"
    );
    assert_eq!(
        expiry("contract-secrets-s1"),
        Some(3_700),
        "a later expiry is brought forward"
    );
    assert_eq!(expiry("short"), Some(50), "an earlier expiry is kept");
    assert!(
        !store
            .add_secret("contract-nobody", stored[0].clone(), None)
            .await
            .unwrap()
    );
}

pub async fn client_keys_are_stored_per_client_and_kid(store: &dyn Store) {
    store.create_client(sample_client("contract-keys")).await.unwrap();
    assert!(
        store
            .add_client_key("contract-keys", sample_client_key("a"))
            .await
            .unwrap()
    );
    assert!(
        store
            .add_client_key("contract-keys", sample_client_key("b"))
            .await
            .unwrap()
    );
    let again = store.add_client_key("contract-keys", sample_client_key("a")).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(_))), "{again:?}");
    assert!(
        !store
            .add_client_key("contract-nobody", sample_client_key("a"))
            .await
            .unwrap()
    );
    let kids: Vec<_> = store
        .client("contract-keys")
        .await
        .unwrap()
        .unwrap()
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["a", "b"]);
    let before = store.generations().await.unwrap().clients;
    assert!(store.remove_client_key("contract-keys", "a").await.unwrap());
    assert!(
        store.generations().await.unwrap().clients > before,
        "remove_client_key bumps the generation"
    );
    assert!(
        !store.remove_client_key("contract-keys", "a").await.unwrap(),
        "removed once"
    );
    assert!(!store.remove_client_key("contract-nobody", "b").await.unwrap());
    let kids: Vec<_> = store
        .client("contract-keys")
        .await
        .unwrap()
        .unwrap()
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["b"]);
    store.delete_client("contract-keys").await.unwrap();
    store.create_client(sample_client("contract-keys")).await.unwrap();
    assert!(
        store.client("contract-keys").await.unwrap().unwrap().keys.is_empty(),
        "keys go with their client"
    );
}

pub async fn an_assertion_id_is_accepted_once(store: &dyn Store) {
    assert!(store.remember_assertion("c1", "jti-1", 1_000).await.unwrap());
    assert!(
        !store.remember_assertion("c1", "jti-1", 1_000).await.unwrap(),
        "a replay"
    );
    assert!(
        store.remember_assertion("c2", "jti-1", 1_000).await.unwrap(),
        "ids are per client"
    );
    store.prune_expired(1_000).await.unwrap();
    assert!(
        store.remember_assertion("c1", "jti-1", 2_000).await.unwrap(),
        "forgotten after expiry"
    );
}

pub async fn revocations_are_read_incrementally(store: &dyn Store) {
    let revoked = |jti: &str| RevokedToken {
        jti: jti.into(),
        client_id: "c".into(),
        expires_at: 9_000,
        revoked_at: 1,
    };
    let (_, start) = store.revoked_tokens_after(0, 0).await.unwrap();
    store.revoke_token(revoked("inc-1")).await.unwrap();
    store.revoke_token(revoked("inc-2")).await.unwrap();
    let (first, cursor) = store.revoked_tokens_after(0, start).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.jti.as_str()).collect::<Vec<_>>(),
        ["inc-1", "inc-2"]
    );
    let (nothing, same) = store.revoked_tokens_after(0, cursor).await.unwrap();
    assert!(nothing.is_empty());
    assert_eq!(same, cursor);
    store.revoke_token(revoked("inc-3")).await.unwrap();
    let (next, _) = store.revoked_tokens_after(0, cursor).await.unwrap();
    assert_eq!(next.iter().map(|r| r.jti.as_str()).collect::<Vec<_>>(), ["inc-3"]);
}

fn identity(issuer: &str, subject: &str) -> FederatedIdentityRecord {
    FederatedIdentityRecord {
        issuer: issuer.into(),
        subject: subject.into(),
        created_at: 1_700_000_100,
    }
}

const K8S: &str = "https://kubernetes.default.svc.cluster.local";

/// One (issuer, subject) authenticates as one client: binding it to a
/// second is refused, and a binding shows in its client's record.
pub async fn a_federated_identity_belongs_to_one_client(store: &dyn Store) {
    store.create_client(sample_client("billing")).await.unwrap();
    store.create_client(sample_client("ledger")).await.unwrap();
    let sa = identity(K8S, "system:serviceaccount:payments:billing");
    let before = store.generations().await.unwrap();
    assert!(store.add_federated_identity("billing", sa.clone()).await.unwrap());
    assert!(store.generations().await.unwrap().clients > before.clients);
    assert!(matches!(
        store.add_federated_identity("ledger", sa.clone()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.add_federated_identity("billing", sa.clone()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(
        !store
            .add_federated_identity("nobody", identity(K8S, "x"))
            .await
            .unwrap()
    );
    let spiffe = identity("spiffe://example.org", "spiffe://example.org/ns/payments/sa/billing");
    assert!(store.add_federated_identity("billing", spiffe.clone()).await.unwrap());
    let billing = store.client("billing").await.unwrap().unwrap();
    assert_eq!(billing.federated, vec![sa.clone(), spiffe]);
    assert_eq!(
        store
            .client_for_federated_identity(K8S, &sa.subject)
            .await
            .unwrap()
            .as_deref(),
        Some("billing")
    );
    assert_eq!(
        store
            .client_for_federated_identity(K8S, "system:serviceaccount:payments:other")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .client_for_federated_identity("https://other", &sa.subject)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.client_for_federated_identity(K8S, "nul\0byte").await.unwrap(),
        None
    );
    assert!(
        !store
            .remove_federated_identity("ledger", K8S, &sa.subject)
            .await
            .unwrap()
    );
    assert!(
        store
            .remove_federated_identity("billing", K8S, &sa.subject)
            .await
            .unwrap()
    );
    assert_eq!(
        store.client_for_federated_identity(K8S, &sa.subject).await.unwrap(),
        None
    );
    assert!(store.add_federated_identity("ledger", sa).await.unwrap());
}

/// A deleted client's identities go with it, free to bind again.
pub async fn deleting_a_client_unbinds_its_identities(store: &dyn Store) {
    let mut client = sample_client("gone");
    client.federated = vec![identity(K8S, "system:serviceaccount:ns:gone")];
    store.create_client(client.clone()).await.unwrap();
    assert_eq!(store.client("gone").await.unwrap().unwrap(), client);
    assert!(store.delete_client("gone").await.unwrap());
    assert_eq!(
        store
            .client_for_federated_identity(K8S, "system:serviceaccount:ns:gone")
            .await
            .unwrap(),
        None
    );
    store.create_client(sample_client("next")).await.unwrap();
    assert!(
        store
            .add_federated_identity("next", identity(K8S, "system:serviceaccount:ns:gone"))
            .await
            .unwrap()
    );
}

/// Trusted issuers read back as written, in issuer order, each kind of key
/// source included; adding one twice is refused; removing reports whether
/// it was there; every change bumps the trust counter.
pub async fn trusted_issuers_read_back_and_go(store: &dyn Store) {
    let trust = |issuer: &str, jwks: JwksSource| TrustedIssuerRecord {
        issuer: issuer.into(),
        jwks,
        audiences: vec!["tessera".into(), "https://tessera.internal".into()],
        max_lifetime_secs: 86_400,
        ca_pem: Some("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into()),
        bearer_token_file: Some("/var/run/secrets/kubernetes.io/serviceaccount/token".into()),
        created_at: 1_700_000_000,
    };
    let k8s = trust(K8S, JwksSource::Url(format!("{K8S}/openid/v1/jwks")));
    let ci = TrustedIssuerRecord {
        audiences: vec![],
        ca_pem: None,
        bearer_token_file: None,
        ..trust("https://ci.example", JwksSource::Discovery)
    };
    let spiffe = trust("spiffe://example.org", JwksSource::Inline(r#"{"keys":[]}"#.into()));
    let before = store.generations().await.unwrap();
    for issuer in [&spiffe, &k8s, &ci] {
        store.add_trusted_issuer(issuer.clone()).await.unwrap();
    }
    let after = store.generations().await.unwrap();
    assert!(after.trust > before.trust);
    assert_eq!(after.clients, before.clients);
    assert_eq!(
        store.trusted_issuers().await.unwrap(),
        vec![ci.clone(), k8s.clone(), spiffe.clone()]
    );
    assert!(matches!(
        store.add_trusted_issuer(k8s.clone()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(store.remove_trusted_issuer(K8S).await.unwrap());
    assert!(!store.remove_trusted_issuer(K8S).await.unwrap());
    assert!(!store.remove_trusted_issuer("nul\0byte").await.unwrap());
    assert!(store.generations().await.unwrap().trust > after.trust);
    assert_eq!(store.trusted_issuers().await.unwrap(), vec![ci, spiffe]);
}

fn certificate(matcher: CertificateMatch) -> ClientCertificateRecord {
    ClientCertificateRecord {
        matcher,
        created_at: 1_700_000_100,
    }
}

pub async fn client_certificates_read_back_in_order_and_go(store: &dyn Store) {
    store.create_client(sample_client("billing")).await.unwrap();
    let uri = certificate(CertificateMatch::SanUri(
        "spiffe://example.org/ns/payments/sa/billing".into(),
    ));
    let pin = certificate(CertificateMatch::Thumbprint(
        "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg".into(),
    ));
    let before = store.generations().await.unwrap();
    assert!(store.add_client_certificate("billing", pin.clone()).await.unwrap());
    assert!(store.generations().await.unwrap().clients > before.clients);
    assert!(store.add_client_certificate("billing", uri.clone()).await.unwrap());
    assert!(matches!(
        store.add_client_certificate("billing", uri.clone()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(!store.add_client_certificate("nobody", uri.clone()).await.unwrap());
    // The same name may be registered for another client: the request's
    // client_id says which one is meant.
    store.create_client(sample_client("ledger")).await.unwrap();
    assert!(store.add_client_certificate("ledger", uri.clone()).await.unwrap());
    let billing = store.client("billing").await.unwrap().unwrap();
    assert_eq!(billing.certificates, vec![uri.clone(), pin.clone()]);
    assert!(store.remove_client_certificate("billing", &uri.matcher).await.unwrap());
    assert!(!store.remove_client_certificate("billing", &uri.matcher).await.unwrap());
    assert_eq!(store.client("billing").await.unwrap().unwrap().certificates, vec![pin]);
    assert_eq!(store.client("ledger").await.unwrap().unwrap().certificates, vec![uri]);
}

pub async fn deleting_a_client_drops_its_certificates(store: &dyn Store) {
    store.create_client(sample_client("billing")).await.unwrap();
    let dns = certificate(CertificateMatch::SanDns("billing.internal".into()));
    assert!(store.add_client_certificate("billing", dns.clone()).await.unwrap());
    assert!(store.delete_client("billing").await.unwrap());
    store.create_client(sample_client("billing")).await.unwrap();
    assert!(store.client("billing").await.unwrap().unwrap().certificates.is_empty());
}

pub async fn an_update_changes_only_what_it_names(store: &dyn Store) {
    store.create_client(sample_client("billing")).await.unwrap();
    let before = store.generations().await.unwrap();
    let bind = ClientUpdate {
        bind_to_certificate: Some(true),
        ..Default::default()
    };
    assert!(store.update_client("billing", bind).await.unwrap());
    assert!(store.generations().await.unwrap().clients > before.clients);
    let mut expected = sample_client("billing");
    expected.bind_to_certificate = true;
    assert_eq!(store.client("billing").await.unwrap().unwrap(), expected);
    let rest = ClientUpdate {
        scopes: Some(vec!["only".into()]),
        audiences: Some(vec![]),
        token_ttl: Some(None),
        bind_to_certificate: None,
    };
    assert!(store.update_client("billing", rest).await.unwrap());
    expected.scopes = vec!["only".into()];
    expected.audiences = vec![];
    expected.token_ttl = None;
    assert_eq!(store.client("billing").await.unwrap().unwrap(), expected);
    assert!(!store.update_client("nobody", ClientUpdate::default()).await.unwrap());
}

pub async fn a_client_created_with_certificates_reads_back_identically(store: &dyn Store) {
    let mut client = sample_client("billing");
    client.bind_to_certificate = true;
    client.certificates = vec![
        certificate(CertificateMatch::SanDns("billing.internal".into())),
        certificate(CertificateMatch::SubjectDn("CN=billing,O=Example".into())),
    ];
    store.create_client(client.clone()).await.unwrap();
    assert_eq!(store.client("billing").await.unwrap().unwrap(), client);
}

pub async fn a_snapshot_restores_into_an_empty_store_identically_and_only_there(store: &dyn Store) {
    let mut billing = sample_client("billing");
    billing.bind_to_certificate = true;
    billing.certificates = vec![certificate(CertificateMatch::SanUri(
        "spiffe://example.org/billing".into(),
    ))];
    billing.keys = vec![ClientKeyRecord {
        kid: "k1".into(),
        alg: "ES256".into(),
        jwk: r#"{"kty":"EC"}"#.into(),
        created_at: 1_700_000_001,
    }];
    billing.federated = vec![FederatedIdentityRecord {
        issuer: K8S.into(),
        subject: "system:serviceaccount:prod:billing".into(),
        created_at: 1_700_000_002,
    }];
    let mut revoked_key = sample_key("old", 10);
    revoked_key.revoked_at = Some(20);
    let now = 1_800_000_000;
    let snapshot = StoreSnapshot {
        clients: vec![billing, sample_client("ledger")],
        trusted_issuers: vec![TrustedIssuerRecord {
            issuer: K8S.into(),
            jwks: JwksSource::Discovery,
            audiences: vec!["tessera".into()],
            max_lifetime_secs: 3600,
            ca_pem: None,
            bearer_token_file: None,
            created_at: 1_700_000_000,
        }],
        signing_keys: vec![revoked_key, sample_key("current", 30)],
        revoked_tokens: (0..3)
            .map(|i| RevokedToken {
                jti: format!("jti-{i}"),
                client_id: "billing".into(),
                expires_at: now + 60,
                revoked_at: now - 1,
            })
            .collect(),
        seen_assertions: vec![SeenAssertion {
            client_id: "ledger".into(),
            jti: "assertion-1".into(),
            expires_at: now + 60,
        }],
    };
    store.restore(snapshot.clone()).await.unwrap();
    assert_eq!(store.snapshot(now).await.unwrap(), snapshot);
    let (revoked, _) = store.revoked_tokens_after(now, 0).await.unwrap();
    assert_eq!(revoked.len(), 3, "restored revocations are read by replicas");
    assert!(
        !store
            .remember_assertion("ledger", "assertion-1", now + 60)
            .await
            .unwrap()
    );
    let again = store.restore(StoreSnapshot::default()).await;
    assert!(matches!(again, Err(StoreError::NotEmpty(_))), "{again:?}");
    let later = store.snapshot(now + 61).await.unwrap();
    assert!(
        later.revoked_tokens.is_empty() && later.seen_assertions.is_empty(),
        "expired entries are left out"
    );
}

pub async fn key_material_is_replaced_all_or_nothing(store: &dyn Store) {
    store.insert_first_signing_key(sample_key("a", 10)).await.unwrap();
    store.add_signing_key(sample_key("b", 20), None).await.unwrap();
    let change = |kid: &str, from: &[u8], to: &[u8]| KeyMaterialChange {
        kid: kid.into(),
        from: from.to_vec().into(),
        to: to.to_vec().into(),
    };
    let stale = vec![change("a", &[1, 2, 3], &[9]), change("b", &[7, 7], &[9])];
    assert!(!store.replace_signing_key_material(stale).await.unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert!(keys.iter().all(|k| *k.private_pkcs8 == [1, 2, 3]), "nothing changed");
    let fresh = vec![change("a", &[1, 2, 3], &[4]), change("b", &[1, 2, 3], &[5])];
    assert!(store.replace_signing_key_material(fresh).await.unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(*keys[0].private_pkcs8, [4]);
    assert_eq!(*keys[1].private_pkcs8, [5]);
}

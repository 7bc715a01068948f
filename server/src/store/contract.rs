//! The store contract: one suite every `Store` implementation must pass.

use super::{ClientRecord, RevokedToken, SecretRecord, SigningKeyRecord, Store, StoreError};

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
            created_at: 1_700_000_000,
            expires_at: None,
        }],
    }
}

fn sample_key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        private_pkcs8: vec![1, 2, 3],
        created_at,
        activates_at: created_at,
        revoked_at: None,
    }
}

pub async fn run_all(store: &dyn Store) {
    created_client_reads_back_identically(store).await;
    duplicate_client_id_is_refused(store).await;
    lookup_is_exact_byte_for_byte(store).await;
    disable_and_delete_report_whether_the_client_existed(store).await;
    replace_secrets_swaps_all_secrets(store).await;
    first_signing_key_is_inserted_once(store).await;
    every_write_bumps_the_generation(store).await;
    sql_like_ids_are_data(store).await;
    keys_are_added_only_on_top_of_the_expected_newest(store).await;
    a_key_is_revoked_once(store).await;
    revoked_tokens_are_kept_until_they_expire(store).await;
    same_second_keys_keep_insertion_order(store).await;
}

async fn created_client_reads_back_identically(store: &dyn Store) {
    let client = sample_client("contract-read");
    store.create_client(client.clone()).await.unwrap();
    assert_eq!(store.client("contract-read").await.unwrap(), Some(client));
}

async fn duplicate_client_id_is_refused(store: &dyn Store) {
    store.create_client(sample_client("contract-dup")).await.unwrap();
    let again = store.create_client(sample_client("contract-dup")).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(_))), "{again:?}");
}

async fn lookup_is_exact_byte_for_byte(store: &dyn Store) {
    store.create_client(sample_client("contract-exact")).await.unwrap();
    for near in ["CONTRACT-EXACT", "contract-exact ", " contract-exact", "contract-exac"] {
        assert_eq!(store.client(near).await.unwrap(), None, "{near:?} matched");
    }
}

async fn disable_and_delete_report_whether_the_client_existed(store: &dyn Store) {
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

async fn replace_secrets_swaps_all_secrets(store: &dyn Store) {
    store.create_client(sample_client("contract-rotate")).await.unwrap();
    let fresh = SecretRecord {
        secret_id: "new".into(),
        phc: "$argon2id$new".into(),
        created_at: 1,
        expires_at: Some(9),
    };
    assert!(store.replace_secrets("contract-rotate", fresh.clone()).await.unwrap());
    assert_eq!(
        store.client("contract-rotate").await.unwrap().unwrap().secrets,
        vec![fresh.clone()]
    );
    assert!(!store.replace_secrets("contract-nobody", fresh).await.unwrap());
}

async fn first_signing_key_is_inserted_once(store: &dyn Store) {
    let first = store.insert_first_signing_key(sample_key("k1", 10)).await.unwrap();
    let second = store.insert_first_signing_key(sample_key("k2", 20)).await.unwrap();
    assert_eq!(first, vec![sample_key("k1", 10)]);
    assert_eq!(second, first, "a second first key must not be added");
    assert_eq!(store.signing_keys().await.unwrap(), first);
}

async fn every_write_bumps_the_generation(store: &dyn Store) {
    let mut last = store.generation().await.unwrap();
    let mut bumped = |now: u64, what: &str| {
        assert!(now > last, "{what} did not bump the generation ({last} -> {now})");
        last = now;
    };
    store.create_client(sample_client("contract-gen")).await.unwrap();
    bumped(store.generation().await.unwrap(), "create_client");
    store.set_client_disabled("contract-gen", true).await.unwrap();
    bumped(store.generation().await.unwrap(), "set_client_disabled");
    store.delete_client("contract-gen").await.unwrap();
    bumped(store.generation().await.unwrap(), "delete_client");
}

async fn sql_like_ids_are_data(store: &dyn Store) {
    let id = "x'); DROP TABLE clients; --";
    store.create_client(sample_client(id)).await.unwrap();
    assert_eq!(store.client(id).await.unwrap().unwrap().client_id, id);
    assert!(store.list_clients().await.unwrap().len() > 1);
}

async fn keys_are_added_only_on_top_of_the_expected_newest(store: &dyn Store) {
    // Runs after first_signing_key_is_inserted_once: k1 is the newest key.
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

async fn a_key_is_revoked_once(store: &dyn Store) {
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

async fn revoked_tokens_are_kept_until_they_expire(store: &dyn Store) {
    let revoked = |jti: &str, expires_at| RevokedToken {
        jti: jti.into(),
        client_id: "c".into(),
        expires_at,
        revoked_at: 1,
    };
    let before = store.generation().await.unwrap();
    store.revoke_token(revoked("t1", 100)).await.unwrap();
    store.revoke_token(revoked("t1", 100)).await.unwrap();
    store.revoke_token(revoked("t2", 200)).await.unwrap();
    assert!(
        store.generation().await.unwrap() > before,
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
    assert_eq!(store.prune_revoked_tokens(150).await.unwrap(), 1);
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

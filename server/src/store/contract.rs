//! The store contract: one suite every `Store` implementation must pass.

use super::{ClientRecord, SecretRecord, SigningKeyRecord, Store, StoreError};

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
}

async fn created_client_reads_back_identically(store: &dyn Store) {
    let client = sample_client("contract-read");
    store.create_client(client.clone()).await.unwrap();
    assert_eq!(store.client("contract-read").await.unwrap(), Some(client));
}

async fn duplicate_client_id_is_refused(store: &dyn Store) {
    store
        .create_client(sample_client("contract-dup"))
        .await
        .unwrap();
    let again = store.create_client(sample_client("contract-dup")).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
}

async fn lookup_is_exact_byte_for_byte(store: &dyn Store) {
    store
        .create_client(sample_client("contract-exact"))
        .await
        .unwrap();
    for near in [
        "CONTRACT-EXACT",
        "contract-exact ",
        " contract-exact",
        "contract-exac",
    ] {
        assert_eq!(store.client(near).await.unwrap(), None, "{near:?} matched");
    }
}

async fn disable_and_delete_report_whether_the_client_existed(store: &dyn Store) {
    store
        .create_client(sample_client("contract-life"))
        .await
        .unwrap();
    assert!(
        store
            .set_client_disabled("contract-life", true)
            .await
            .unwrap()
    );
    assert!(
        store
            .client("contract-life")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(
        !store
            .set_client_disabled("contract-nobody", true)
            .await
            .unwrap()
    );
    assert!(store.delete_client("contract-life").await.unwrap());
    assert_eq!(store.client("contract-life").await.unwrap(), None);
    assert!(!store.delete_client("contract-life").await.unwrap());
    let listed = store.list_clients().await.unwrap();
    assert!(listed.iter().all(|c| c.client_id != "contract-life"));
}

async fn replace_secrets_swaps_all_secrets(store: &dyn Store) {
    store
        .create_client(sample_client("contract-rotate"))
        .await
        .unwrap();
    let fresh = SecretRecord {
        secret_id: "new".into(),
        phc: "$argon2id$new".into(),
        created_at: 1,
        expires_at: Some(9),
    };
    assert!(
        store
            .replace_secrets("contract-rotate", fresh.clone())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .client("contract-rotate")
            .await
            .unwrap()
            .unwrap()
            .secrets,
        vec![fresh.clone()]
    );
    assert!(
        !store
            .replace_secrets("contract-nobody", fresh)
            .await
            .unwrap()
    );
}

async fn first_signing_key_is_inserted_once(store: &dyn Store) {
    let first = store
        .insert_first_signing_key(sample_key("k1", 10))
        .await
        .unwrap();
    let second = store
        .insert_first_signing_key(sample_key("k2", 20))
        .await
        .unwrap();
    assert_eq!(first, vec![sample_key("k1", 10)]);
    assert_eq!(second, first, "a second first key must not be added");
    assert_eq!(store.signing_keys().await.unwrap(), first);
}

async fn every_write_bumps_the_generation(store: &dyn Store) {
    let mut last = store.generation().await.unwrap();
    let mut bumped = |now: u64, what: &str| {
        assert!(
            now > last,
            "{what} did not bump the generation ({last} -> {now})"
        );
        last = now;
    };
    store
        .create_client(sample_client("contract-gen"))
        .await
        .unwrap();
    bumped(store.generation().await.unwrap(), "create_client");
    store
        .set_client_disabled("contract-gen", true)
        .await
        .unwrap();
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

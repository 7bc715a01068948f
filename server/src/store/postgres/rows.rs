//! Reading and writing records as rows.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::db_error;
use crate::store::{ClientKeyRecord, ClientRecord, SecretRecord, SigningKeyRecord, StoreError};

pub(super) fn to_ttl(ttl: Option<u32>) -> Option<i64> {
    ttl.map(i64::from)
}

pub(super) fn from_ttl(ttl: Option<i64>) -> Result<Option<u32>, StoreError> {
    ttl.map(|t| u32::try_from(t).map_err(|_| StoreError::Corrupt(format!("token_ttl {t} out of range"))))
        .transpose()
}

/// Every client, by id, inside the caller's transaction.
pub(super) async fn load_all_clients(conn: &impl GenericClient) -> Result<Vec<ClientRecord>, StoreError> {
    let ids: Vec<String> = conn
        .query("SELECT client_id FROM clients ORDER BY client_id COLLATE \"C\"", &[])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut clients = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(client) = load_client(conn, id).await? {
            clients.push(client);
        }
    }
    Ok(clients)
}

/// Writes a client and everything it holds inside the caller's
/// transaction; [`StoreError::AlreadyExists`] if the id is taken.
pub(super) async fn insert_client(conn: &impl GenericClient, client: &ClientRecord) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO clients (client_id, scopes, audiences, token_ttl, disabled, created_at, bind_to_certificate)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (client_id) DO NOTHING",
            &[
                &client.client_id,
                &client.scopes,
                &client.audiences,
                &to_ttl(client.token_ttl),
                &client.disabled,
                &client.created_at,
                &client.bind_to_certificate,
            ],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!("client {:?}", client.client_id)));
    }
    for secret in &client.secrets {
        insert_secret(conn, &client.client_id, secret).await?;
    }
    for key in &client.keys {
        conn.execute(
            "INSERT INTO client_keys (client_id, kid, alg, jwk, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&client.client_id, &key.kid, &key.alg, &key.jwk, &key.created_at],
        )
        .await
        .map_err(db_error)?;
    }
    for identity in &client.federated {
        super::federation::insert_identity(conn, &client.client_id, identity).await?;
    }
    for certificate in &client.certificates {
        super::certificates::insert_certificate(conn, &client.client_id, certificate).await?;
    }
    Ok(())
}

pub(super) async fn load_client(
    conn: &impl GenericClient,
    client_id: &str,
) -> Result<Option<ClientRecord>, StoreError> {
    // PostgreSQL text cannot hold NUL, so no stored client has such an id.
    if client_id.contains('\0') {
        return Ok(None);
    }
    let Some(row) = conn
        .query_opt(
            "SELECT client_id, scopes, audiences, token_ttl, disabled, created_at, bind_to_certificate
             FROM clients WHERE client_id = $1",
            &[&client_id],
        )
        .await
        .map_err(db_error)?
    else {
        return Ok(None);
    };
    let secrets = conn
        .query(
            "SELECT secret_id, phc, created_at, expires_at, check_value FROM client_secrets
             WHERE client_id = $1 ORDER BY created_at DESC, secret_id COLLATE \"C\"",
            &[&client_id],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| SecretRecord {
            secret_id: r.get(0),
            phc: r.get(1),
            created_at: r.get(2),
            expires_at: r.get(3),
            check: r.get(4),
        })
        .collect();
    let keys = conn
        .query(
            "SELECT kid, alg, jwk, created_at FROM client_keys
             WHERE client_id = $1 ORDER BY created_at, kid COLLATE \"C\"",
            &[&client_id],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| ClientKeyRecord {
            kid: r.get(0),
            alg: r.get(1),
            jwk: r.get(2),
            created_at: r.get(3),
        })
        .collect();
    let federated = super::federation::identities_of(conn, client_id).await?;
    let certificates = super::certificates::certificates_of(conn, client_id).await?;
    Ok(Some(ClientRecord {
        federated,
        certificates,
        bind_to_certificate: row.get(6),
        client_id: row.get(0),
        scopes: row.get(1),
        audiences: row.get(2),
        token_ttl: from_ttl(row.get(3))?,
        disabled: row.get(4),
        created_at: row.get(5),
        secrets,
        keys,
    }))
}

pub(super) async fn insert_secret(
    conn: &impl GenericClient,
    client_id: &str,
    secret: &SecretRecord,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO client_secrets (secret_id, client_id, phc, created_at, expires_at, check_value)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &secret.secret_id,
            &client_id,
            &secret.phc,
            &secret.created_at,
            &secret.expires_at,
            &secret.check,
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn insert_key(conn: &impl GenericClient, key: &SigningKeyRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &key.kid,
            &key.alg,
            &*key.private_pkcs8,
            &key.created_at,
            &key.activates_at,
            &key.revoked_at,
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) fn key_from_row(r: &Row) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: r.get(0),
        alg: r.get(1),
        private_pkcs8: zeroize::Zeroizing::new(r.get(2)),
        created_at: r.get(3),
        activates_at: r.get(4),
        revoked_at: r.get(5),
    }
}

pub(super) async fn load_keys(conn: &impl GenericClient) -> Result<Vec<SigningKeyRecord>, StoreError> {
    Ok(conn
        .query(
            "SELECT kid, alg, private_pkcs8, created_at, activates_at, revoked_at FROM signing_keys
             ORDER BY activates_at, created_at, seq",
            &[],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(key_from_row)
        .collect())
}

pub(super) async fn client_exists(conn: &impl GenericClient, client_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_opt("SELECT 1 FROM clients WHERE client_id = $1 FOR UPDATE", &[&client_id])
        .await
        .map_err(db_error)?
        .is_some())
}

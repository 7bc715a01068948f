//! Reading and writing records as rows.

use rusqlite::{Connection, OptionalExtension, params};

use super::unavailable;
use crate::store::{ClientKeyRecord, ClientRecord, SecretRecord, SigningKeyRecord, StoreError};

pub(super) fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn from_json(column: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Reads the client row and its secrets inside the caller's transaction.
pub(super) fn load_client(conn: &Connection, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
    let row = conn
        .query_row(
            "SELECT client_id, scopes, audiences, token_ttl, disabled, created_at, bind_to_certificate
             FROM clients WHERE client_id = ?1",
            params![client_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<u32>>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            },
        )
        .optional()
        .map_err(unavailable)?;
    let Some((client_id, scopes, audiences, token_ttl, disabled, created_at, bind_to_certificate)) = row else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT secret_id, phc, created_at, expires_at, check_value FROM client_secrets
             WHERE client_id = ?1 ORDER BY created_at DESC, secret_id",
        )
        .map_err(unavailable)?;
    let secrets = stmt
        .query_map(params![client_id], |r| {
            Ok(SecretRecord {
                secret_id: r.get(0)?,
                phc: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                check: r.get(4)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT kid, alg, jwk, created_at FROM client_keys WHERE client_id = ?1 ORDER BY created_at, kid",
        )
        .map_err(unavailable)?;
    let keys = stmt
        .query_map(params![client_id], |r| {
            Ok(ClientKeyRecord {
                kid: r.get(0)?,
                alg: r.get(1)?,
                jwk: r.get(2)?,
                created_at: r.get(3)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    let federated = super::federation::identities_of(conn, &client_id)?;
    let certificates = super::certificates::certificates_of(conn, &client_id)?;
    Ok(Some(ClientRecord {
        keys,
        federated,
        certificates,
        bind_to_certificate,
        scopes: from_json("scopes", &scopes)?,
        audiences: from_json("audiences", &audiences)?,
        client_id,
        token_ttl,
        disabled,
        created_at,
        secrets,
    }))
}

/// Every client, by id, inside the caller's transaction.
pub(super) fn load_all_clients(conn: &Connection) -> Result<Vec<ClientRecord>, StoreError> {
    let ids = {
        let mut stmt = conn
            .prepare("SELECT client_id FROM clients ORDER BY client_id")
            .map_err(unavailable)?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?
    };
    ids.iter().filter_map(|id| load_client(conn, id).transpose()).collect()
}

/// Writes a client and everything it holds inside the caller's
/// transaction; [`StoreError::AlreadyExists`] if the id is taken.
pub(super) fn insert_client(conn: &Connection, client: &ClientRecord) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO clients (client_id, scopes, audiences, token_ttl, disabled, created_at, bind_to_certificate)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (client_id) DO NOTHING",
            params![
                client.client_id,
                to_json(&client.scopes),
                to_json(&client.audiences),
                client.token_ttl,
                client.disabled,
                client.created_at,
                client.bind_to_certificate
            ],
        )
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!("client {:?}", client.client_id)));
    }
    for secret in &client.secrets {
        insert_secret(conn, &client.client_id, secret)?;
    }
    for key in &client.keys {
        conn.execute(
            "INSERT INTO client_keys (client_id, kid, alg, jwk, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![client.client_id, key.kid, key.alg, key.jwk, key.created_at],
        )
        .map_err(unavailable)?;
    }
    for identity in &client.federated {
        super::federation::insert_identity(conn, &client.client_id, identity)?;
    }
    for certificate in &client.certificates {
        super::certificates::insert_certificate(conn, &client.client_id, certificate)?;
    }
    Ok(())
}

/// Runs `write` in an immediate transaction if the client exists, and
/// commits; false (nothing written) when it does not.
pub(super) fn write_for_client(
    conn: &mut Connection,
    client_id: &str,
    write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    if !client_exists(&tx, client_id)? {
        return Ok(false);
    }
    write(&tx)?;
    tx.commit().map_err(unavailable)?;
    Ok(true)
}

pub(super) fn client_exists(conn: &Connection, client_id: &str) -> Result<bool, StoreError> {
    conn.query_row("SELECT 1 FROM clients WHERE client_id = ?1", params![client_id], |_| {
        Ok(())
    })
    .optional()
    .map(|found| found.is_some())
    .map_err(unavailable)
}

pub(super) fn insert_secret(conn: &Connection, client_id: &str, secret: &SecretRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO client_secrets (secret_id, client_id, phc, created_at, expires_at, check_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            secret.secret_id,
            client_id,
            secret.phc,
            secret.created_at,
            secret.expires_at,
            secret.check
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn insert_key(conn: &Connection, key: &SigningKeyRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.kid,
            key.alg,
            key.private_pkcs8.as_slice(),
            key.created_at,
            key.activates_at,
            key.revoked_at
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn load_keys(conn: &Connection) -> Result<Vec<SigningKeyRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT kid, alg, private_pkcs8, created_at, activates_at, revoked_at FROM signing_keys
             ORDER BY activates_at, created_at, rowid",
        )
        .map_err(unavailable)?;
    stmt.query_map([], |r| {
        Ok(SigningKeyRecord {
            kid: r.get(0)?,
            alg: r.get(1)?,
            private_pkcs8: zeroize::Zeroizing::new(r.get(2)?),
            created_at: r.get(3)?,
            activates_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    })
    .map_err(unavailable)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(unavailable)
}

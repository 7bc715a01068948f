//! Client certificates and client settings, as rows.

use rusqlite::{Connection, params};

use super::rows::{to_json, write_for_client};
use super::unavailable;
use crate::store::{CertificateMatch, ClientCertificateRecord, ClientUpdate, StoreError};

pub(super) fn add_certificate(
    conn: &mut Connection,
    client_id: &str,
    certificate: &ClientCertificateRecord,
) -> Result<bool, StoreError> {
    write_for_client(conn, client_id, |tx| insert_certificate(tx, client_id, certificate))
}

/// Inserts a registration; [`StoreError::AlreadyExists`] when the client has it.
pub(super) fn insert_certificate(
    conn: &Connection,
    client_id: &str,
    certificate: &ClientCertificateRecord,
) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO client_certificates (client_id, kind, value, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (client_id, kind, value) DO NOTHING",
            params![
                client_id,
                certificate.matcher.kind(),
                certificate.matcher.value(),
                certificate.created_at
            ],
        )
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "{} of client {client_id:?}",
            certificate.matcher
        )));
    }
    Ok(())
}

pub(super) fn remove_certificate(
    conn: &Connection,
    client_id: &str,
    matcher: &CertificateMatch,
) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM client_certificates WHERE client_id = ?1 AND kind = ?2 AND value = ?3",
        params![client_id, matcher.kind(), matcher.value()],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

/// The certificates registered for one client, ordered by kind and value.
pub(super) fn certificates_of(conn: &Connection, client_id: &str) -> Result<Vec<ClientCertificateRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, value, created_at FROM client_certificates WHERE client_id = ?1 ORDER BY kind, value",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![client_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(kind, value, created_at)| {
            Ok(ClientCertificateRecord {
                matcher: CertificateMatch::from_stored(&kind, value)?,
                created_at,
            })
        })
        .collect()
}

/// Applies an update in one transaction. False when there is no such client.
pub(super) fn update_client(conn: &mut Connection, client_id: &str, update: &ClientUpdate) -> Result<bool, StoreError> {
    write_for_client(conn, client_id, |tx| apply_update(tx, client_id, update))
}

fn apply_update(tx: &Connection, client_id: &str, update: &ClientUpdate) -> Result<(), StoreError> {
    let set = |column: &str, value: &dyn rusqlite::ToSql| {
        tx.execute(
            &format!("UPDATE clients SET {column} = ?2 WHERE client_id = ?1"),
            params![client_id, value],
        )
        .map_err(unavailable)
    };
    if let Some(scopes) = &update.scopes {
        set("scopes", &to_json(scopes))?;
    }
    if let Some(audiences) = &update.audiences {
        set("audiences", &to_json(audiences))?;
    }
    if let Some(ttl) = &update.token_ttl {
        set("token_ttl", ttl)?;
    }
    if let Some(bind) = &update.bind_to_certificate {
        set("bind_to_certificate", bind)?;
    }
    Ok(())
}

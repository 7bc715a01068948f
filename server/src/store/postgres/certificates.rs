//! Client certificates and client settings, as rows.

use deadpool_postgres::GenericClient;

use super::db_error;
use super::rows::{client_exists, to_ttl};
use crate::store::{CertificateMatch, ClientCertificateRecord, ClientUpdate, StoreError};

/// Registers a certificate inside the caller's transaction; false when there
/// is no such client.
pub(super) async fn add_certificate(
    tx: &impl GenericClient,
    client_id: &str,
    certificate: &ClientCertificateRecord,
) -> Result<bool, StoreError> {
    if !client_exists(tx, client_id).await? {
        return Ok(false);
    }
    insert_certificate(tx, client_id, certificate).await?;
    Ok(true)
}

/// Inserts a registration; [`StoreError::AlreadyExists`] when the client has it.
pub(super) async fn insert_certificate(
    conn: &impl GenericClient,
    client_id: &str,
    certificate: &ClientCertificateRecord,
) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO client_certificates (client_id, kind, value, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client_id, kind, value) DO NOTHING",
            &[
                &client_id,
                &certificate.matcher.kind(),
                &certificate.matcher.value(),
                &certificate.created_at,
            ],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "{} of client {client_id:?}",
            certificate.matcher
        )));
    }
    Ok(())
}

pub(super) async fn remove_certificate(
    conn: &impl GenericClient,
    client_id: &str,
    matcher: &CertificateMatch,
) -> Result<bool, StoreError> {
    if client_id.contains('\0') || matcher.value().contains('\0') {
        return Ok(false);
    }
    conn.execute(
        "DELETE FROM client_certificates WHERE client_id = $1 AND kind = $2 AND value = $3",
        &[&client_id, &matcher.kind(), &matcher.value()],
    )
    .await
    .map(|n| n > 0)
    .map_err(db_error)
}

/// The certificates registered for one client, ordered by kind and value.
pub(super) async fn certificates_of(
    conn: &impl GenericClient,
    client_id: &str,
) -> Result<Vec<ClientCertificateRecord>, StoreError> {
    conn.query(
        "SELECT kind, value, created_at FROM client_certificates WHERE client_id = $1
         ORDER BY kind COLLATE \"C\", value COLLATE \"C\"",
        &[&client_id],
    )
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        Ok(ClientCertificateRecord {
            matcher: CertificateMatch::from_stored(r.get(0), r.get(1))?,
            created_at: r.get(2),
        })
    })
    .collect()
}

/// Applies an update inside the caller's transaction. False when there is no such client.
pub(super) async fn update_client(
    tx: &impl GenericClient,
    client_id: &str,
    update: &ClientUpdate,
) -> Result<bool, StoreError> {
    if client_id.contains('\0') || !client_exists(tx, client_id).await? {
        return Ok(false);
    }
    let set = async |column: &str, value: &(dyn tokio_postgres::types::ToSql + Sync)| {
        tx.execute(
            &format!("UPDATE clients SET {column} = $2 WHERE client_id = $1"),
            &[&client_id, value],
        )
        .await
        .map_err(db_error)
    };
    if let Some(scopes) = &update.scopes {
        set("scopes", scopes).await?;
    }
    if let Some(audiences) = &update.audiences {
        set("audiences", audiences).await?;
    }
    if let Some(ttl) = &update.token_ttl {
        set("token_ttl", &to_ttl(*ttl)).await?;
    }
    if let Some(bind) = &update.bind_to_certificate {
        set("bind_to_certificate", bind).await?;
    }
    Ok(true)
}

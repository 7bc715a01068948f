//! Trusted issuers and the platform identities bound to clients, as rows.

use deadpool_postgres::GenericClient;

use super::db_error;
use super::rows::client_exists;
use crate::store::{FederatedIdentityRecord, JwksSource, StoreError, TrustedIssuerRecord};

/// Binds an identity inside the caller's transaction; false when there is
/// no such client.
pub(super) async fn add_identity(
    tx: &impl GenericClient,
    client_id: &str,
    identity: &FederatedIdentityRecord,
) -> Result<bool, StoreError> {
    if !client_exists(tx, client_id).await? {
        return Ok(false);
    }
    insert_identity(tx, client_id, identity).await?;
    Ok(true)
}

/// Inserts a binding; [`StoreError::AlreadyExists`] when the (issuer,
/// subject) is bound to any client already.
pub(super) async fn insert_identity(
    conn: &impl GenericClient,
    client_id: &str,
    identity: &FederatedIdentityRecord,
) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO federated_identities (issuer, subject, client_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (issuer, subject) DO NOTHING",
            &[&identity.issuer, &identity.subject, &client_id, &identity.created_at],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "subject {:?} of issuer {:?}",
            identity.subject, identity.issuer
        )));
    }
    Ok(())
}

/// The client an identity is bound to.
pub(super) async fn client_for_identity(
    conn: &impl GenericClient,
    issuer: &str,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    // PostgreSQL text cannot hold NUL, so no stored identity has one.
    if issuer.contains('\0') || subject.contains('\0') {
        return Ok(None);
    }
    let statement = conn
        .prepare_cached("SELECT client_id FROM federated_identities WHERE issuer = $1 AND subject = $2")
        .await
        .map_err(db_error)?;
    Ok(conn
        .query_opt(&statement, &[&issuer, &subject])
        .await
        .map_err(db_error)?
        .map(|row| row.get(0)))
}

/// The identities bound to one client, ordered by issuer and subject.
pub(super) async fn identities_of(
    conn: &impl GenericClient,
    client_id: &str,
) -> Result<Vec<FederatedIdentityRecord>, StoreError> {
    Ok(conn
        .query(
            "SELECT issuer, subject, created_at FROM federated_identities WHERE client_id = $1
             ORDER BY issuer COLLATE \"C\", subject COLLATE \"C\"",
            &[&client_id],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| FederatedIdentityRecord {
            issuer: r.get(0),
            subject: r.get(1),
            created_at: r.get(2),
        })
        .collect())
}

pub(super) async fn add_issuer(conn: &impl GenericClient, issuer: &TrustedIssuerRecord) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO trusted_issuers
                 (issuer, jwks_source, jwks, audiences, max_lifetime, ca_pem, bearer_token_file, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (issuer) DO NOTHING",
            &[
                &issuer.issuer,
                &issuer.jwks.kind(),
                &issuer.jwks.value(),
                &issuer.audiences,
                &i64::from(issuer.max_lifetime_secs),
                &issuer.ca_pem,
                &issuer.bearer_token_file,
                &issuer.created_at,
            ],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!("trusted issuer {:?}", issuer.issuer)));
    }
    Ok(())
}

pub(super) async fn issuers(conn: &impl GenericClient) -> Result<Vec<TrustedIssuerRecord>, StoreError> {
    conn.query(
        "SELECT issuer, jwks_source, jwks, audiences, max_lifetime, ca_pem, bearer_token_file, created_at
         FROM trusted_issuers ORDER BY issuer COLLATE \"C\"",
        &[],
    )
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        let max_lifetime: i64 = r.get(4);
        Ok(TrustedIssuerRecord {
            issuer: r.get(0),
            jwks: JwksSource::from_stored(r.get::<_, &str>(1), r.get(2))?,
            audiences: r.get(3),
            max_lifetime_secs: u32::try_from(max_lifetime)
                .map_err(|_| StoreError::Corrupt(format!("max_lifetime {max_lifetime} out of range")))?,
            ca_pem: r.get(5),
            bearer_token_file: r.get(6),
            created_at: r.get(7),
        })
    })
    .collect()
}

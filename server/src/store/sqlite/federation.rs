//! Trusted issuers and the platform identities bound to clients, as rows.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{from_json, to_json, write_for_client};
use super::unavailable;
use crate::store::{FederatedIdentityRecord, JwksSource, StoreError, TrustedIssuerRecord};

pub(super) fn add_identity(
    conn: &mut Connection,
    client_id: &str,
    identity: &FederatedIdentityRecord,
) -> Result<bool, StoreError> {
    write_for_client(conn, client_id, |tx| insert_identity(tx, client_id, identity))
}

/// Inserts a binding; [`StoreError::AlreadyExists`] when the (issuer,
/// subject) is bound to any client already.
pub(super) fn insert_identity(
    conn: &Connection,
    client_id: &str,
    identity: &FederatedIdentityRecord,
) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO federated_identities (issuer, subject, client_id, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (issuer, subject) DO NOTHING",
            params![identity.issuer, identity.subject, client_id, identity.created_at],
        )
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!(
            "subject {:?} of issuer {:?}",
            identity.subject, identity.issuer
        )));
    }
    Ok(())
}

pub(super) fn remove_identity(
    conn: &Connection,
    client_id: &str,
    issuer: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM federated_identities WHERE client_id = ?1 AND issuer = ?2 AND subject = ?3",
        params![client_id, issuer, subject],
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

pub(super) fn client_for_identity(
    conn: &Connection,
    issuer: &str,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT client_id FROM federated_identities WHERE issuer = ?1 AND subject = ?2")
        .map_err(unavailable)?
        .query_row(params![issuer, subject], |r| r.get(0))
        .optional()
        .map_err(unavailable)
}

/// The identities bound to one client, ordered by issuer and subject.
pub(super) fn identities_of(conn: &Connection, client_id: &str) -> Result<Vec<FederatedIdentityRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT issuer, subject, created_at FROM federated_identities WHERE client_id = ?1
             ORDER BY issuer, subject",
        )
        .map_err(unavailable)?;
    stmt.query_map(params![client_id], |r| {
        Ok(FederatedIdentityRecord {
            issuer: r.get(0)?,
            subject: r.get(1)?,
            created_at: r.get(2)?,
        })
    })
    .map_err(unavailable)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(unavailable)
}

pub(super) fn add_issuer(conn: &Connection, issuer: &TrustedIssuerRecord) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO trusted_issuers
                 (issuer, jwks_source, jwks, audiences, max_lifetime, ca_pem, bearer_token_file, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (issuer) DO NOTHING",
            params![
                issuer.issuer,
                issuer.jwks.kind(),
                issuer.jwks.value(),
                to_json(&issuer.audiences),
                issuer.max_lifetime_secs,
                issuer.ca_pem,
                issuer.bearer_token_file,
                issuer.created_at
            ],
        )
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!("trusted issuer {:?}", issuer.issuer)));
    }
    Ok(())
}

pub(super) fn issuers(conn: &Connection) -> Result<Vec<TrustedIssuerRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT issuer, jwks_source, jwks, audiences, max_lifetime, ca_pem, bearer_token_file, created_at
             FROM trusted_issuers ORDER BY issuer",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    rows.into_iter()
        .map(
            |(issuer, kind, value, audiences, max_lifetime_secs, ca_pem, bearer_token_file, created_at)| {
                Ok(TrustedIssuerRecord {
                    issuer,
                    jwks: JwksSource::from_stored(&kind, value)?,
                    audiences: from_json("audiences", &audiences)?,
                    max_lifetime_secs,
                    ca_pem,
                    bearer_token_file,
                    created_at,
                })
            },
        )
        .collect()
}

pub(super) fn remove_issuer(conn: &Connection, issuer: &str) -> Result<bool, StoreError> {
    conn.execute("DELETE FROM trusted_issuers WHERE issuer = ?1", params![issuer])
        .map(|n| n > 0)
        .map_err(unavailable)
}

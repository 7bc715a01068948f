//! The whole store in one transaction, out (`export-store`) and in (`import-store`).

use rusqlite::{Connection, TransactionBehavior, params};

use super::rows::{insert_client, insert_key, load_all_clients, load_keys};
use super::{federation, unavailable};
use crate::clock::UnixTime;
use crate::store::{RevokedToken, SeenAssertion, StoreError, StoreSnapshot};

/// Reads everything in one read transaction: a consistent snapshot.
pub(super) fn read(conn: &mut Connection, now: UnixTime) -> Result<StoreSnapshot, StoreError> {
    let tx = conn.transaction().map_err(unavailable)?;
    let revoked_tokens = {
        let mut stmt = tx
            .prepare(
                "SELECT jti, client_id, expires_at, revoked_at FROM revoked_tokens
                 WHERE expires_at > ?1 ORDER BY position",
            )
            .map_err(unavailable)?;
        stmt.query_map(params![now], |r| {
            Ok(RevokedToken {
                jti: r.get(0)?,
                client_id: r.get(1)?,
                expires_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?
    };
    let seen_assertions = {
        let mut stmt = tx
            .prepare(
                "SELECT client_id, jti, expires_at FROM seen_assertions
                 WHERE expires_at > ?1 ORDER BY client_id, jti",
            )
            .map_err(unavailable)?;
        stmt.query_map(params![now], |r| {
            Ok(SeenAssertion {
                client_id: r.get(0)?,
                jti: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?
    };
    Ok(StoreSnapshot {
        clients: load_all_clients(&tx)?,
        trusted_issuers: federation::issuers(&tx)?,
        signing_keys: load_keys(&tx)?,
        revoked_tokens,
        seen_assertions,
    })
}

/// Writes everything in one immediate transaction, after checking (under
/// the write lock) that the store is empty.
pub(super) fn write(conn: &mut Connection, snapshot: &StoreSnapshot) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    refuse_unless_empty(&tx)?;
    for client in &snapshot.clients {
        insert_client(&tx, client)?;
    }
    for issuer in &snapshot.trusted_issuers {
        federation::add_issuer(&tx, issuer)?;
    }
    for key in &snapshot.signing_keys {
        insert_key(&tx, key)?;
    }
    {
        let mut stmt = tx
            .prepare("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4)")
            .map_err(unavailable)?;
        for token in &snapshot.revoked_tokens {
            stmt.execute(params![token.jti, token.client_id, token.expires_at, token.revoked_at])
                .map_err(unavailable)?;
        }
        let mut stmt = tx
            .prepare("INSERT INTO seen_assertions (client_id, jti, expires_at) VALUES (?1, ?2, ?3)")
            .map_err(unavailable)?;
        for seen in &snapshot.seen_assertions {
            stmt.execute(params![seen.client_id, seen.jti, seen.expires_at])
                .map_err(unavailable)?;
        }
    }
    tx.commit().map_err(unavailable)
}

fn refuse_unless_empty(conn: &Connection) -> Result<(), StoreError> {
    for (table, what) in crate::store::MUST_BE_EMPTY_TO_RESTORE {
        let count: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(unavailable)?;
        if count > 0 {
            return Err(StoreError::NotEmpty(format!("it holds {count} {what}")));
        }
    }
    Ok(())
}

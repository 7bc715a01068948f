//! The whole store in one transaction, out (`export-store`) and in (`import-store`).

use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::IsolationLevel;

use super::rows::{insert_client, insert_key, load_all_clients, load_keys};
use super::{db_error, federation};
use crate::clock::UnixTime;
use crate::store::{RevokedToken, SeenAssertion, StoreError, StoreSnapshot};

/// Reads everything in one repeatable-read, read-only transaction: a
/// consistent snapshot while replicas keep writing.
pub(super) async fn read(conn: &mut Object, now: UnixTime) -> Result<StoreSnapshot, StoreError> {
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_error)?;
    let revoked_tokens = tx
        .query(
            "SELECT jti, client_id, expires_at, revoked_at FROM revoked_tokens
             WHERE expires_at > $1 ORDER BY position",
            &[&now],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| RevokedToken {
            jti: r.get(0),
            client_id: r.get(1),
            expires_at: r.get(2),
            revoked_at: r.get(3),
        })
        .collect();
    let seen_assertions = tx
        .query(
            "SELECT client_id, jti, expires_at FROM seen_assertions
             WHERE expires_at > $1 ORDER BY client_id COLLATE \"C\", jti COLLATE \"C\"",
            &[&now],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| SeenAssertion {
            client_id: r.get(0),
            jti: r.get(1),
            expires_at: r.get(2),
        })
        .collect();
    let snapshot = StoreSnapshot {
        clients: load_all_clients(&tx).await?,
        trusted_issuers: federation::issuers(&tx).await?,
        signing_keys: load_keys(&tx).await?,
        revoked_tokens,
        seen_assertions,
    };
    tx.commit().await.map_err(db_error)?;
    Ok(snapshot)
}

/// Writes everything in one transaction, after checking (under locks that
/// keep a starting replica from writing its first key meanwhile) that the
/// store is empty. Revocations go in bulk, positioned after the counter.
pub(super) async fn write(conn: &mut Object, snapshot: &StoreSnapshot) -> Result<(), StoreError> {
    let tx = conn.transaction().await.map_err(db_error)?;
    tx.batch_execute("LOCK TABLE clients, signing_keys, trusted_issuers, revoked_tokens IN SHARE ROW EXCLUSIVE MODE")
        .await
        .map_err(db_error)?;
    refuse_unless_empty(&tx).await?;
    for client in &snapshot.clients {
        insert_client(&tx, client).await?;
    }
    for issuer in &snapshot.trusted_issuers {
        federation::add_issuer(&tx, issuer).await?;
    }
    for key in &snapshot.signing_keys {
        insert_key(&tx, key).await?;
    }
    let count = i64::try_from(snapshot.revoked_tokens.len()).unwrap_or(i64::MAX);
    // Positions continue the revocations counter, as revoke_token's do.
    let last: i64 = tx
        .query_one(
            "UPDATE change_topics SET generation = generation + $1 WHERE topic = 'revocations' RETURNING generation",
            &[&count],
        )
        .await
        .map_err(db_error)?
        .get(0);
    let column = |f: fn(&RevokedToken) -> String| snapshot.revoked_tokens.iter().map(f).collect::<Vec<_>>();
    let (jtis, clients) = (column(|t| t.jti.clone()), column(|t| t.client_id.clone()));
    let expiries: Vec<i64> = snapshot.revoked_tokens.iter().map(|t| t.expires_at).collect();
    let revoked_at: Vec<i64> = snapshot.revoked_tokens.iter().map(|t| t.revoked_at).collect();
    tx.execute(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, position)
         SELECT jti, client_id, expires_at, revoked_at, $5::bigint - $6::bigint + ordinality
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY
             AS t(jti, client_id, expires_at, revoked_at, ordinality)",
        &[&jtis, &clients, &expiries, &revoked_at, &last, &count],
    )
    .await
    .map_err(db_error)?;
    let assertion_clients: Vec<&str> = snapshot.seen_assertions.iter().map(|a| a.client_id.as_str()).collect();
    let assertion_jtis: Vec<&str> = snapshot.seen_assertions.iter().map(|a| a.jti.as_str()).collect();
    let assertion_expiries: Vec<i64> = snapshot.seen_assertions.iter().map(|a| a.expires_at).collect();
    tx.execute(
        "INSERT INTO seen_assertions (client_id, jti, expires_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[])",
        &[&assertion_clients, &assertion_jtis, &assertion_expiries],
    )
    .await
    .map_err(db_error)?;
    tx.execute("SELECT pg_notify($1, 'revocations')", &[&super::CHANNEL])
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

async fn refuse_unless_empty(conn: &impl GenericClient) -> Result<(), StoreError> {
    for (table, what) in crate::store::MUST_BE_EMPTY_TO_RESTORE {
        let count: i64 = conn
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .map_err(db_error)?
            .get(0);
        if count > 0 {
            return Err(StoreError::NotEmpty(format!("it holds {count} {what}")));
        }
    }
    Ok(())
}

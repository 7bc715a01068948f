//! The shared store for several replicas: one PostgreSQL database.
//!
//! Every write is one transaction, acknowledged only after `COMMIT` returns,
//! so a replica killed at any point loses nothing it acknowledged. Each write
//! bumps a per-topic change counter in the same transaction and sends
//! `NOTIFY tessera_changes`, which PostgreSQL delivers only on commit: replicas
//! `LISTEN` and resynchronise at once, and poll the counters as a fallback for
//! a notification lost with a dropped connection.
//!
//! Races between replicas are settled by the database, never by timing: the
//! first signing key and scheduled rotations are written under a table lock,
//! migrations under an advisory lock, and assertion ids by a primary key.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tracing::info;

use super::{
    CertificateMatch, ClientCertificateRecord, ClientKeyRecord, ClientRecord, ClientUpdate, FederatedIdentityRecord,
    Generations, KeyMaterialChange, RevokedToken, SecretRecord, SigningKeyRecord, Store, StoreError, StoreSnapshot,
    TrustedIssuerRecord,
};
use crate::clock::UnixTime;

mod certificates;
mod federation;
mod listen;
mod rows;
mod schema;
mod snapshot;
pub mod tls;

use listen::listen;
use rows::*;
use schema::MIGRATIONS;

/// The channel every write notifies on commit.
const CHANNEL: &str = "tessera_changes";

/// Any one store call gives up after this long, so a database that hangs
/// (rather than refusing connections) turns into an answer, not a stuck request.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Key of the advisory lock migrations run under ("tessera" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261;

/// A [`Store`] in a PostgreSQL database shared by every replica.
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// `sslmode` and the certificates, to explain a failed connection.
    tls: tls::TlsSettings,
    /// Makes the TLS connections of the pool and of the listener.
    connector: tokio_postgres_rustls::MakeRustlsConnect,
    /// Woken on every change notification; created, with its listener task,
    /// by the first [`Store::change_signal`] call (the CLI never listens).
    signal: OnceLock<(Arc<Notify>, AbortOnDrop)>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: name only where it points.
        f.debug_struct("PostgresStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Says what went wrong without echoing the URL (which may hold a password).
fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Unavailable(format!("PostgreSQL: {} ({})", db.message(), db.code().code())),
        None => StoreError::Unavailable(format!("PostgreSQL: {e}")),
    }
}

impl PostgresStore {
    /// Connects to the database named by a `postgres://` URL and brings its
    /// schema up to date. Several replicas may do this at once.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL is malformed or the database
    /// cannot be reached or migrated; [`StoreError::Corrupt`] when its schema
    /// is newer than this Tessera.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let (url, tls) = tls::split_url(url).map_err(StoreError::Unavailable)?;
        let mut config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| StoreError::Unavailable(format!("malformed PostgreSQL URL: {e}")))?;
        config.ssl_mode(tls.driver_mode());
        let connector = tls.connector().map_err(StoreError::Unavailable)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CALL_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tessera");
        }
        let manager = Manager::from_config(
            config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CALL_TIMEOUT))
            .recycle_timeout(Some(CALL_TIMEOUT))
            .build()
            .map_err(unavailable)?;
        let store = Self {
            pool,
            config,
            tls,
            connector,
            signal: OnceLock::new(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client_conn().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        // Replicas starting together on an empty database: one migrates, the
        // others wait here and then find nothing left to do.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db_error)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS tessera_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .await
            .map_err(db_error)?;
        let applied: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM tessera_schema", &[])
            .await
            .map_err(db_error)?
            .get(0);
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "schema version {applied} is newer than this Tessera knows ({}); upgrade Tessera",
                MIGRATIONS.len()
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.batch_execute(migration).await.map_err(db_error)?;
            let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
            tx.execute("INSERT INTO tessera_schema (version) VALUES ($1)", &[&version])
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        if applied < MIGRATIONS.len() {
            info!(from = applied, to = MIGRATIONS.len(), "PostgreSQL schema migrated");
        }
        Ok(())
    }

    async fn client_conn(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| self.connect_error(e))
    }

    /// A failed connection, saying which TLS check failed when one did.
    fn connect_error(&self, error: deadpool_postgres::PoolError) -> StoreError {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => String::new(),
        };
        match error {
            deadpool_postgres::PoolError::Backend(e) => match self.tls.explain(&e, &host) {
                Some(explained) => StoreError::Unavailable(explained),
                None => db_error(e),
            },
            other => unavailable(other),
        }
    }

    /// One statement on its own, with the call timeout: the rows it changed.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            conn.execute(sql, params).await.map_err(db_error)
        })
        .await
    }
}

/// Runs one store call with the call timeout.
async fn timed<T>(call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("PostgreSQL did not answer in time".into())))
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            insert_client(&tx, &client).await?;
            tx.commit().await.map_err(db_error)
        })
        .await
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            // One snapshot for the client and its secrets and keys.
            let tx = conn
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db_error)?;
            let client = load_client(&tx, client_id).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(client)
        })
        .await
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db_error)?;
            let clients = load_all_clients(&tx).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(clients)
        })
        .await
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE clients SET disabled = $2 WHERE client_id = $1",
                &[&client_id, &disabled],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .execute("DELETE FROM clients WHERE client_id = $1", &[&client_id])
            .await?;
        Ok(deleted > 0)
    }

    async fn add_secret(
        &self,
        client_id: &str,
        secret: SecretRecord,
        others_expire_at: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            if !client_exists(&tx, client_id).await? {
                return Ok(false);
            }
            if let Some(at) = others_expire_at {
                tx.execute(
                    "UPDATE client_secrets SET expires_at = $2
                     WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
                    &[&client_id, &at],
                )
                .await
                .map_err(db_error)?;
            }
            insert_secret(&tx, client_id, &secret).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn set_secret_check(&self, client_id: &str, secret_id: &str, check: &str) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE client_secrets SET check_value = $3
                 WHERE client_id = $1 AND secret_id = $2 AND check_value IS NULL",
                &[&client_id, &secret_id, &check],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn add_client_key(&self, client_id: &str, key: ClientKeyRecord) -> Result<bool, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            if !client_exists(&tx, client_id).await? {
                return Ok(false);
            }
            let inserted = tx
                .execute(
                    "INSERT INTO client_keys (client_id, kid, alg, jwk, created_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (client_id, kid) DO NOTHING",
                    &[&client_id, &key.kid, &key.alg, &key.jwk, &key.created_at],
                )
                .await
                .map_err(db_error)?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "key {:?} of client {client_id:?}",
                    key.kid
                )));
            }
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn remove_client_key(&self, client_id: &str, kid: &str) -> Result<bool, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            let removed = conn
                .execute(
                    "DELETE FROM client_keys WHERE client_id = $1 AND kid = $2",
                    &[&client_id, &kid],
                )
                .await
                .map_err(db_error)?;
            Ok(removed > 0)
        })
        .await
    }

    async fn add_federated_identity(
        &self,
        client_id: &str,
        identity: FederatedIdentityRecord,
    ) -> Result<bool, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            let added = federation::add_identity(&tx, client_id, &identity).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(added)
        })
        .await
    }

    async fn remove_federated_identity(
        &self,
        client_id: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<bool, StoreError> {
        if [client_id, issuer, subject].iter().any(|text| text.contains('\0')) {
            return Ok(false);
        }
        let removed = self
            .execute(
                "DELETE FROM federated_identities WHERE client_id = $1 AND issuer = $2 AND subject = $3",
                &[&client_id, &issuer, &subject],
            )
            .await?;
        Ok(removed > 0)
    }

    async fn client_for_federated_identity(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            federation::client_for_identity(&conn, issuer, subject).await
        })
        .await
    }

    async fn update_client(&self, client_id: &str, update: ClientUpdate) -> Result<bool, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            let updated = certificates::update_client(&tx, client_id, &update).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(updated)
        })
        .await
    }

    async fn add_client_certificate(
        &self,
        client_id: &str,
        certificate: ClientCertificateRecord,
    ) -> Result<bool, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            let added = certificates::add_certificate(&tx, client_id, &certificate).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(added)
        })
        .await
    }

    async fn remove_client_certificate(&self, client_id: &str, matcher: &CertificateMatch) -> Result<bool, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            certificates::remove_certificate(&conn, client_id, matcher).await
        })
        .await
    }

    async fn add_trusted_issuer(&self, issuer: TrustedIssuerRecord) -> Result<(), StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            federation::add_issuer(&conn, &issuer).await
        })
        .await
    }

    async fn trusted_issuers(&self) -> Result<Vec<TrustedIssuerRecord>, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            federation::issuers(&conn).await
        })
        .await
    }

    async fn remove_trusted_issuer(&self, issuer: &str) -> Result<bool, StoreError> {
        if issuer.contains('\0') {
            return Ok(false);
        }
        let removed = self
            .execute("DELETE FROM trusted_issuers WHERE issuer = $1", &[&issuer])
            .await?;
        Ok(removed > 0)
    }

    async fn remember_assertion(&self, client_id: &str, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        // The primary key settles concurrent replicas: one insert wins.
        let inserted = self
            .execute(
                "INSERT INTO seen_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (client_id, jti) DO NOTHING",
                &[&client_id, &jti, &expires_at],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            load_keys(&conn).await
        })
        .await
    }

    async fn insert_first_signing_key(&self, key: SigningKeyRecord) -> Result<Vec<SigningKeyRecord>, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            // Replicas starting together on an empty database: the lock makes
            // the check and the insert one step, so exactly one key is created.
            tx.batch_execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
                .await
                .map_err(db_error)?;
            let count: i64 = tx
                .query_one("SELECT COUNT(*) FROM signing_keys", &[])
                .await
                .map_err(db_error)?
                .get(0);
            if count == 0 {
                insert_key(&tx, &key).await?;
            }
            let keys = load_keys(&tx).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(keys)
        })
        .await
    }

    async fn add_signing_key(&self, key: SigningKeyRecord, if_newest: Option<&str>) -> Result<bool, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            tx.batch_execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
                .await
                .map_err(db_error)?;
            if let Some(expected) = if_newest {
                let newest: Option<String> = tx
                    .query_opt(
                        "SELECT kid FROM signing_keys WHERE revoked_at IS NULL
                         ORDER BY activates_at DESC, created_at DESC, seq DESC LIMIT 1",
                        &[],
                    )
                    .await
                    .map_err(db_error)?
                    .map(|r| r.get(0));
                if newest.as_deref() != Some(expected) {
                    return Ok(false);
                }
            }
            insert_key(&tx, &key).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn replace_signing_key_material(&self, changes: Vec<KeyMaterialChange>) -> Result<bool, StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            for change in &changes {
                let updated = tx
                    .execute(
                        "UPDATE signing_keys SET private_pkcs8 = $3 WHERE kid = $1 AND private_pkcs8 = $2",
                        &[&change.kid, &change.from.as_slice(), &change.to.as_slice()],
                    )
                    .await
                    .map_err(db_error)?;
                if updated != 1 {
                    return Ok(false);
                }
            }
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn snapshot(&self, now: UnixTime) -> Result<StoreSnapshot, StoreError> {
        // No call timeout: a large store takes as long as it takes to read.
        let mut conn = self.client_conn().await?;
        snapshot::read(&mut conn, now).await
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<(), StoreError> {
        let mut conn = self.client_conn().await?;
        snapshot::write(&mut conn, &snapshot).await
    }

    async fn revoke_signing_key(&self, kid: &str, at: UnixTime) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE signing_keys SET revoked_at = $2 WHERE kid = $1 AND revoked_at IS NULL",
                &[&kid, &at],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn revoke_token(&self, revoked: RevokedToken) -> Result<(), StoreError> {
        timed(async {
            let mut conn = self.client_conn().await?;
            let tx = conn.transaction().await.map_err(db_error)?;
            // Taking the position under the counter's row lock orders
            // revocations by commit: a reader that has seen position n will
            // never later find a newly committed one below n.
            let position: i64 = tx
                .query_one(
                    "UPDATE change_topics SET generation = generation + 1 WHERE topic = 'revocations'
                     RETURNING generation",
                    &[],
                )
                .await
                .map_err(db_error)?
                .get(0);
            tx.execute(
                "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, position)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING",
                &[
                    &revoked.jti,
                    &revoked.client_id,
                    &revoked.expires_at,
                    &revoked.revoked_at,
                    &position,
                ],
            )
            .await
            .map_err(db_error)?;
            tx.execute("SELECT pg_notify($1, 'revocations')", &[&CHANNEL])
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
        .await
    }

    async fn revoked_tokens_after(&self, now: UnixTime, after: u64) -> Result<(Vec<RevokedToken>, u64), StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            let after_position = i64::try_from(after).unwrap_or(i64::MAX);
            let rows = conn
                .query(
                    "SELECT jti, client_id, expires_at, revoked_at, position FROM revoked_tokens
                     WHERE position > $1 AND expires_at > $2 ORDER BY position",
                    &[&after_position, &now],
                )
                .await
                .map_err(db_error)?;
            let mut newest = after;
            let tokens = rows
                .iter()
                .map(|r| {
                    newest = newest.max(u64::try_from(r.get::<_, i64>(4)).unwrap_or(0));
                    RevokedToken {
                        jti: r.get(0),
                        client_id: r.get(1),
                        expires_at: r.get(2),
                        revoked_at: r.get(3),
                    }
                })
                .collect();
            Ok((tokens, newest))
        })
        .await
    }

    async fn prune_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            let tokens = conn
                .execute("DELETE FROM revoked_tokens WHERE expires_at <= $1", &[&now])
                .await
                .map_err(db_error)?;
            let assertions = conn
                .execute("DELETE FROM seen_assertions WHERE expires_at <= $1", &[&now])
                .await
                .map_err(db_error)?;
            Ok(tokens + assertions)
        })
        .await
    }

    async fn generations(&self) -> Result<Generations, StoreError> {
        timed(async {
            let conn = self.client_conn().await?;
            let statement = conn
                .prepare_cached("SELECT topic, generation FROM change_topics")
                .await
                .map_err(db_error)?;
            let mut generations = Generations::default();
            for row in conn.query(&statement, &[]).await.map_err(db_error)? {
                let generation = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                match row.get::<_, &str>(0) {
                    "clients" => generations.clients = generation,
                    "keys" => generations.keys = generation,
                    "revocations" => generations.revocations = generation,
                    "trust" => generations.trust = generation,
                    _ => {}
                }
            }
            Ok(generations)
        })
        .await
    }

    fn change_signal(&self) -> Option<Arc<Notify>> {
        let (signal, _task) = self.signal.get_or_init(|| {
            let signal = Arc::new(Notify::new());
            let task = tokio::spawn(listen(self.config.clone(), self.connector.clone(), signal.clone()));
            (signal, AbortOnDrop(task))
        });
        Some(signal.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;
    use tessera_testkit::pg_cluster::PgCluster;

    /// Every case of the store contract, each on a database of its own in
    /// one cluster (a cluster per case would cost seconds each). Every case
    /// runs, whatever fails before it, and every failure is named.
    macro_rules! postgres_contract_test {
        ($($case:ident),* $(,)?) => {
            #[tokio::test]
            async fn postgres_passes_the_store_contract() {
                let Some(cluster) = PgCluster::start_or_skip("postgres_passes_the_store_contract") else {
                    return;
                };
                let mut failed: Vec<&str> = Vec::new();
                $(
                    let store = PostgresStore::open(&cluster.create_database(stringify!($case))).await.unwrap();
                    let case = std::panic::AssertUnwindSafe(contract::$case(&store));
                    if futures_util::FutureExt::catch_unwind(case).await.is_err() {
                        failed.push(stringify!($case));
                    }
                )*
                assert!(failed.is_empty(), "store contract cases failed on PostgreSQL: {failed:?}");
                // Opening again (a second replica, a restart) migrates nothing and sees everything.
                let url = cluster.create_database("reopen");
                let first = PostgresStore::open(&url).await.unwrap();
                first.create_client(contract::sample_client("kept")).await.unwrap();
                let again = PostgresStore::open(&url).await.unwrap();
                assert!(again.client("kept").await.unwrap().is_some());
            }
        };
    }
    contract::with_contract_cases!(postgres_contract_test);

    #[tokio::test]
    async fn a_write_wakes_the_listener() {
        let Some(cluster) = PgCluster::start_or_skip("a_write_wakes_the_listener") else {
            return;
        };
        let url = cluster.create_database("listen");
        let listener = PostgresStore::open(&url).await.unwrap();
        let writer = PostgresStore::open(&url).await.unwrap();
        let signal = listener.change_signal().unwrap();
        // The first wake-up follows the LISTEN itself.
        tokio::time::timeout(Duration::from_secs(10), signal.notified())
            .await
            .expect("woken once listening");
        writer.create_client(contract::sample_client("wake")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), signal.notified())
            .await
            .expect("a committed write notifies other processes");
    }

    #[tokio::test]
    async fn concurrent_first_keys_leave_exactly_one() {
        let Some(cluster) = PgCluster::start_or_skip("concurrent_first_keys_leave_exactly_one") else {
            return;
        };
        let url = cluster.create_database("race");
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(Arc::new(PostgresStore::open(&url).await.unwrap()));
        }
        let mut tasks = Vec::new();
        for (i, store) in stores.iter().enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let key = SigningKeyRecord {
                    kid: format!("k{i}"),
                    alg: "ES256".into(),
                    private_pkcs8: vec![1].into(),
                    created_at: 1,
                    activates_at: 1,
                    revoked_at: None,
                };
                store.insert_first_signing_key(key).await.unwrap()
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.unwrap());
        }
        assert_eq!(seen[0].len(), 1, "{seen:?}");
        assert!(seen.iter().all(|keys| keys == &seen[0]), "{seen:?}");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable_not_absent() {
        let Some(cluster) = PgCluster::start_or_skip("an_unreachable_database_is_unavailable_not_absent") else {
            return;
        };
        let url = cluster.create_database("outage");
        let store = PostgresStore::open(&url).await.unwrap();
        store.create_client(contract::sample_client("there")).await.unwrap();
        cluster.stop();
        let answer = store.client("there").await;
        assert!(matches!(answer, Err(StoreError::Unavailable(_))), "{answer:?}");
        cluster.restart();
        let mut back = store.client("there").await;
        for _ in 0..50 {
            if back.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            back = store.client("there").await;
        }
        assert!(back.unwrap().is_some(), "recovers without reopening the store");
    }
}

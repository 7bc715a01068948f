//! The embedded default store: one SQLite file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a write is on disk when
//! its call returns and survives `kill -9` or power loss. The CLI and a running
//! server may open the same file at once; SQLite's locking serialises writers
//! and `busy_timeout` makes them wait their turn instead of failing.

use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    CertificateMatch, ClientCertificateRecord, ClientKeyRecord, ClientRecord, ClientUpdate, FederatedIdentityRecord,
    Generations, KeyMaterialChange, RevokedToken, SecretRecord, SigningKeyRecord, Store, StoreError, StoreSnapshot,
    TrustedIssuerRecord,
};

mod certificates;
mod federation;
mod rows;
mod schema;
mod snapshot;

use rows::*;

use schema::MIGRATIONS;

/// A [`Store`] in a SQLite file. Cloning is shallow: clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    /// One connection, used from the blocking pool. SQLite serialises writes
    /// anyway, and every read Tessera makes is a point lookup.
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema
    /// up to date.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or migrated,
    /// [`StoreError::Corrupt`] when it was written by a newer Tessera.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(unavailable)??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn open_blocking(path: &Path) -> Result<Connection, StoreError> {
        crate::private_files::prepare_store(path).map_err(StoreError::Insecure)?;
        let mut conn = Connection::open(path).map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(unavailable)?;
        // Deleted and overwritten rows (a key stored before it was encrypted,
        // a secret's hash) are zeroed, not left in free pages.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        )
            .map_err(unavailable)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(unavailable)?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "schema version {version} is newer than this Tessera knows ({}); upgrade Tessera",
                MIGRATIONS.len()
            )));
        }
        for migration in &MIGRATIONS[version..] {
            tx.execute_batch(migration).map_err(unavailable)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(conn)
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Unavailable("connection lock poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(unavailable)?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            insert_client(&tx, &client)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            load_client(&tx, &client_id)
        })
        .await
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            load_all_clients(&tx)
        })
        .await
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| {
            conn.execute(
                "UPDATE clients SET disabled = ?2 WHERE client_id = ?1",
                params![client_id, disabled],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| {
            conn.execute("DELETE FROM clients WHERE client_id = ?1", params![client_id])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.with(|conn| load_keys(conn)).await
    }

    async fn insert_first_signing_key(&self, key: SigningKeyRecord) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.with(move |conn| {
            // IMMEDIATE takes the write lock before the check, so two processes
            // cannot both see an empty table.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let count: i64 = tx
                .query_row("SELECT COUNT(*) FROM signing_keys", [], |r| r.get(0))
                .map_err(unavailable)?;
            if count == 0 {
                insert_key(&tx, &key)?;
            }
            let keys = load_keys(&tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(keys)
        })
        .await
    }

    async fn add_signing_key(&self, key: SigningKeyRecord, if_newest: Option<&str>) -> Result<bool, StoreError> {
        let if_newest = if_newest.map(str::to_owned);
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            if let Some(expected) = if_newest {
                let newest: Option<String> = tx
                    .query_row(
                        "SELECT kid FROM signing_keys WHERE revoked_at IS NULL
                         ORDER BY activates_at DESC, created_at DESC, rowid DESC LIMIT 1",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                if newest.as_deref() != Some(expected.as_str()) {
                    return Ok(false);
                }
            }
            insert_key(&tx, &key)?;
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn replace_signing_key_material(&self, changes: Vec<KeyMaterialChange>) -> Result<bool, StoreError> {
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for change in &changes {
                let updated = tx
                    .execute(
                        "UPDATE signing_keys SET private_pkcs8 = ?3 WHERE kid = ?1 AND private_pkcs8 = ?2",
                        params![change.kid, change.from.as_slice(), change.to.as_slice()],
                    )
                    .map_err(unavailable)?;
                if updated != 1 {
                    return Ok(false);
                }
            }
            tx.commit().map_err(unavailable)?;
            // The write-ahead log still holds the pages as they were before;
            // fold it into the file (secure_delete zeroes what is freed there)
            // and empty it, so the replaced material is on disk nowhere.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn snapshot(&self, now: i64) -> Result<StoreSnapshot, StoreError> {
        self.with(move |conn| snapshot::read(conn, now)).await
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<(), StoreError> {
        self.with(move |conn| snapshot::write(conn, &snapshot)).await
    }

    async fn revoke_signing_key(&self, kid: &str, at: i64) -> Result<bool, StoreError> {
        let kid = kid.to_owned();
        self.with(move |conn| {
            conn.execute(
                "UPDATE signing_keys SET revoked_at = ?2 WHERE kid = ?1 AND revoked_at IS NULL",
                params![kid, at],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    async fn revoke_token(&self, revoked: RevokedToken) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (jti) DO NOTHING",
                params![revoked.jti, revoked.client_id, revoked.expires_at, revoked.revoked_at],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }

    async fn revoked_tokens_after(&self, now: i64, after: u64) -> Result<(Vec<RevokedToken>, u64), StoreError> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT jti, client_id, expires_at, revoked_at, position FROM revoked_tokens
                     WHERE position > ?1 AND expires_at > ?2 ORDER BY position",
                )
                .map_err(unavailable)?;
            let mut newest = after;
            let tokens = stmt
                .query_map(params![after as i64, now], |r| {
                    Ok((
                        RevokedToken {
                            jti: r.get(0)?,
                            client_id: r.get(1)?,
                            expires_at: r.get(2)?,
                            revoked_at: r.get(3)?,
                        },
                        r.get::<_, i64>(4)? as u64,
                    ))
                })
                .map_err(unavailable)?
                .map(|row| {
                    row.map(|(token, position)| {
                        newest = newest.max(position);
                        token
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok((tokens, newest))
        })
        .await
    }

    async fn add_secret(
        &self,
        client_id: &str,
        secret: SecretRecord,
        others_expire_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            if !client_exists(&tx, &client_id)? {
                return Ok(false);
            }
            if let Some(at) = others_expire_at {
                tx.execute(
                    "UPDATE client_secrets SET expires_at = ?2
                     WHERE client_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                    params![client_id, at],
                )
                .map_err(unavailable)?;
            }
            insert_secret(&tx, &client_id, &secret)?;
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn set_secret_check(&self, client_id: &str, secret_id: &str, check: &str) -> Result<bool, StoreError> {
        let (client_id, secret_id, check) = (client_id.to_owned(), secret_id.to_owned(), check.to_owned());
        self.with(move |conn| {
            conn.execute(
                "UPDATE client_secrets SET check_value = ?3
                 WHERE client_id = ?1 AND secret_id = ?2 AND check_value IS NULL",
                params![client_id, secret_id, check],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    async fn add_client_key(&self, client_id: &str, key: ClientKeyRecord) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            if !client_exists(&tx, &client_id)? {
                return Ok(false);
            }
            let inserted = tx
                .execute(
                    "INSERT INTO client_keys (client_id, kid, alg, jwk, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (client_id, kid) DO NOTHING",
                    params![client_id, key.kid, key.alg, key.jwk, key.created_at],
                )
                .map_err(unavailable)?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "key {:?} of client {client_id:?}",
                    key.kid
                )));
            }
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn remove_client_key(&self, client_id: &str, kid: &str) -> Result<bool, StoreError> {
        let (client_id, kid) = (client_id.to_owned(), kid.to_owned());
        self.with(move |conn| {
            let removed = conn
                .execute(
                    "DELETE FROM client_keys WHERE client_id = ?1 AND kid = ?2",
                    params![client_id, kid],
                )
                .map_err(unavailable)?;
            Ok(removed > 0)
        })
        .await
    }

    async fn add_federated_identity(
        &self,
        client_id: &str,
        identity: FederatedIdentityRecord,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| federation::add_identity(conn, &client_id, &identity))
            .await
    }

    async fn remove_federated_identity(
        &self,
        client_id: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<bool, StoreError> {
        let (client_id, issuer, subject) = (client_id.to_owned(), issuer.to_owned(), subject.to_owned());
        self.with(move |conn| federation::remove_identity(conn, &client_id, &issuer, &subject))
            .await
    }

    async fn client_for_federated_identity(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
        let (issuer, subject) = (issuer.to_owned(), subject.to_owned());
        self.with(move |conn| federation::client_for_identity(conn, &issuer, &subject))
            .await
    }

    async fn update_client(&self, client_id: &str, update: ClientUpdate) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| certificates::update_client(conn, &client_id, &update))
            .await
    }

    async fn add_client_certificate(
        &self,
        client_id: &str,
        certificate: ClientCertificateRecord,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.with(move |conn| certificates::add_certificate(conn, &client_id, &certificate))
            .await
    }

    async fn remove_client_certificate(&self, client_id: &str, matcher: &CertificateMatch) -> Result<bool, StoreError> {
        let (client_id, matcher) = (client_id.to_owned(), matcher.clone());
        self.with(move |conn| certificates::remove_certificate(conn, &client_id, &matcher))
            .await
    }

    async fn add_trusted_issuer(&self, issuer: TrustedIssuerRecord) -> Result<(), StoreError> {
        self.with(move |conn| federation::add_issuer(conn, &issuer)).await
    }

    async fn trusted_issuers(&self) -> Result<Vec<TrustedIssuerRecord>, StoreError> {
        self.with(|conn| federation::issuers(conn)).await
    }

    async fn remove_trusted_issuer(&self, issuer: &str) -> Result<bool, StoreError> {
        let issuer = issuer.to_owned();
        self.with(move |conn| federation::remove_issuer(conn, &issuer)).await
    }

    async fn remember_assertion(&self, client_id: &str, jti: &str, expires_at: i64) -> Result<bool, StoreError> {
        let (client_id, jti) = (client_id.to_owned(), jti.to_owned());
        self.with(move |conn| {
            // The primary key makes this atomic across connections and processes.
            conn.execute(
                "INSERT INTO seen_assertions (client_id, jti, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client_id, jti) DO NOTHING",
                params![client_id, jti, expires_at],
            )
            .map(|n| n == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn prune_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.with(move |conn| {
            let tokens = conn
                .execute("DELETE FROM revoked_tokens WHERE expires_at <= ?1", params![now])
                .map_err(unavailable)?;
            let assertions = conn
                .execute("DELETE FROM seen_assertions WHERE expires_at <= ?1", params![now])
                .map_err(unavailable)?;
            Ok((tokens + assertions) as u64)
        })
        .await
    }

    async fn generations(&self) -> Result<Generations, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT topic, generation FROM change_topics")
                .map_err(unavailable)?;
            let mut generations = Generations::default();
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
                .map_err(unavailable)?;
            for row in rows {
                let (topic, generation) = row.map_err(unavailable)?;
                match topic.as_str() {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    async fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("tessera.db")).await.unwrap();
        (dir, store)
    }

    /// One test per case of the store contract, each on a fresh file.
    macro_rules! sqlite_contract_tests {
        ($($case:ident),* $(,)?) => {
            mod passes_the_store_contract {
                $(
                    #[tokio::test]
                    async fn $case() {
                        let (_dir, store) = super::fresh().await;
                        crate::store::contract::$case(&store).await;
                    }
                )*
            }
        };
    }
    contract::with_contract_cases!(sqlite_contract_tests);

    #[tokio::test]
    async fn a_reopened_file_keeps_what_was_written() {
        let (dir, store) = fresh().await;
        store.create_client(contract::sample_client("kept")).await.unwrap();
        drop(store);
        let again = SqliteStore::open(dir.path().join("tessera.db")).await.unwrap();
        assert!(again.client("kept").await.unwrap().is_some());
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// THREATS: the store holds the private signing keys, so another local
    /// user must not read it, nor its WAL, whatever the umask says.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_fresh_store_its_wal_and_its_directory_are_private_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new-dir").join("tessera.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store.create_client(contract::sample_client("svc")).await.unwrap();
        assert_eq!(mode(&path), 0o600, "the store file");
        for suffix in ["-wal", "-shm"] {
            let companion = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&companion), 0o600, "{}", companion.display());
        }
        assert_eq!(mode(path.parent().unwrap()), 0o700, "the directory Tessera created");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_store_others_can_read_is_refused_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.db");
        drop(SqliteStore::open(&path).await.unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let Err(e) = SqliteStore::open(&path).await else {
            panic!("a 0644 store was opened");
        };
        let message = e.to_string();
        assert!(matches!(e, StoreError::Insecure(_)), "{e:?}");
        assert!(message.contains(&format!("chmod 600 {}", path.display())), "{message}");
        assert!(message.contains("0644"), "{message}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(SqliteStore::open(&path).await.is_ok(), "fixed as told, it opens");
    }

    #[tokio::test]
    async fn reopening_keeps_everything_and_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.db");
        let first = SqliteStore::open(&path).await.unwrap();
        first.create_client(contract::sample_client("svc")).await.unwrap();
        drop(first);
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(again.client("svc").await.unwrap().unwrap().client_id, "svc");
    }

    #[tokio::test]
    async fn durability_settings_are_wal_and_synchronous_full() {
        let (_dir, store) = fresh().await;
        let (mode, sync) = store
            .with(|c| {
                let mode: String = c
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(unavailable)?;
                let sync: i64 = c
                    .query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(unavailable)?;
                Ok((mode, sync))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous must be FULL (2)");
    }
}

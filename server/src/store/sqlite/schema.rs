//! The SQLite schema, as migrations.

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many
/// ran. Append only: never edit a migration that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE clients (
    client_id  TEXT PRIMARY KEY,
    scopes     TEXT NOT NULL,            -- JSON array of scope tokens
    audiences  TEXT NOT NULL,            -- JSON array of audience strings
    token_ttl  INTEGER,                  -- seconds; NULL = server default
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE client_secrets (
    secret_id  TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    phc        TEXT NOT NULL,            -- argon2id PHC string, never the secret
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX client_secrets_by_client ON client_secrets(client_id);
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL,
    private_pkcs8 BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);
-- One row: a counter every write bumps, so that other processes notice changes.
CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
INSERT INTO change_counter VALUES (1, 0);
CREATE TRIGGER clients_ins AFTER INSERT ON clients BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER clients_upd AFTER UPDATE ON clients BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER clients_del AFTER DELETE ON clients BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER secrets_ins AFTER INSERT ON client_secrets BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER secrets_upd AFTER UPDATE ON client_secrets BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER secrets_del AFTER DELETE ON client_secrets BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER keys_ins AFTER INSERT ON signing_keys BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER keys_upd AFTER UPDATE ON signing_keys BEGIN UPDATE change_counter SET generation = generation + 1; END;
CREATE TRIGGER keys_del AFTER DELETE ON signing_keys BEGIN UPDATE change_counter SET generation = generation + 1; END;
"#,
    r#"
-- Key rotation: a key is published at creation and signs from activates_at.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER;
ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER;
UPDATE signing_keys SET activates_at = created_at;
-- Revoked tokens, kept until their own expiry.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens(expires_at);
CREATE TRIGGER revoked_ins AFTER INSERT ON revoked_tokens BEGIN UPDATE change_counter SET generation = generation + 1; END;
"#,
    r#"
-- One change counter per kind of state, so a revocation does not flush cached clients.
CREATE TABLE change_topics (topic TEXT PRIMARY KEY, generation INTEGER NOT NULL);
INSERT INTO change_topics VALUES ('clients', 0), ('keys', 0), ('revocations', 0);
DROP TRIGGER clients_ins; DROP TRIGGER clients_upd; DROP TRIGGER clients_del;
DROP TRIGGER secrets_ins; DROP TRIGGER secrets_upd; DROP TRIGGER secrets_del;
DROP TRIGGER keys_ins; DROP TRIGGER keys_upd; DROP TRIGGER keys_del;
DROP TRIGGER revoked_ins;
DROP TABLE change_counter;
-- Public keys for private_key_jwt (RFC 7523), one row per client and kid.
CREATE TABLE client_keys (
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    kid        TEXT NOT NULL,
    alg        TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, kid)
);
-- Assertion ids already used: each assertion authenticates once (RFC 7523 §3 item 7).
CREATE TABLE seen_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX seen_assertions_by_expiry ON seen_assertions(expires_at);
CREATE TRIGGER clients_ins AFTER INSERT ON clients BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER clients_upd AFTER UPDATE ON clients BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER clients_del AFTER DELETE ON clients BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER secrets_ins AFTER INSERT ON client_secrets BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER secrets_upd AFTER UPDATE ON client_secrets BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER secrets_del AFTER DELETE ON client_secrets BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER ckeys_ins AFTER INSERT ON client_keys BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER ckeys_upd AFTER UPDATE ON client_keys BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER ckeys_del AFTER DELETE ON client_keys BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER keys_ins AFTER INSERT ON signing_keys BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'keys'; END;
CREATE TRIGGER keys_upd AFTER UPDATE ON signing_keys BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'keys'; END;
CREATE TRIGGER keys_del AFTER DELETE ON signing_keys BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'keys'; END;
CREATE TRIGGER revoked_ins AFTER INSERT ON revoked_tokens BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'revocations'; END;
"#,
    r#"
-- A short salted check value beside each argon2 hash: a wrong secret is
-- refused before argon2 runs. NULL for secrets stored before it existed.
ALTER TABLE client_secrets ADD COLUMN check_value TEXT;
"#,
    r#"
-- Revocations get a position that is never reused. The cursor other
-- processes read them by was the rowid, which SQLite hands out again once the
-- highest row is deleted (pruning does that), so a replica could skip a
-- revocation. AUTOINCREMENT never reuses a value.
CREATE TABLE revoked_tokens_positioned (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    jti        TEXT NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
INSERT INTO revoked_tokens_positioned (position, jti, client_id, expires_at, revoked_at)
    SELECT rowid, jti, client_id, expires_at, revoked_at FROM revoked_tokens ORDER BY rowid;
-- Positions continue above any rowid handed out so far, pruned ones
-- included: every insert bumped the revocations counter, so it is at least
-- the highest rowid ever used.
DELETE FROM sqlite_sequence WHERE name = 'revoked_tokens_positioned';
INSERT INTO sqlite_sequence (name, seq) VALUES ('revoked_tokens_positioned', MAX(
    (SELECT generation FROM change_topics WHERE topic = 'revocations'),
    (SELECT COALESCE(MAX(position), 0) FROM revoked_tokens_positioned)));
DROP TABLE revoked_tokens;
ALTER TABLE revoked_tokens_positioned RENAME TO revoked_tokens;
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens(expires_at);
CREATE TRIGGER revoked_ins AFTER INSERT ON revoked_tokens BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'revocations'; END;
"#,
    r#"
-- Issuers whose tokens clients may authenticate with (a platform's identity
-- tokens as RFC 7523 client assertions), and the identities bound to clients.
CREATE TABLE trusted_issuers (
    issuer            TEXT PRIMARY KEY,
    jwks_source       TEXT NOT NULL,     -- 'inline', 'url' or 'discovery'
    jwks              TEXT,              -- the JWKS (inline) or its URL (url)
    audiences         TEXT NOT NULL,     -- JSON array of extra accepted audiences
    max_lifetime      INTEGER NOT NULL,  -- seconds
    ca_pem            TEXT,
    bearer_token_file TEXT,              -- a path the server reads; never the token
    created_at        INTEGER NOT NULL
);
CREATE TABLE federated_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX federated_identities_by_client ON federated_identities(client_id);
INSERT INTO change_topics VALUES ('trust', 0);
CREATE TRIGGER trust_ins AFTER INSERT ON trusted_issuers BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'trust'; END;
CREATE TRIGGER trust_upd AFTER UPDATE ON trusted_issuers BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'trust'; END;
CREATE TRIGGER trust_del AFTER DELETE ON trusted_issuers BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'trust'; END;
CREATE TRIGGER federated_ins AFTER INSERT ON federated_identities BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER federated_del AFTER DELETE ON federated_identities BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
"#,
    r#"
-- TLS client certificates that authenticate as a client (RFC 8705 section 2),
-- and whether a client's tokens are bound to its connection's certificate.
CREATE TABLE client_certificates (
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,            -- 'san_uri', 'san_dns', 'subject_dn' or 'self_signed'
    value      TEXT NOT NULL,            -- the name, or the base64url SHA-256 of the DER
    created_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, kind, value)
);
ALTER TABLE clients ADD COLUMN bind_to_certificate INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER certificates_ins AFTER INSERT ON client_certificates BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
CREATE TRIGGER certificates_del AFTER DELETE ON client_certificates BEGIN UPDATE change_topics SET generation = generation + 1 WHERE topic = 'clients'; END;
"#,
];

//! The PostgreSQL schema, as migrations.

/// Schema migrations, applied in order inside one transaction; the
/// `tessera_schema` table records which ran. Append only.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE clients (
    client_id  TEXT PRIMARY KEY,
    scopes     TEXT[] NOT NULL,
    audiences  TEXT[] NOT NULL,
    token_ttl  BIGINT,                   -- seconds; NULL = server default
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE TABLE client_secrets (
    secret_id  TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    phc        TEXT NOT NULL,            -- argon2id PHC string, never the secret
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX client_secrets_by_client ON client_secrets(client_id);
CREATE TABLE client_keys (
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    kid        TEXT NOT NULL,
    alg        TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, kid)
);
CREATE TABLE signing_keys (
    seq           BIGSERIAL UNIQUE,      -- insertion order breaks ties
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL,
    private_pkcs8 BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    activates_at  BIGINT NOT NULL,
    revoked_at    BIGINT
);
-- position: the revocations generation the insert took, under the row lock
-- of change_topics, so positions become visible in increasing order.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    position   BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_by_position ON revoked_tokens(position);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens(expires_at);
CREATE TABLE seen_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX seen_assertions_by_expiry ON seen_assertions(expires_at);
CREATE TABLE change_topics (topic TEXT PRIMARY KEY, generation BIGINT NOT NULL);
INSERT INTO change_topics VALUES ('clients', 0), ('keys', 0), ('revocations', 0);
CREATE FUNCTION tessera_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_topics SET generation = generation + 1 WHERE topic = TG_ARGV[0];
    PERFORM pg_notify('tessera_changes', TG_ARGV[0]);
    RETURN NULL;
END $$;
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changed('clients');
CREATE TRIGGER secrets_changed AFTER INSERT OR UPDATE OR DELETE ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changed('clients');
CREATE TRIGGER client_keys_changed AFTER INSERT OR UPDATE OR DELETE ON client_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changed('clients');
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changed('keys');
"#,
    r#"
-- A short salted check value beside each argon2 hash: a wrong secret is
-- refused before argon2 runs. NULL for secrets stored before it existed.
ALTER TABLE client_secrets ADD COLUMN check_value TEXT;
"#,
    r#"
-- Issuers whose tokens clients may authenticate with (a platform's identity
-- tokens as RFC 7523 client assertions), and the identities bound to clients.
CREATE TABLE trusted_issuers (
    issuer            TEXT PRIMARY KEY,
    jwks_source       TEXT NOT NULL,     -- 'inline', 'url' or 'discovery'
    jwks              TEXT,              -- the JWKS (inline) or its URL (url)
    audiences         TEXT[] NOT NULL,   -- extra accepted audiences
    max_lifetime      BIGINT NOT NULL,   -- seconds
    ca_pem            TEXT,
    bearer_token_file TEXT,              -- a path the server reads; never the token
    created_at        BIGINT NOT NULL
);
CREATE TABLE federated_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX federated_identities_by_client ON federated_identities(client_id);
INSERT INTO change_topics VALUES ('trust', 0);
CREATE TRIGGER trusted_issuers_changed AFTER INSERT OR UPDATE OR DELETE ON trusted_issuers
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changed('trust');
CREATE TRIGGER federated_identities_changed AFTER INSERT OR UPDATE OR DELETE ON federated_identities
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changed('clients');
"#,
    r#"
-- TLS client certificates that authenticate as a client (RFC 8705 section 2),
-- and whether a client's tokens are bound to its connection's certificate.
CREATE TABLE client_certificates (
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,            -- 'san_uri', 'san_dns', 'subject_dn' or 'self_signed'
    value      TEXT NOT NULL,            -- the name, or the base64url SHA-256 of the DER
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, kind, value)
);
ALTER TABLE clients ADD COLUMN bind_to_certificate BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TRIGGER client_certificates_changed AFTER INSERT OR UPDATE OR DELETE ON client_certificates
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_changed('clients');
"#,
];

//! Every audit event, defined once. Audit lines go to the `tessera::audit`
//! log target with `event = <one of these>`; operators alert and search on
//! the names, so they are part of the contract (README, "Audit log").

/// A token was issued (`client_id`, `jti`, `scope`, `aud`, `expires_in`).
pub const TOKEN_ISSUED: &str = "token_issued";
/// A token request was refused (`reason`: the OAuth error code).
pub const TOKEN_REFUSED: &str = "token_refused";
/// A client secret did not authenticate (`client_id`, cut short).
pub const CLIENT_AUTHENTICATION_FAILED: &str = "client_authentication_failed";
/// A client assertion was refused (`reason`, for the operator only).
pub const CLIENT_ASSERTION_REFUSED: &str = "client_assertion_refused";
/// A legacy secret gained its check value at its first success.
pub const SECRET_CHECK_RECORDED: &str = "secret_check_recorded";
/// A caller without `tessera:introspect` asked to introspect.
pub const INTROSPECTION_REFUSED: &str = "introspection_refused";
/// A client asked to revoke another client's token without `tessera:revoke`.
pub const REVOCATION_REFUSED: &str = "revocation_refused";
/// A token was revoked (`client_id` of the caller, `jti`, `owner`).
pub const TOKEN_REVOKED: &str = "token_revoked";
/// A bearer token was refused as the caller of introspection or revocation.
pub const BEARER_CALLER_REFUSED: &str = "bearer_caller_refused";
/// A client was registered.
pub const CLIENT_CREATED: &str = "client_created";
/// A client was deleted.
pub const CLIENT_DELETED: &str = "client_deleted";
/// A client was disabled.
pub const CLIENT_DISABLED: &str = "client_disabled";
/// A client was enabled again.
pub const CLIENT_ENABLED: &str = "client_enabled";
/// A client's secret was rotated (`others_expire_at`: when its older secrets stop).
pub const CLIENT_SECRET_ROTATED: &str = "client_secret_rotated";
/// A public key was registered for `private_key_jwt`.
pub const CLIENT_KEY_ADDED: &str = "client_key_added";
/// A signing key was added, by hand or on schedule (`kid`, `activates_at`).
pub const SIGNING_KEY_ROTATED: &str = "signing_key_rotated";
/// A signing key was revoked (`kid`, `replacement`).
pub const SIGNING_KEY_REVOKED: &str = "signing_key_revoked";
/// Signing keys stored in the clear were encrypted under the KEK (`keys`, `kek`: its id).
pub const SIGNING_KEYS_ENCRYPTED: &str = "signing_keys_encrypted";
/// Every signing key was moved to a new KEK (`keys`, `from`, `to`: KEK ids).
pub const SIGNING_KEYS_REWRAPPED: &str = "signing_keys_rewrapped";
/// A store export was loaded into an empty store (counts, `exported_at`).
pub const STORE_IMPORTED: &str = "store_imported";
/// A replica saw a signing key appear in the store.
pub const SIGNING_KEY_ADDED: &str = "signing_key_added";
/// A replica saw a signing key leave the store.
pub const SIGNING_KEY_REMOVED: &str = "signing_key_removed";
/// A platform token was refused as a client credential (`reason`, `issuer`, for the operator only).
pub const FEDERATED_CREDENTIAL_REFUSED: &str = "federated_credential_refused";
/// A replica began trusting an issuer (`issuer`, `jwks`: inline, url or discovery).
pub const ISSUER_TRUSTED: &str = "issuer_trusted";
/// A replica stopped trusting an issuer.
pub const ISSUER_UNTRUSTED: &str = "issuer_untrusted";
/// Fetching a trusted issuer's keys failed (`issuer`, `error`, `kept`: the keys still used).
pub const ISSUER_KEYS_FETCH_FAILED: &str = "issuer_keys_fetch_failed";
/// A platform identity was bound to a client (`client_id`, `issuer`, `subject`).
pub const FEDERATED_IDENTITY_ADDED: &str = "federated_identity_added";
/// A platform identity was unbound from a client.
pub const FEDERATED_IDENTITY_REMOVED: &str = "federated_identity_removed";
/// A TLS client certificate was refused as a client credential (`client_id`, `reason`, `x5t`).
pub const CLIENT_CERTIFICATE_REFUSED: &str = "client_certificate_refused";
/// A certificate was registered for a client (`client_id`, `kind`, `value`).
pub const CLIENT_CERTIFICATE_ADDED: &str = "client_certificate_added";
/// A client's certificate registration was removed (`client_id`, `kind`, `value`).
pub const CLIENT_CERTIFICATE_REMOVED: &str = "client_certificate_removed";
/// A client's settings changed (`client_id`, and each changed setting).
pub const CLIENT_UPDATED: &str = "client_updated";
/// A client's public key was removed (`client_id`, `kid`).
pub const CLIENT_KEY_REMOVED: &str = "client_key_removed";
/// A call of the admin API was refused (`reason`, `client_id` of the caller if known, `operation`).
pub const ADMIN_CALL_REFUSED: &str = "admin_call_refused";

tokio::task_local! {
    static ACTOR: std::sync::Arc<str>;
}

/// Who makes an administrative change, for its audit line (`actor=`): the
/// admin API's caller (`client:<id>`), or `local` for the command line
/// working on the store itself (`--store`).
pub fn actor() -> Actor {
    Actor
}

/// Runs `future` with `client_id` as the [`actor`] of its audit lines.
pub async fn as_actor<F: std::future::Future>(client_id: &str, future: F) -> F::Output {
    ACTOR
        .scope(std::sync::Arc::from(format!("client:{client_id}")), future)
        .await
}

/// The current [`actor`], displayed.
#[derive(Debug, Clone, Copy)]
pub struct Actor;

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        ACTOR
            .try_with(|actor| f.write_str(actor))
            .unwrap_or_else(|_| f.write_str("local"))
    }
}

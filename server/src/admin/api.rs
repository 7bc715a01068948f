//! The admin API's operations, in the messages of `tessera.admin.v1`: what
//! the gRPC service, the JSON routes under `/admin/v1/` and the command line
//! (with `--store`) all call. Who may call is decided before, by
//! [`super::gate`]; this module checks what is asked and makes the change,
//! through the same functions the command line always used.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_proto::admin::v1 as pb;

use super::{AdminError, CertificateSpec, KeyMaterial, NewClient, NewTrust};
use crate::clock::{Clock, UnixTime};
use crate::keys::KeyCustody;
use crate::keys::custody::sealed_under;
use crate::store::{
    ClientKeyRecord, ClientRecord, ClientUpdate, JwksSource, SigningKeyRecord, Store, TrustedIssuerRecord,
};

/// Clients in a page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most clients in a page; a larger `page_size` is served as this.
pub const MAX_PAGE_SIZE: usize = 1000;
/// How long a client's other secrets stay valid after a rotation, unless the caller says.
pub const DEFAULT_KEEP_OLD_SECRETS_SECS: i64 = 3600;
/// Longest time a rotated-out secret may stay valid.
pub const MAX_KEEP_OLD_SECRETS_SECS: i64 = 365 * 86_400;
/// A trusted issuer's longest token lifetime, unless the caller says: a day.
pub const DEFAULT_TRUST_MAX_LIFETIME_SECS: u32 = 86_400;

/// The admin operations over one store.
#[derive(Clone)]
pub struct AdminOps {
    store: Arc<dyn Store>,
    custody: Arc<KeyCustody>,
    clock: Arc<dyn Clock>,
    /// This server's issuer, which can never be trusted; `None` on the
    /// command line when it is not given.
    own_issuer: Option<String>,
    /// Seconds a rotated key is published before it signs, by default.
    publish_ahead: u32,
}

impl std::fmt::Debug for AdminOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOps")
            .field("own_issuer", &self.own_issuer)
            .finish_non_exhaustive()
    }
}

impl AdminOps {
    /// The operations over `store`, generating signing keys under `custody`.
    pub fn new(
        store: Arc<dyn Store>,
        custody: Arc<KeyCustody>,
        clock: Arc<dyn Clock>,
        own_issuer: Option<String>,
        publish_ahead: u32,
    ) -> Self {
        Self {
            store,
            custody,
            clock,
            own_issuer,
            publish_ahead,
        }
    }

    fn now(&self) -> UnixTime {
        self.clock.now()
    }

    async fn client_view(&self, client_id: &str) -> Result<pb::Client, AdminError> {
        let record = self
            .store
            .client(client_id)
            .await?
            .ok_or_else(|| AdminError::UnknownClient(client_id.to_owned()))?;
        Ok(client_view(&record, self.now()))
    }

    /// Registers a client; the answer holds its secret, the only time it is seen.
    ///
    /// # Errors
    /// As [`super::create_client_with`].
    pub async fn create_client(
        &self,
        request: pb::CreateClientRequest,
    ) -> Result<pb::CreateClientResponse, AdminError> {
        let new = NewClient {
            client_id: request.client_id,
            scopes: request.scopes,
            audiences: request.audiences,
            token_ttl: request.token_ttl,
            bind_to_certificate: request.bind_to_certificate,
        };
        let client_id = new.client_id.clone();
        let secret = super::create_client_with(self.store.as_ref(), new, !request.no_secret, self.now()).await?;
        Ok(pb::CreateClientResponse {
            client: Some(self.client_view(&client_id).await?),
            client_secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
        })
    }

    /// One client.
    ///
    /// # Errors
    /// [`AdminError::UnknownClient`].
    pub async fn get_client(&self, request: pb::GetClientRequest) -> Result<pb::Client, AdminError> {
        self.client_view(&request.client_id).await
    }

    /// A page of clients in `client_id` order. The page token is the last
    /// id of the page before, encoded: opaque to callers, and stable while
    /// clients come and go (a new client appears in its place, a deleted
    /// one is skipped, none is listed twice).
    ///
    /// # Errors
    /// [`AdminError::InvalidRequest`] for a page token this server did not give.
    pub async fn list_clients(&self, request: pb::ListClientsRequest) -> Result<pb::ListClientsResponse, AdminError> {
        let after = decode_page_token(&request.page_token)?;
        let size = match request.page_size as usize {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let mut clients = self.store.list_clients().await?;
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        let now = self.now();
        let mut page: Vec<pb::Client> = clients
            .iter()
            .filter(|c| after.as_deref().is_none_or(|after| c.client_id.as_str() > after))
            .take(size + 1)
            .map(|c| client_view(c, now))
            .collect();
        let next_page_token = if page.len() > size {
            page.truncate(size);
            page.last()
                .map(|c| URL_SAFE_NO_PAD.encode(&c.client_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListClientsResponse {
            clients: page,
            next_page_token,
        })
    }

    /// Changes the settings named.
    ///
    /// # Errors
    /// As [`super::update_client`]; [`AdminError::InvalidRequest`] for both
    /// a lifetime and the default lifetime.
    pub async fn update_client(&self, request: pb::UpdateClientRequest) -> Result<pb::Client, AdminError> {
        let token_ttl = match (request.token_ttl, request.default_token_ttl) {
            (Some(_), true) => {
                return Err(AdminError::InvalidRequest(
                    "give token_ttl or default_token_ttl, not both".into(),
                ));
            }
            (Some(ttl), false) => Some(Some(ttl)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let update = ClientUpdate {
            scopes: request.scopes.map(|l| l.values),
            audiences: request.audiences.map(|l| l.values),
            token_ttl,
            bind_to_certificate: request.bind_to_certificate,
        };
        super::update_client(self.store.as_ref(), &request.client_id, update).await?;
        self.client_view(&request.client_id).await
    }

    /// Stops issuing tokens to a client; its tokens stop being active.
    ///
    /// # Errors
    /// [`AdminError::UnknownClient`].
    pub async fn disable_client(&self, request: pb::ClientRequest) -> Result<pb::Client, AdminError> {
        super::set_client_disabled(self.store.as_ref(), &request.client_id, true).await?;
        self.client_view(&request.client_id).await
    }

    /// Issues tokens to a disabled client again.
    ///
    /// # Errors
    /// [`AdminError::UnknownClient`].
    pub async fn enable_client(&self, request: pb::ClientRequest) -> Result<pb::Client, AdminError> {
        super::set_client_disabled(self.store.as_ref(), &request.client_id, false).await?;
        self.client_view(&request.client_id).await
    }

    /// Deletes a client.
    ///
    /// # Errors
    /// [`AdminError::UnknownClient`].
    pub async fn delete_client(&self, request: pb::ClientRequest) -> Result<pb::DeleteClientResponse, AdminError> {
        super::delete_client(self.store.as_ref(), &request.client_id).await?;
        Ok(pb::DeleteClientResponse {})
    }

    /// A new secret for a client, shown once.
    ///
    /// # Errors
    /// As [`super::rotate_secret`]; [`AdminError::InvalidRequest`] for a
    /// negative or over-long keep time.
    pub async fn rotate_client_secret(
        &self,
        request: pb::RotateClientSecretRequest,
    ) -> Result<pb::RotateClientSecretResponse, AdminError> {
        let keep = request.keep_old_for_secs.unwrap_or(DEFAULT_KEEP_OLD_SECRETS_SECS);
        if !(0..=MAX_KEEP_OLD_SECRETS_SECS).contains(&keep) {
            return Err(AdminError::InvalidRequest(format!(
                "keep_old_for_secs must be 0 to {MAX_KEEP_OLD_SECRETS_SECS} (a year)"
            )));
        }
        let now = self.now();
        let secret = super::rotate_secret(self.store.as_ref(), &request.client_id, keep, now).await?;
        Ok(pb::RotateClientSecretResponse {
            client_id: request.client_id,
            client_secret: secret.expose().to_owned(),
            others_expire_at: now + keep,
        })
    }

    /// Registers a public key for `private_key_jwt`.
    ///
    /// # Errors
    /// As [`super::add_client_key`]; [`AdminError::InvalidRequest`] unless
    /// exactly one of `jwk` and `pem` is given.
    pub async fn add_client_key(
        &self,
        request: pb::AddClientKeyRequest,
    ) -> Result<pb::AddClientKeyResponse, AdminError> {
        let material = match (request.jwk.is_empty(), request.pem.is_empty()) {
            (false, true) => KeyMaterial::Jwk(request.jwk),
            (true, false) => KeyMaterial::Pem(request.pem),
            _ => return Err(AdminError::InvalidRequest("give exactly one of jwk and pem".into())),
        };
        let alg = non_empty(request.alg)
            .map(|alg| crate::keys::KeyAlgorithm::parse(&alg))
            .transpose()
            .map_err(AdminError::InvalidKey)?;
        let now = self.now();
        let added = super::add_client_key(
            self.store.as_ref(),
            &request.client_id,
            material,
            non_empty(request.kid),
            alg,
            now,
        )
        .await?;
        Ok(pb::AddClientKeyResponse {
            key: Some(client_key_view(&added)),
            client: Some(self.client_view(&request.client_id).await?),
        })
    }

    /// Removes a client's public key.
    ///
    /// # Errors
    /// As [`super::remove_client_key`].
    pub async fn remove_client_key(&self, request: pb::RemoveClientKeyRequest) -> Result<pb::Client, AdminError> {
        super::remove_client_key(self.store.as_ref(), &request.client_id, &request.kid).await?;
        self.client_view(&request.client_id).await
    }

    /// Binds a platform identity to a client.
    ///
    /// # Errors
    /// As [`super::add_federated_identity`].
    pub async fn add_federated_identity(
        &self,
        request: pb::FederatedIdentityRequest,
    ) -> Result<pb::Client, AdminError> {
        let now = self.now();
        super::add_federated_identity(
            self.store.as_ref(),
            &request.client_id,
            &request.issuer,
            &request.subject,
            now,
        )
        .await?;
        self.client_view(&request.client_id).await
    }

    /// Unbinds a platform identity from a client.
    ///
    /// # Errors
    /// As [`super::remove_federated_identity`].
    pub async fn remove_federated_identity(
        &self,
        request: pb::FederatedIdentityRequest,
    ) -> Result<pb::Client, AdminError> {
        super::remove_federated_identity(
            self.store.as_ref(),
            &request.client_id,
            &request.issuer,
            &request.subject,
        )
        .await?;
        self.client_view(&request.client_id).await
    }

    /// Registers a certificate for a client.
    ///
    /// # Errors
    /// As [`super::add_client_certificate`].
    pub async fn add_client_certificate(
        &self,
        request: pb::ClientCertificateRequest,
    ) -> Result<pb::Client, AdminError> {
        let (client_id, spec) = certificate_spec(request)?;
        super::add_client_certificate(self.store.as_ref(), &client_id, &spec, self.now()).await?;
        self.client_view(&client_id).await
    }

    /// Removes a certificate registration from a client.
    ///
    /// # Errors
    /// As [`super::remove_client_certificate`].
    pub async fn remove_client_certificate(
        &self,
        request: pb::ClientCertificateRequest,
    ) -> Result<pb::Client, AdminError> {
        let (client_id, spec) = certificate_spec(request)?;
        super::remove_client_certificate(self.store.as_ref(), &client_id, &spec).await?;
        self.client_view(&client_id).await
    }

    /// Every signing key with its state now.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list_signing_keys(
        &self,
        _request: pb::ListSigningKeysRequest,
    ) -> Result<pb::ListSigningKeysResponse, AdminError> {
        let records = self.store.signing_keys().await?;
        let keys = super::key_states(&records, self.now())
            .iter()
            .map(|(k, state)| signing_key_view(k, *state))
            .collect();
        Ok(pb::ListSigningKeysResponse { keys })
    }

    /// Adds a signing key, published now and signing after `publish_ahead_secs`.
    ///
    /// # Errors
    /// As [`super::rotate_key`]; [`AdminError::InvalidRequest`] for an unknown algorithm.
    pub async fn rotate_signing_key(
        &self,
        request: pb::RotateSigningKeyRequest,
    ) -> Result<pb::RotateSigningKeyResponse, AdminError> {
        let alg = non_empty(request.alg)
            .map(|alg| crate::keys::KeyAlgorithm::parse(&alg))
            .transpose()
            .map_err(AdminError::InvalidRequest)?;
        let publish_ahead = request.publish_ahead_secs.unwrap_or(self.publish_ahead);
        let now = self.now();
        let record = super::rotate_key(self.store.as_ref(), &self.custody, alg, now, publish_ahead).await?;
        // The newest key: it signs once it activates (at once with no publish-ahead).
        let state = if record.activates_at > now {
            super::KeyState::Pending
        } else {
            super::KeyState::Active
        };
        Ok(pb::RotateSigningKeyResponse {
            key: Some(signing_key_view(&record, state)),
        })
    }

    /// Revokes a signing key.
    ///
    /// # Errors
    /// As [`super::revoke_key`].
    pub async fn revoke_signing_key(
        &self,
        request: pb::RevokeSigningKeyRequest,
    ) -> Result<pb::RevokeSigningKeyResponse, AdminError> {
        let replacement = super::revoke_key(self.store.as_ref(), &self.custody, &request.kid, self.now()).await?;
        Ok(pb::RevokeSigningKeyResponse {
            replacement: replacement.map(|r| signing_key_view(&r, super::KeyState::Active)),
        })
    }

    /// Every trusted issuer.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list_trusted_issuers(
        &self,
        _request: pb::ListTrustedIssuersRequest,
    ) -> Result<pb::ListTrustedIssuersResponse, AdminError> {
        let issuers = self
            .store
            .trusted_issuers()
            .await?
            .iter()
            .map(trusted_issuer_view)
            .collect();
        Ok(pb::ListTrustedIssuersResponse { issuers })
    }

    /// One trusted issuer.
    ///
    /// # Errors
    /// [`AdminError::UnknownIssuer`].
    pub async fn get_trusted_issuer(
        &self,
        request: pb::GetTrustedIssuerRequest,
    ) -> Result<pb::TrustedIssuer, AdminError> {
        self.store
            .trusted_issuers()
            .await?
            .iter()
            .find(|t| t.issuer == request.issuer)
            .map(trusted_issuer_view)
            .ok_or(AdminError::UnknownIssuer(request.issuer))
    }

    /// Trusts an issuer. A bearer token file cannot be named here: it is a
    /// path on the server's host, which only someone there may choose.
    ///
    /// # Errors
    /// As [`super::add_trusted_issuer`]; [`AdminError::InvalidRequest`]
    /// unless exactly one key source is given.
    pub async fn add_trusted_issuer(
        &self,
        request: pb::AddTrustedIssuerRequest,
    ) -> Result<pb::TrustedIssuer, AdminError> {
        let jwks = match (non_empty(request.jwks), non_empty(request.jwks_url), request.discovery) {
            (Some(jwks), None, false) => JwksSource::Inline(jwks),
            (None, Some(url), false) => JwksSource::Url(url),
            (None, None, true) => JwksSource::Discovery,
            _ => {
                return Err(AdminError::InvalidRequest(
                    "give exactly one of jwks, jwks_url and discovery".into(),
                ));
            }
        };
        let trust = NewTrust {
            issuer: request.issuer,
            jwks,
            audiences: request.audiences,
            max_lifetime_secs: request.max_lifetime_secs.unwrap_or(DEFAULT_TRUST_MAX_LIFETIME_SECS),
            ca_pem: non_empty(request.ca_pem),
            bearer_token_file: None,
        };
        let record =
            super::add_trusted_issuer(self.store.as_ref(), trust, self.own_issuer.as_deref(), self.now()).await?;
        Ok(trusted_issuer_view(&record))
    }

    /// Stops trusting an issuer.
    ///
    /// # Errors
    /// [`AdminError::UnknownIssuer`].
    pub async fn remove_trusted_issuer(
        &self,
        request: pb::RemoveTrustedIssuerRequest,
    ) -> Result<pb::RemoveTrustedIssuerResponse, AdminError> {
        super::remove_trusted_issuer(self.store.as_ref(), &request.issuer).await?;
        Ok(pb::RemoveTrustedIssuerResponse {})
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// Longest page token accepted: a client id, base64url-encoded.
const MAX_PAGE_TOKEN_LEN: usize = 4 * super::MAX_CLIENT_ID_LEN.div_ceil(3);

fn decode_page_token(token: &str) -> Result<Option<String>, AdminError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        AdminError::InvalidRequest(
            "page_token is not one this server gave; list again from the first page (an empty page_token)".into(),
        )
    };
    if token.len() > MAX_PAGE_TOKEN_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    String::from_utf8(bytes).map(Some).map_err(|_| invalid())
}

/// The client and the one registration a request names (exactly one of
/// its five ways to name a certificate).
///
/// # Errors
/// [`AdminError::InvalidRequest`] for none, or more than one.
pub fn certificate_spec(request: pb::ClientCertificateRequest) -> Result<(String, CertificateSpec), AdminError> {
    let given = [
        non_empty(request.san_uri).map(CertificateSpec::SanUri),
        non_empty(request.san_dns).map(CertificateSpec::SanDns),
        non_empty(request.subject_dn).map(CertificateSpec::SubjectDn),
        non_empty(request.pem).map(CertificateSpec::Pem),
        non_empty(request.self_signed).map(CertificateSpec::Thumbprint),
    ];
    let mut given = given.into_iter().flatten();
    match (given.next(), given.next()) {
        (Some(spec), None) => Ok((request.client_id, spec)),
        _ => Err(AdminError::InvalidRequest(
            "give exactly one of san_uri, san_dns, subject_dn, pem and self_signed".into(),
        )),
    }
}

/// A client as the admin API shows it: never a secret, only the secrets' ids and dates.
pub fn client_view(client: &ClientRecord, now: UnixTime) -> pb::Client {
    pb::Client {
        client_id: client.client_id.clone(),
        scopes: client.scopes.clone(),
        audiences: client.audiences.clone(),
        token_ttl: client.token_ttl,
        disabled: client.disabled,
        created_at: client.created_at,
        secrets: client
            .secrets
            .iter()
            .map(|s| pb::SecretInfo {
                secret_id: s.secret_id.clone(),
                created_at: s.created_at,
                expires_at: s.expires_at,
                live: s.is_live(now),
            })
            .collect(),
        keys: client.keys.iter().map(client_key_view).collect(),
        federated_identities: client
            .federated
            .iter()
            .map(|f| pb::FederatedIdentity {
                issuer: f.issuer.clone(),
                subject: f.subject.clone(),
                created_at: f.created_at,
            })
            .collect(),
        certificates: client
            .certificates
            .iter()
            .map(|c| pb::ClientCertificate {
                kind: c.matcher.kind().to_owned(),
                value: c.matcher.value().to_owned(),
                created_at: c.created_at,
            })
            .collect(),
        bind_to_certificate: client.bind_to_certificate,
    }
}

/// A client's public key as the admin API shows it.
fn client_key_view(key: &ClientKeyRecord) -> pb::ClientKey {
    pb::ClientKey {
        kid: key.kid.clone(),
        alg: key.alg.clone(),
        jwk: key.jwk.clone(),
        created_at: key.created_at,
    }
}

/// A signing key's public facts.
pub fn signing_key_view(key: &SigningKeyRecord, state: super::KeyState) -> pb::SigningKey {
    pb::SigningKey {
        kid: key.kid.clone(),
        alg: key.alg.clone(),
        state: state.as_str().to_owned(),
        created_at: key.created_at,
        activates_at: key.activates_at,
        revoked_at: key.revoked_at,
        encrypted_under: sealed_under(&key.private_pkcs8)
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

/// A trusted issuer as the admin API shows it (its CA only as "given or not").
pub fn trusted_issuer_view(trust: &TrustedIssuerRecord) -> pb::TrustedIssuer {
    pb::TrustedIssuer {
        issuer: trust.issuer.clone(),
        jwks_source: trust.jwks.kind().to_owned(),
        jwks_url: match &trust.jwks {
            JwksSource::Url(url) => url.clone(),
            _ => String::new(),
        },
        audiences: trust.audiences.clone(),
        max_lifetime_secs: trust.max_lifetime_secs,
        ca: trust.ca_pem.is_some(),
        bearer_token_file: trust.bearer_token_file.clone().unwrap_or_default(),
        created_at: trust.created_at,
        stored_keys: match &trust.jwks {
            JwksSource::Inline(text) => crate::federation::parse_jwks(text)
                .map(|keys| u32::try_from(keys.len()).unwrap_or(u32::MAX))
                .unwrap_or(0),
            _ => 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_reads_back_and_a_forged_one_is_refused() {
        let token = URL_SAFE_NO_PAD.encode("billing");
        assert_eq!(decode_page_token(&token).unwrap().as_deref(), Some("billing"));
        assert_eq!(decode_page_token("").unwrap(), None);
        for forged in ["!!!", "a".repeat(MAX_PAGE_TOKEN_LEN + 1).as_str(), "_w"] {
            assert!(
                matches!(decode_page_token(forged), Err(AdminError::InvalidRequest(_))),
                "{forged:?}"
            );
        }
    }
}

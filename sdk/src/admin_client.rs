//! [`AdminClient`]: typed calls to `tessera.admin.v1.AdminService`, the
//! admin API, authenticated with a token of the admin client's own.

use std::fmt;

use tessera_proto::admin::v1 as pb;
use tessera_proto::admin::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use crate::{CachePolicy, Error, TokenClient, TokenRequest, TokenSource};

/// A client of Tessera's admin API. It gets its own access token from the
/// [`TokenClient`] it is built on (same endpoint, same credentials), keeps
/// it cached and refreshed ahead like any [`TokenSource`], and sends it as
/// `authorization: Bearer` on every call.
///
/// The admin client must be registered with the scope `tessera:admin` (or
/// `tessera:admin:read` for reads) and the audience `<issuer>/admin`.
/// [`AdminClient::discover`] reads the issuer from the server's metadata and
/// asks for that audience alone: a token that also named another service
/// could be replayed here by that service. [`AdminClient::new`] asks for the
/// client's registered scopes and audiences, [`AdminClient::with_request`]
/// for what it is told.
///
/// ```no_run
/// use tessera_sdk::{AdminClient, TokenClient};
/// use tessera_sdk::admin::ListClientsRequest;
/// # async fn example() -> Result<(), tessera_sdk::Error> {
/// let tokens = TokenClient::builder("https://tessera.internal")
///     .client_secret("platform-admin", "the-secret")
///     .build()?;
/// let admin = AdminClient::discover(&tokens).await?;
/// let page = admin.list_clients(ListClientsRequest::default()).await?;
/// for client in page.clients {
///     println!("{} {:?}", client.client_id, client.scopes);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AdminClient {
    grpc: AdminServiceClient<Channel>,
    token: TokenSource,
}

impl fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminClient").finish_non_exhaustive()
    }
}

impl AdminClient {
    /// An admin client on `tokens`' connection, with a token of the
    /// client's registered scopes and audiences.
    pub fn new(tokens: &TokenClient) -> Self {
        Self::with_request(tokens, TokenRequest::new())
    }

    /// An admin client whose token is for the admin audience alone,
    /// `<issuer>/admin`, the issuer read from the server's RFC 8414 metadata
    /// (`/.well-known/oauth-authorization-server`, on the same connection).
    /// Works with servers that require an audience in every token request.
    ///
    /// # Errors
    /// [`Error::Unreachable`] or [`Error::Transport`] when the metadata cannot
    /// be read, [`Error::Config`] when it names no issuer.
    pub async fn discover(tokens: &TokenClient) -> Result<Self, Error> {
        let issuer = issuer(tokens.channel()).await?;
        let audience = tessera_proto::admin::admin_audience(&issuer);
        Ok(Self::with_request(tokens, TokenRequest::new().audience(audience)))
    }

    /// As [`AdminClient::new`], asking for its token with `request` (e.g.
    /// only `tessera:admin:read`, or the audience `<issuer>/admin` alone).
    pub fn with_request(tokens: &TokenClient, request: TokenRequest) -> Self {
        Self {
            grpc: AdminServiceClient::new(tokens.channel()),
            token: tokens.token_source(request, CachePolicy::default()),
        }
    }

    /// Sends `message` with the admin token; a token refused as no longer
    /// active (revoked, its key rotated out) is replaced once and the call
    /// made again.
    async fn call<Req, Resp, Call, Fut>(&self, message: Req, call: Call) -> Result<Resp, Error>
    where
        Req: Clone,
        Call: Fn(AdminServiceClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let mut retried = false;
        loop {
            let token = self.token.token().await?;
            let mut request = tonic::Request::new(message.clone());
            let mut value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
                format!("Bearer {}", token.expose())
                    .parse()
                    .map_err(|_| Error::Config("the access token cannot be sent as metadata"))?;
            value.set_sensitive(true);
            request.metadata_mut().insert("authorization", value);
            match call(self.grpc.clone(), request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == tonic::Code::Unauthenticated && !retried => {
                    retried = true;
                    if !self.token.invalidate(&token) {
                        return Err(Error::from_status(status));
                    }
                }
                Err(status) => return Err(Error::from_status(status)),
            }
        }
    }
}

/// The `issuer` of the server's RFC 8414 metadata, read over `channel`.
async fn issuer(channel: Channel) -> Result<String, Error> {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let request = http::Request::builder()
        .method(http::Method::GET)
        .uri("/.well-known/oauth-authorization-server")
        .body(tonic::body::Body::empty())
        .map_err(|_| Error::Config("cannot build the metadata request"))?;
    let response = channel
        .oneshot(request)
        .await
        .map_err(|e| Error::from_status(tonic::Status::from_error(Box::new(e))))?;
    if !response.status().is_success() {
        return Err(Error::Transport(tonic::Status::unavailable(format!(
            "the server's metadata answered HTTP {}: is this a Tessera server?",
            response.status()
        ))));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| {
            Error::Transport(tonic::Status::unavailable(format!(
                "reading the server's metadata: {e}"
            )))
        })?
        .to_bytes();
    #[derive(serde::Deserialize)]
    struct Metadata {
        issuer: String,
    }
    serde_json::from_slice::<Metadata>(&body)
        .map(|m| m.issuer)
        .map_err(|_| Error::Config("the server's metadata names no issuer: is this a Tessera server?"))
}

macro_rules! admin_calls {
    ($($(#[$doc:meta])* $name:ident($request:ident) -> $response:ident;)*) => {
        impl AdminClient {
            $(
                $(#[$doc])*
                ///
                /// # Errors
                /// [`Error::Rejected`] with the admin API's code (`invalid_token`,
                /// `insufficient_scope`, `invalid_request`, `not_found`,
                /// `already_exists`, `failed_precondition`), or a transport error.
                pub async fn $name(&self, request: pb::$request) -> Result<pb::$response, Error> {
                    self.call(request, |mut grpc, request| async move { grpc.$name(request).await }).await
                }
            )*
        }
    };
}

admin_calls! {
    /// Registers a client; the answer holds its secret, shown this once.
    create_client(CreateClientRequest) -> CreateClientResponse;
    /// One client, with its secrets' ids and dates (never a secret).
    get_client(GetClientRequest) -> Client;
    /// A page of clients in id order; pass `next_page_token` back for the next.
    list_clients(ListClientsRequest) -> ListClientsResponse;
    /// Changes the settings named; what is not named stays.
    update_client(UpdateClientRequest) -> Client;
    /// Stops issuing tokens to a client.
    disable_client(ClientRequest) -> Client;
    /// Issues tokens to a disabled client again.
    enable_client(ClientRequest) -> Client;
    /// Deletes a client.
    delete_client(ClientRequest) -> DeleteClientResponse;
    /// A new secret, shown once; the others stay valid for `keep_old_for_secs`.
    rotate_client_secret(RotateClientSecretRequest) -> RotateClientSecretResponse;
    /// Registers a public key for `private_key_jwt`.
    add_client_key(AddClientKeyRequest) -> AddClientKeyResponse;
    /// Removes a client's public key.
    remove_client_key(RemoveClientKeyRequest) -> Client;
    /// Binds a platform identity (issuer, subject) to a client.
    add_federated_identity(FederatedIdentityRequest) -> Client;
    /// Unbinds a platform identity.
    remove_federated_identity(FederatedIdentityRequest) -> Client;
    /// Registers a TLS client certificate for a client (RFC 8705).
    add_client_certificate(ClientCertificateRequest) -> Client;
    /// Removes a certificate registration.
    remove_client_certificate(ClientCertificateRequest) -> Client;
    /// Every signing key and its state.
    list_signing_keys(ListSigningKeysRequest) -> ListSigningKeysResponse;
    /// Adds a signing key, published now, signing after `publish_ahead_secs`.
    rotate_signing_key(RotateSigningKeyRequest) -> RotateSigningKeyResponse;
    /// Revokes a compromised signing key.
    revoke_signing_key(RevokeSigningKeyRequest) -> RevokeSigningKeyResponse;
    /// Every trusted issuer.
    list_trusted_issuers(ListTrustedIssuersRequest) -> ListTrustedIssuersResponse;
    /// One trusted issuer.
    get_trusted_issuer(GetTrustedIssuerRequest) -> TrustedIssuer;
    /// Trusts an issuer's tokens as client credentials.
    add_trusted_issuer(AddTrustedIssuerRequest) -> TrustedIssuer;
    /// Stops trusting an issuer.
    remove_trusted_issuer(RemoveTrustedIssuerRequest) -> RemoveTrustedIssuerResponse;
}

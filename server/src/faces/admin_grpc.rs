//! The gRPC face of the admin API: `tessera.admin.v1.AdminService`, each
//! call authorised by [`crate::admin::gate`] and carried out by
//! [`crate::admin::api`].

use std::sync::Arc;

use tessera_proto::admin::v1 as pb;
use tessera_proto::admin::v1::admin_service_server::{AdminService, AdminServiceServer};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::authorization;
use crate::admin::AdminError;
use crate::admin::api::AdminOps;
use crate::admin::gate::{self, Access, AdminRefusal};
use crate::authority::Authority;
use crate::tls::PeerCertificate;

/// Largest message the admin service decodes: a client with its keys, or a
/// trusted issuer's inline key set and CA certificates.
pub const MAX_ADMIN_MESSAGE_BYTES: usize = 256 * 1024;

/// The `AdminService` implementation.
#[derive(Debug, Clone)]
pub struct AdminGrpc {
    authority: Arc<Authority>,
}

impl AdminGrpc {
    /// The service over `authority`.
    pub fn new(authority: Arc<Authority>) -> Self {
        Self { authority }
    }

    /// The tonic server, with the admin message-size limit.
    pub fn into_server(self) -> AdminServiceServer<Self> {
        AdminServiceServer::new(self)
            .max_decoding_message_size(MAX_ADMIN_MESSAGE_BYTES)
            .max_encoding_message_size(4 * MAX_ADMIN_MESSAGE_BYTES)
    }

    async fn call<Req, Resp, Op, Fut>(
        &self,
        request: Request<Req>,
        access: Access,
        name: &'static str,
        operation: Op,
    ) -> Result<Response<Resp>, Status>
    where
        Op: FnOnce(AdminOps, Req) -> Fut,
        Fut: std::future::Future<Output = Result<Resp, AdminError>>,
    {
        let authorization =
            authorization::parse(request.metadata().get_all("authorization").iter().map(|v| v.as_bytes()));
        let certificate = request.extensions().get::<PeerCertificate>().cloned();
        let message = request.into_inner();
        gate::call(
            &self.authority,
            authorization,
            certificate.as_ref(),
            access,
            name,
            message,
            operation,
        )
        .await
        .map(Response::new)
        .map_err(|refusal| status(&refusal))
    }
}

/// The gRPC status of a refusal, with its code in `google.rpc.ErrorInfo.reason`.
pub fn status(refusal: &AdminRefusal) -> Status {
    let encoding = refusal.encoding();
    let details = ErrorDetails::with_error_info(
        encoding.code,
        tessera_proto::oauth::ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    Status::with_error_details(encoding.grpc, refusal.description(), details)
}

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    async fn create_client(
        &self,
        request: Request<pb::CreateClientRequest>,
    ) -> Result<Response<pb::CreateClientResponse>, Status> {
        self.call(request, Access::Write, "CreateClient", |ops, r| async move {
            ops.create_client(r).await
        })
        .await
    }

    async fn get_client(&self, request: Request<pb::GetClientRequest>) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Read, "GetClient", |ops, r| async move {
            ops.get_client(r).await
        })
        .await
    }

    async fn list_clients(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        self.call(request, Access::Read, "ListClients", |ops, r| async move {
            ops.list_clients(r).await
        })
        .await
    }

    async fn update_client(&self, request: Request<pb::UpdateClientRequest>) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "UpdateClient", |ops, r| async move {
            ops.update_client(r).await
        })
        .await
    }

    async fn disable_client(&self, request: Request<pb::ClientRequest>) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "DisableClient", |ops, r| async move {
            ops.disable_client(r).await
        })
        .await
    }

    async fn enable_client(&self, request: Request<pb::ClientRequest>) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "EnableClient", |ops, r| async move {
            ops.enable_client(r).await
        })
        .await
    }

    async fn delete_client(
        &self,
        request: Request<pb::ClientRequest>,
    ) -> Result<Response<pb::DeleteClientResponse>, Status> {
        self.call(request, Access::Write, "DeleteClient", |ops, r| async move {
            ops.delete_client(r).await
        })
        .await
    }

    async fn rotate_client_secret(
        &self,
        request: Request<pb::RotateClientSecretRequest>,
    ) -> Result<Response<pb::RotateClientSecretResponse>, Status> {
        self.call(request, Access::Write, "RotateClientSecret", |ops, r| async move {
            ops.rotate_client_secret(r).await
        })
        .await
    }

    async fn add_client_key(
        &self,
        request: Request<pb::AddClientKeyRequest>,
    ) -> Result<Response<pb::AddClientKeyResponse>, Status> {
        self.call(request, Access::Write, "AddClientKey", |ops, r| async move {
            ops.add_client_key(r).await
        })
        .await
    }

    async fn remove_client_key(
        &self,
        request: Request<pb::RemoveClientKeyRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "RemoveClientKey", |ops, r| async move {
            ops.remove_client_key(r).await
        })
        .await
    }

    async fn add_federated_identity(
        &self,
        request: Request<pb::FederatedIdentityRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "AddFederatedIdentity", |ops, r| async move {
            ops.add_federated_identity(r).await
        })
        .await
    }

    async fn remove_federated_identity(
        &self,
        request: Request<pb::FederatedIdentityRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "RemoveFederatedIdentity", |ops, r| async move {
            ops.remove_federated_identity(r).await
        })
        .await
    }

    async fn add_client_certificate(
        &self,
        request: Request<pb::ClientCertificateRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "AddClientCertificate", |ops, r| async move {
            ops.add_client_certificate(r).await
        })
        .await
    }

    async fn remove_client_certificate(
        &self,
        request: Request<pb::ClientCertificateRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.call(request, Access::Write, "RemoveClientCertificate", |ops, r| async move {
            ops.remove_client_certificate(r).await
        })
        .await
    }

    async fn list_signing_keys(
        &self,
        request: Request<pb::ListSigningKeysRequest>,
    ) -> Result<Response<pb::ListSigningKeysResponse>, Status> {
        self.call(request, Access::Read, "ListSigningKeys", |ops, r| async move {
            ops.list_signing_keys(r).await
        })
        .await
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        self.call(request, Access::Write, "RotateSigningKey", |ops, r| async move {
            ops.rotate_signing_key(r).await
        })
        .await
    }

    async fn revoke_signing_key(
        &self,
        request: Request<pb::RevokeSigningKeyRequest>,
    ) -> Result<Response<pb::RevokeSigningKeyResponse>, Status> {
        self.call(request, Access::Write, "RevokeSigningKey", |ops, r| async move {
            ops.revoke_signing_key(r).await
        })
        .await
    }

    async fn list_trusted_issuers(
        &self,
        request: Request<pb::ListTrustedIssuersRequest>,
    ) -> Result<Response<pb::ListTrustedIssuersResponse>, Status> {
        self.call(request, Access::Read, "ListTrustedIssuers", |ops, r| async move {
            ops.list_trusted_issuers(r).await
        })
        .await
    }

    async fn get_trusted_issuer(
        &self,
        request: Request<pb::GetTrustedIssuerRequest>,
    ) -> Result<Response<pb::TrustedIssuer>, Status> {
        self.call(request, Access::Read, "GetTrustedIssuer", |ops, r| async move {
            ops.get_trusted_issuer(r).await
        })
        .await
    }

    async fn add_trusted_issuer(
        &self,
        request: Request<pb::AddTrustedIssuerRequest>,
    ) -> Result<Response<pb::TrustedIssuer>, Status> {
        self.call(request, Access::Write, "AddTrustedIssuer", |ops, r| async move {
            ops.add_trusted_issuer(r).await
        })
        .await
    }

    async fn remove_trusted_issuer(
        &self,
        request: Request<pb::RemoveTrustedIssuerRequest>,
    ) -> Result<Response<pb::RemoveTrustedIssuerResponse>, Status> {
        self.call(request, Access::Write, "RemoveTrustedIssuer", |ops, r| async move {
            ops.remove_trusted_issuer(r).await
        })
        .await
    }
}

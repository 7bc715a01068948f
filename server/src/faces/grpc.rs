//! The gRPC face: `tessera.v1.TokenService` over the core.

use std::sync::Arc;
use std::time::Instant;

use tessera_proto::pb;
use tessera_proto::pb::issue_token_request::Credential;
use tonic::{Request, Response, Status};

use super::authorization;
use super::respond::{grpc_status, outcome};
use crate::authority::{AuthError, Authority, CLIENT_CREDENTIALS, ClientSecret, PresentedCredentials, TokenRequest};
use crate::metrics::Face;
use crate::tls::PeerCertificate;

/// Largest message the service decodes; a token request is a few hundred bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The `TokenService` implementation.
#[derive(Debug, Clone)]
pub struct TokenService {
    authority: Arc<Authority>,
}

impl TokenService {
    /// The service over `authority`.
    pub fn new(authority: Arc<Authority>) -> Self {
        Self { authority }
    }

    /// The tonic server, with Tessera's message-size limit.
    pub fn into_server(self) -> pb::token_service_server::TokenServiceServer<Self> {
        pb::token_service_server::TokenServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Records the answer in the metrics and turns a refusal into its status.
    fn answer<T>(
        &self,
        endpoint: &'static str,
        started: Instant,
        result: Result<T, AuthError>,
    ) -> Result<Response<T>, Status> {
        self.authority
            .metrics()
            .observe(Face::Grpc, endpoint, outcome(&result), started.elapsed());
        result.map(Response::new).map_err(|e| grpc_status(&e))
    }

    async fn issue(&self, request: Request<pb::IssueTokenRequest>) -> Result<pb::IssueTokenResponse, AuthError> {
        let authorization =
            authorization::parse(request.metadata().get_all("authorization").iter().map(|v| v.as_bytes()))?;
        let source = peer_ip(&request);
        let client_certificate = request.extensions().get::<PeerCertificate>().cloned();
        let message = request.into_inner();
        let mut credentials = PresentedCredentials {
            authorization,
            client_id: non_empty(message.client_id),
            client_certificate,
            source,
            ..Default::default()
        };
        match message.credential {
            Some(Credential::ClientSecret(secret)) => {
                credentials.client_secret = non_empty(secret).map(ClientSecret::new);
            }
            Some(Credential::ClientAssertion(assertion)) => {
                credentials.client_assertion_type = non_empty(assertion.assertion_type);
                credentials.client_assertion = non_empty(assertion.assertion);
            }
            None => {}
        }
        let grant_type = non_empty(message.grant_type).unwrap_or_else(|| CLIENT_CREDENTIALS.to_owned());
        let token_request = TokenRequest {
            grant_type: Some(grant_type),
            credentials,
            scopes: message.scopes,
            audiences: message.audiences,
        };
        let issued = self.authority.issue(token_request).await?;
        Ok(pb::IssueTokenResponse {
            access_token: issued.access_token.into_inner(),
            token_type: "Bearer".to_owned(),
            expires_in: i64::from(issued.expires_in),
            scopes: issued.scopes,
            audiences: issued.audiences,
        })
    }

    async fn introspect(
        &self,
        request: Request<pb::IntrospectTokenRequest>,
    ) -> Result<pb::IntrospectTokenResponse, AuthError> {
        let caller = caller_credentials(&request)?;
        let token = required_token(request.into_inner().token)?;
        let Some(token) = self.authority.introspect(caller, &token).await? else {
            // RFC 7662 §2.2: nothing but `active: false` for an inactive token.
            return Ok(pb::IntrospectTokenResponse::default());
        };
        Ok(pb::IntrospectTokenResponse {
            active: true,
            scope: token.scopes.join(" "),
            client_id: token.client_id,
            sub: token.sub,
            aud: token.audiences,
            iss: token.iss,
            exp: token.exp,
            iat: token.iat,
            nbf: token.nbf,
            jti: token.jti,
            token_type: "Bearer".to_owned(),
            cnf: token
                .cnf
                .and_then(|cnf| cnf.x5t_s256)
                .map(|x5t_s256| pb::Confirmation { x5t_s256 }),
        })
    }

    async fn revoke(&self, request: Request<pb::RevokeTokenRequest>) -> Result<pb::RevokeTokenResponse, AuthError> {
        let caller = caller_credentials(&request)?;
        let token = required_token(request.into_inner().token)?;
        self.authority.revoke(caller, &token).await?;
        Ok(pb::RevokeTokenResponse {})
    }
}

/// The connection's peer; forwarding metadata is not trusted (docs/THREATS.md, row A-15).
fn peer_ip<T>(request: &Request<T>) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Introspection and revocation callers authenticate with `authorization`
/// metadata: `Basic` client credentials or a `Bearer` token.
fn caller_credentials<T>(request: &Request<T>) -> Result<PresentedCredentials, AuthError> {
    let authorization = authorization::parse(request.metadata().get_all("authorization").iter().map(|v| v.as_bytes()))?;
    Ok(PresentedCredentials {
        authorization,
        client_certificate: request.extensions().get::<PeerCertificate>().cloned(),
        source: peer_ip(request),
        ..Default::default()
    })
}

fn required_token(token: String) -> Result<String, AuthError> {
    non_empty(token).ok_or_else(|| AuthError::invalid_request("the token field is required"))
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

#[tonic::async_trait]
impl pb::token_service_server::TokenService for TokenService {
    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let started = Instant::now();
        let result = self.issue(request).await;
        self.answer("issue_token", started, result)
    }

    async fn introspect_token(
        &self,
        request: Request<pb::IntrospectTokenRequest>,
    ) -> Result<Response<pb::IntrospectTokenResponse>, Status> {
        let started = Instant::now();
        let result = self.introspect(request).await;
        self.answer("introspect_token", started, result)
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let started = Instant::now();
        let result = self.revoke(request).await;
        self.answer("revoke_token", started, result)
    }

    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Result<Response<pb::GetJwksResponse>, Status> {
        let keys = self
            .authority
            .jwks()
            .into_iter()
            .map(|jwk| pb::JsonWebKey {
                kty: jwk.kty.to_owned(),
                kid: jwk.kid,
                r#use: jwk.use_.to_owned(),
                alg: jwk.alg.to_owned(),
                crv: jwk.crv.unwrap_or_default().to_owned(),
                x: jwk.x.unwrap_or_default(),
                y: jwk.y.unwrap_or_default(),
                n: jwk.n.unwrap_or_default(),
                e: jwk.e.unwrap_or_default(),
            })
            .collect();
        let mut response = Response::new(pb::GetJwksResponse { keys });
        response.metadata_mut().insert(
            "cache-control",
            tonic::metadata::MetadataValue::from_static(super::http::JWKS_CACHE_CONTROL),
        );
        Ok(response)
    }
}

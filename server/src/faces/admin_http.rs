//! The HTTP face of the admin API: the calls of `tessera.admin.v1.AdminService`
//! as JSON under `/admin/v1/` (server/api/openapi.json). The bodies are the
//! proto messages with their field names as keys; what the path names
//! (a client id, a key id, an issuer) comes from the path, percent-decoded.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use tessera_proto::admin::v1 as pb;

use super::authorization;
use super::http::BODY_READ_TIMEOUT;
use super::respond::no_store;
use crate::admin::AdminError;
use crate::admin::api::AdminOps;
use crate::admin::gate::{self, Access, AdminRefusal};
use crate::authority::Authority;
use crate::tls::PeerCertificate;

/// Where the admin routes live.
pub const ADMIN_PREFIX: &str = "/admin/v1";

/// Largest admin request body: a trusted issuer's key set and CA
/// certificates fit; a larger body is refused unread.
pub const MAX_ADMIN_BODY_BYTES: usize = 256 * 1024;

/// The state every admin route shares.
type Shared = Arc<Authority>;

/// The admin routes, every one behind [`gate::authorize`].
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .route(
            "/admin/v1/clients",
            get(list_clients).post(create_client).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}",
            get(get_client)
                .patch(update_client)
                .delete(delete_client)
                .fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/disable",
            post(disable_client).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/enable",
            post(enable_client).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/rotate-secret",
            post(rotate_client_secret).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/keys",
            post(add_client_key).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/keys/{kid}",
            axum::routing::delete(remove_client_key).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/federated-identities",
            post(add_federated_identity).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/federated-identities/remove",
            post(remove_federated_identity).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/certificates",
            post(add_client_certificate).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clients/{client_id}/certificates/remove",
            post(remove_client_certificate).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/signing-keys",
            get(list_signing_keys).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/signing-keys/rotate",
            post(rotate_signing_key).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/signing-keys/{kid}/revoke",
            post(revoke_signing_key).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/trusted-issuers",
            get(list_trusted_issuers)
                .post(add_trusted_issuer)
                .fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/trusted-issuers/{issuer}",
            get(get_trusted_issuer)
                .delete(remove_trusted_issuer)
                .fallback(method_not_allowed),
        )
        .with_state(authority)
}

/// What every admin request brings besides its body: who is calling.
struct Caller {
    authorization: Result<Option<crate::authority::Authorization>, crate::authority::AuthError>,
    certificate: Option<PeerCertificate>,
}

/// Splits a request into its caller and its body, read within the size
/// and time limits.
async fn read(request: Request) -> Result<(Caller, Bytes), Malformed> {
    let (parts, body) = request.into_parts();
    let caller = Caller {
        authorization: authorization::parse(
            parts
                .headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .map(|v| v.as_bytes()),
        ),
        certificate: parts.extensions.get::<PeerCertificate>().cloned(),
    };
    let limited = axum::body::to_bytes(Body::new(body), MAX_ADMIN_BODY_BYTES);
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, limited).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return Err(invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_ADMIN_BODY_BYTES} bytes, or was cut short"),
            ));
        }
        Err(_) => {
            return Err(invalid(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long to arrive".into(),
            ));
        }
    };
    Ok((caller, bytes))
}

/// The body as a message; an empty body is the message's defaults.
fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Malformed> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        invalid(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON this call takes: {e}"),
        )
    })
}

/// Takes the id the path names, refusing a body that names another.
fn from_path(path_value: String, body_value: &mut String, field: &str) -> Result<(), Malformed> {
    if !body_value.is_empty() && *body_value != path_value {
        return Err(invalid(
            StatusCode::BAD_REQUEST,
            format!("the body's {field} differs from the path's; leave it out of the body"),
        ));
    }
    *body_value = path_value;
    Ok(())
}

fn path_value(path: Result<Path<String>, PathRejection>) -> Result<String, Malformed> {
    path.map(|Path(value)| value).map_err(|e| {
        invalid(
            StatusCode::BAD_REQUEST,
            format!("the path is malformed ({e}): percent-encode ids that hold '/' or other reserved characters"),
        )
    })
}

fn two_path_values(path: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), Malformed> {
    path.map(|Path(values)| values).map_err(|e| {
        invalid(
            StatusCode::BAD_REQUEST,
            format!("the path is malformed ({e}): percent-encode ids that hold '/' or other reserved characters"),
        )
    })
}

/// Authorises and runs one call, and renders its answer or refusal. The
/// caller is authorised before its request is looked at: a caller without
/// the rights learns nothing from the answer, not even whether its body
/// would have parsed.
async fn answer<Req, Resp, Op, Fut>(
    authority: &Authority,
    caller: Caller,
    access: Access,
    name: &'static str,
    request: Result<Req, Malformed>,
    operation: Op,
    success: StatusCode,
) -> Response
where
    Resp: serde::Serialize,
    Op: FnOnce(AdminOps, Req) -> Fut,
    Fut: std::future::Future<Output = Result<Resp, AdminError>>,
{
    let authorized = gate::authorize(
        authority,
        caller.authorization,
        caller.certificate.as_ref(),
        access,
        name,
    )
    .await;
    let admin = match authorized {
        Ok(admin) => admin,
        Err(refusal) => return refused(&refusal, authority.issuer()),
    };
    let request = match request {
        Ok(request) => request,
        Err(malformed) => return malformed.into_response(),
    };
    match gate::run_as(authority, &admin, access, request, operation).await {
        Ok(body) => {
            let mut response = (success, axum::Json(body)).into_response();
            // Answers may carry a secret, and always carry what only an admin may see.
            no_store(&mut response);
            response
        }
        Err(refusal) => refused(&refusal, authority.issuer()),
    }
}

/// A refusal as JSON (`error`, `error_description`), with an RFC 6750
/// challenge on 401 and 403.
pub fn refused(refusal: &AdminRefusal, issuer: &str) -> Response {
    let encoding = refusal.encoding();
    let description = refusal.description();
    let status = StatusCode::from_u16(encoding.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error_body(status, encoding.code, &description);
    let quotable = |text: &str| {
        text.replace(['"', '\\'], "'")
            .replace(|c: char| !(' '..='~').contains(&c), "?")
    };
    let realm = tessera_proto::admin::admin_audience(issuer);
    let challenge = match refusal {
        AdminRefusal::Unauthenticated(_) => Some(format!(
            r#"Bearer realm="{}", error="invalid_token", error_description="{}""#,
            quotable(&realm),
            quotable(&description)
        )),
        AdminRefusal::InsufficientScope { needed } => Some(format!(
            r#"Bearer realm="{}", error="insufficient_scope", scope="{needed}""#,
            quotable(&realm)
        )),
        AdminRefusal::Unavailable(_) | AdminRefusal::Failed(AdminError::Store(_)) => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            None
        }
        AdminRefusal::Failed(_) => None,
    };
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn error_body(status: StatusCode, code: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": code, "error_description": description });
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

/// A request that cannot be read as the call it names: `invalid_request`.
struct Malformed(StatusCode, String);

impl IntoResponse for Malformed {
    fn into_response(self) -> Response {
        error_body(self.0, "invalid_request", &self.1)
    }
}

fn invalid(status: StatusCode, description: String) -> Malformed {
    Malformed(status, description)
}

async fn method_not_allowed(method: Method) -> Response {
    Malformed(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on this admin path; see /openapi.json"),
    )
    .into_response()
}

macro_rules! attempt {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(malformed) => return malformed.into_response(),
        }
    };
}

/// `?page_size=&page_token=` of a client list.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ListQuery {
    page_size: u32,
    page_token: String,
}

async fn list_clients(
    State(authority): State<Shared>,
    query: Result<Query<ListQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = query
        .map(|Query(q)| pb::ListClientsRequest {
            page_size: q.page_size,
            page_token: q.page_token,
        })
        .map_err(|e| {
            invalid(
                StatusCode::BAD_REQUEST,
                format!("the query is malformed: {e}; page_size is a number, page_token the next_page_token of a previous answer"),
            )
        });
    answer(
        &authority,
        caller,
        Access::Read,
        "ListClients",
        message,
        |ops, r| async move { ops.list_clients(r).await },
        StatusCode::OK,
    )
    .await
}

async fn create_client(State(authority): State<Shared>, request: Request) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = parse::<pb::CreateClientRequest>(&body);
    answer(
        &authority,
        caller,
        Access::Write,
        "CreateClient",
        message,
        |ops, r| async move { ops.create_client(r).await },
        StatusCode::CREATED,
    )
    .await
}

async fn get_client(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = path_value(path).map(|client_id| pb::GetClientRequest { client_id });
    answer(
        &authority,
        caller,
        Access::Read,
        "GetClient",
        message,
        |ops, r| async move { ops.get_client(r).await },
        StatusCode::OK,
    )
    .await
}

async fn update_client(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = path_value(path).and_then(|client_id| {
        let mut message: pb::UpdateClientRequest = parse(&body)?;
        from_path(client_id, &mut message.client_id, "client_id")?;
        Ok(message)
    });
    answer(
        &authority,
        caller,
        Access::Write,
        "UpdateClient",
        message,
        |ops, r| async move { ops.update_client(r).await },
        StatusCode::OK,
    )
    .await
}

async fn delete_client(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = path_value(path).map(|client_id| pb::ClientRequest { client_id });
    answer(
        &authority,
        caller,
        Access::Write,
        "DeleteClient",
        message,
        |ops, r| async move { ops.delete_client(r).await },
        StatusCode::OK,
    )
    .await
}

async fn disable_client(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = path_value(path).map(|client_id| pb::ClientRequest { client_id });
    answer(
        &authority,
        caller,
        Access::Write,
        "DisableClient",
        message,
        |ops, r| async move { ops.disable_client(r).await },
        StatusCode::OK,
    )
    .await
}

async fn enable_client(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = path_value(path).map(|client_id| pb::ClientRequest { client_id });
    answer(
        &authority,
        caller,
        Access::Write,
        "EnableClient",
        message,
        |ops, r| async move { ops.enable_client(r).await },
        StatusCode::OK,
    )
    .await
}

async fn rotate_client_secret(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = path_value(path).and_then(|client_id| {
        let mut message: pb::RotateClientSecretRequest = parse(&body)?;
        from_path(client_id, &mut message.client_id, "client_id")?;
        Ok(message)
    });
    answer(
        &authority,
        caller,
        Access::Write,
        "RotateClientSecret",
        message,
        |ops, r| async move { ops.rotate_client_secret(r).await },
        StatusCode::OK,
    )
    .await
}

async fn add_client_key(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = path_value(path).and_then(|client_id| {
        let mut message: pb::AddClientKeyRequest = parse(&body)?;
        from_path(client_id, &mut message.client_id, "client_id")?;
        Ok(message)
    });
    answer(
        &authority,
        caller,
        Access::Write,
        "AddClientKey",
        message,
        |ops, r| async move { ops.add_client_key(r).await },
        StatusCode::OK,
    )
    .await
}

async fn remove_client_key(
    State(authority): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = two_path_values(path).map(|(client_id, kid)| pb::RemoveClientKeyRequest { client_id, kid });
    answer(
        &authority,
        caller,
        Access::Write,
        "RemoveClientKey",
        message,
        |ops, r| async move { ops.remove_client_key(r).await },
        StatusCode::OK,
    )
    .await
}

async fn add_federated_identity(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = path_value(path).and_then(|client_id| {
        let mut message: pb::FederatedIdentityRequest = parse(&body)?;
        from_path(client_id, &mut message.client_id, "client_id")?;
        Ok(message)
    });
    answer(
        &authority,
        caller,
        Access::Write,
        "AddFederatedIdentity",
        message,
        |ops, r| async move { ops.add_federated_identity(r).await },
        StatusCode::OK,
    )
    .await
}

async fn remove_federated_identity(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = path_value(path).and_then(|client_id| {
        let mut message: pb::FederatedIdentityRequest = parse(&body)?;
        from_path(client_id, &mut message.client_id, "client_id")?;
        Ok(message)
    });
    answer(
        &authority,
        caller,
        Access::Write,
        "RemoveFederatedIdentity",
        message,
        |ops, r| async move { ops.remove_federated_identity(r).await },
        StatusCode::OK,
    )
    .await
}

async fn add_client_certificate(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = path_value(path).and_then(|client_id| {
        let mut message: pb::ClientCertificateRequest = parse(&body)?;
        from_path(client_id, &mut message.client_id, "client_id")?;
        Ok(message)
    });
    answer(
        &authority,
        caller,
        Access::Write,
        "AddClientCertificate",
        message,
        |ops, r| async move { ops.add_client_certificate(r).await },
        StatusCode::OK,
    )
    .await
}

async fn remove_client_certificate(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = path_value(path).and_then(|client_id| {
        let mut message: pb::ClientCertificateRequest = parse(&body)?;
        from_path(client_id, &mut message.client_id, "client_id")?;
        Ok(message)
    });
    answer(
        &authority,
        caller,
        Access::Write,
        "RemoveClientCertificate",
        message,
        |ops, r| async move { ops.remove_client_certificate(r).await },
        StatusCode::OK,
    )
    .await
}

async fn list_signing_keys(State(authority): State<Shared>, request: Request) -> Response {
    let (caller, _) = attempt!(read(request).await);
    answer(
        &authority,
        caller,
        Access::Read,
        "ListSigningKeys",
        Ok(pb::ListSigningKeysRequest {}),
        |ops, r| async move { ops.list_signing_keys(r).await },
        StatusCode::OK,
    )
    .await
}

async fn rotate_signing_key(State(authority): State<Shared>, request: Request) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = parse::<pb::RotateSigningKeyRequest>(&body);
    answer(
        &authority,
        caller,
        Access::Write,
        "RotateSigningKey",
        message,
        |ops, r| async move { ops.rotate_signing_key(r).await },
        StatusCode::OK,
    )
    .await
}

async fn revoke_signing_key(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = path_value(path).map(|kid| pb::RevokeSigningKeyRequest { kid });
    answer(
        &authority,
        caller,
        Access::Write,
        "RevokeSigningKey",
        message,
        |ops, r| async move { ops.revoke_signing_key(r).await },
        StatusCode::OK,
    )
    .await
}

async fn list_trusted_issuers(State(authority): State<Shared>, request: Request) -> Response {
    let (caller, _) = attempt!(read(request).await);
    answer(
        &authority,
        caller,
        Access::Read,
        "ListTrustedIssuers",
        Ok(pb::ListTrustedIssuersRequest {}),
        |ops, r| async move { ops.list_trusted_issuers(r).await },
        StatusCode::OK,
    )
    .await
}

async fn add_trusted_issuer(State(authority): State<Shared>, request: Request) -> Response {
    let (caller, body) = attempt!(read(request).await);
    let message = parse::<pb::AddTrustedIssuerRequest>(&body);
    answer(
        &authority,
        caller,
        Access::Write,
        "AddTrustedIssuer",
        message,
        |ops, r| async move { ops.add_trusted_issuer(r).await },
        StatusCode::CREATED,
    )
    .await
}

async fn get_trusted_issuer(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = path_value(path).map(|issuer| pb::GetTrustedIssuerRequest { issuer });
    answer(
        &authority,
        caller,
        Access::Read,
        "GetTrustedIssuer",
        message,
        |ops, r| async move { ops.get_trusted_issuer(r).await },
        StatusCode::OK,
    )
    .await
}

async fn remove_trusted_issuer(
    State(authority): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (caller, _) = attempt!(read(request).await);
    let message = path_value(path).map(|issuer| pb::RemoveTrustedIssuerRequest { issuer });
    answer(
        &authority,
        caller,
        Access::Write,
        "RemoveTrustedIssuer",
        message,
        |ops, r| async move { ops.remove_trusted_issuer(r).await },
        StatusCode::OK,
    )
    .await
}

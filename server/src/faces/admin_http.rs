//! The HTTP face of the admin API: the calls of `tessera.admin.v1.AdminService`
//! as JSON under `/admin/v1/` (server/api/openapi.json). The bodies are the
//! proto messages with their field names as keys; what the path names
//! (a client id, a key id, an issuer) comes from the path, percent-decoded.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
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

/// What a request names: its path parameters (percent-decoded), its
/// query, and its body.
struct Named {
    params: HashMap<String, String>,
    query: String,
    body: Bytes,
}

impl Named {
    /// A path parameter the route declares.
    fn param(&self, name: &str) -> Result<String, Malformed> {
        self.params
            .get(name)
            .cloned()
            .ok_or_else(|| invalid(StatusCode::BAD_REQUEST, format!("the path names no {name}")))
    }

    /// The body as a message; an empty body is the message's defaults.
    fn body<T: DeserializeOwned + Default>(&self) -> Result<T, Malformed> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            invalid(
                StatusCode::BAD_REQUEST,
                format!("the body is not the JSON this call takes: {e}"),
            )
        })
    }

    /// The body as a message about the client the path names; a body
    /// naming another client is refused.
    fn client_body<T: DeserializeOwned + Default>(
        &self,
        client_id: impl FnOnce(&mut T) -> &mut String,
    ) -> Result<T, Malformed> {
        let mut message: T = self.body()?;
        let from_path = self.param("client_id")?;
        let field = client_id(&mut message);
        if !field.is_empty() && *field != from_path {
            return Err(invalid(
                StatusCode::BAD_REQUEST,
                "the body's client_id differs from the path's; leave it out of the body".into(),
            ));
        }
        *field = from_path;
        Ok(message)
    }

    /// The query as `?page_size=&page_token=`.
    fn list_query(&self) -> Result<ListQuery, Malformed> {
        parse_list_query(&self.query)
    }
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

/// The path's parameters: none for a route that declares none.
fn path_params(
    path: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Result<HashMap<String, String>, Malformed> {
    match path {
        Ok(Path(params)) => Ok(params),
        Err(PathRejection::MissingPathParams(_)) => Ok(HashMap::new()),
        Err(e) => Err(invalid(
            StatusCode::BAD_REQUEST,
            format!("the path is malformed ({e}): percent-encode ids that hold '/' or other reserved characters"),
        )),
    }
}

fn parse_list_query(query: &str) -> Result<ListQuery, Malformed> {
    let malformed = |e: &dyn std::fmt::Display| {
        invalid(
            StatusCode::BAD_REQUEST,
            format!(
                "the query is malformed: {e}; page_size is a number, page_token the next_page_token of a previous answer"
            ),
        )
    };
    let uri: axum::http::Uri = format!("/?{query}").parse().map_err(|e| malformed(&e))?;
    Query::<ListQuery>::try_from_uri(&uri)
        .map(|Query(q)| q)
        .map_err(|e| malformed(&e))
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

/// One handler per call: what the request names becomes the call's
/// message (`$build`, from [`Named`]), then [`answer`] authorises and runs it.
macro_rules! handlers {
    ($($handler:ident => $name:literal, $access:ident, $op:ident, $status:ident, |$named:ident| $build:expr;)*) => {
        $(
            async fn $handler(
                State(authority): State<Shared>,
                path: Result<Path<HashMap<String, String>>, PathRejection>,
                request: Request,
            ) -> Response {
                let query = request.uri().query().unwrap_or_default().to_owned();
                let (caller, body) = attempt!(read(request).await);
                let message = path_params(path).and_then(|params| {
                    let $named = Named { params, query, body };
                    $build
                });
                answer(
                    &authority,
                    caller,
                    Access::$access,
                    $name,
                    message,
                    |ops, request| async move { ops.$op(request).await },
                    StatusCode::$status,
                )
                .await
            }
        )*
    };
}

handlers! {
    list_clients => "ListClients", Read, list_clients, OK, |named| named.list_query().map(|q| pb::ListClientsRequest {
        page_size: q.page_size,
        page_token: q.page_token,
    });
    create_client => "CreateClient", Write, create_client, CREATED, |named| named.body::<pb::CreateClientRequest>();
    get_client => "GetClient", Read, get_client, OK, |named| named.param("client_id").map(|client_id| pb::GetClientRequest { client_id });
    update_client => "UpdateClient", Write, update_client, OK,
        |named| named.client_body(|m: &mut pb::UpdateClientRequest| &mut m.client_id);
    delete_client => "DeleteClient", Write, delete_client, OK, |named| named.param("client_id").map(|client_id| pb::ClientRequest { client_id });
    disable_client => "DisableClient", Write, disable_client, OK, |named| named.param("client_id").map(|client_id| pb::ClientRequest { client_id });
    enable_client => "EnableClient", Write, enable_client, OK, |named| named.param("client_id").map(|client_id| pb::ClientRequest { client_id });
    rotate_client_secret => "RotateClientSecret", Write, rotate_client_secret, OK,
        |named| named.client_body(|m: &mut pb::RotateClientSecretRequest| &mut m.client_id);
    add_client_key => "AddClientKey", Write, add_client_key, OK,
        |named| named.client_body(|m: &mut pb::AddClientKeyRequest| &mut m.client_id);
    remove_client_key => "RemoveClientKey", Write, remove_client_key, OK, |named| Ok(pb::RemoveClientKeyRequest {
        client_id: named.param("client_id")?,
        kid: named.param("kid")?,
    });
    add_federated_identity => "AddFederatedIdentity", Write, add_federated_identity, OK,
        |named| named.client_body(|m: &mut pb::FederatedIdentityRequest| &mut m.client_id);
    remove_federated_identity => "RemoveFederatedIdentity", Write, remove_federated_identity, OK,
        |named| named.client_body(|m: &mut pb::FederatedIdentityRequest| &mut m.client_id);
    add_client_certificate => "AddClientCertificate", Write, add_client_certificate, OK,
        |named| named.client_body(|m: &mut pb::ClientCertificateRequest| &mut m.client_id);
    remove_client_certificate => "RemoveClientCertificate", Write, remove_client_certificate, OK,
        |named| named.client_body(|m: &mut pb::ClientCertificateRequest| &mut m.client_id);
    list_signing_keys => "ListSigningKeys", Read, list_signing_keys, OK, |named| named.body::<pb::ListSigningKeysRequest>().map(|_| pb::ListSigningKeysRequest {});
    rotate_signing_key => "RotateSigningKey", Write, rotate_signing_key, OK, |named| named.body::<pb::RotateSigningKeyRequest>();
    revoke_signing_key => "RevokeSigningKey", Write, revoke_signing_key, OK, |named| named.param("kid").map(|kid| pb::RevokeSigningKeyRequest { kid });
    list_trusted_issuers => "ListTrustedIssuers", Read, list_trusted_issuers, OK, |named| named.body::<pb::ListTrustedIssuersRequest>().map(|_| pb::ListTrustedIssuersRequest {});
    add_trusted_issuer => "AddTrustedIssuer", Write, add_trusted_issuer, CREATED, |named| named.body::<pb::AddTrustedIssuerRequest>();
    get_trusted_issuer => "GetTrustedIssuer", Read, get_trusted_issuer, OK, |named| named.param("issuer").map(|issuer| pb::GetTrustedIssuerRequest { issuer });
    remove_trusted_issuer => "RemoveTrustedIssuer", Write, remove_trusted_issuer, OK, |named| named.param("issuer").map(|issuer| pb::RemoveTrustedIssuerRequest { issuer });
}

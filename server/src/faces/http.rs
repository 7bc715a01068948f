//! The HTTP shim: standard OAuth 2.0 endpoints for clients that do not speak
//! gRPC (curl, Spring, authlib, openid-client, golang.org/x/oauth2).
//!
//! Every answer, success or failure, is JSON in the RFC's shape; a framework
//! rejection (wrong method, bad body) never leaks through as plain text.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::authorization;
use super::form::FormBody;
use super::respond::{http_error, no_store, outcome};
use crate::authority::{
    ActiveToken, AuthError, Authority, ClientSecret, IssuedToken, PresentedCredentials, TokenRequest,
};
use crate::metrics::Face;
use crate::tls::PeerCertificate;

/// Largest request body read; a larger one is refused unread (docs/THREATS.md, row A-07).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// How long a request body may take to arrive once the headers have.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Paths of the shim's endpoints.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// RFC 7662 introspection.
pub const INTROSPECT_PATH: &str = "/oauth2/introspect";
/// RFC 7009 revocation.
pub const REVOKE_PATH: &str = "/oauth2/revoke";
/// RFC 8414 metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// The JWK set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The OAuth routes. The operational routes (`faces::ops`) and the gRPC
/// services are mounted beside them by `server::app`.
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token).fallback(method_not_allowed))
        .route(INTROSPECT_PATH, post(introspect).fallback(method_not_allowed))
        .route(REVOKE_PATH, post(revoke).fallback(method_not_allowed))
        .route(JWKS_PATH, get(jwks).fallback(method_not_allowed))
        .route(METADATA_PATH, get(metadata).fallback(method_not_allowed))
        .with_state(authority)
}

/// 405 with `Allow`, as an RFC 6749 section 5.2 `invalid_request`.
pub(super) async fn method_not_allowed(method: Method) -> Response {
    let allow = if method == Method::GET { "POST" } else { "GET, POST" };
    let mut response = http_error(
        &AuthError::invalid_request(format!(
            "method {method} is not allowed here; the OAuth endpoints take POST with an application/x-www-form-urlencoded body (RFC 6749 section 3.2)"
        )),
        // No challenge is sent with invalid_request, so no realm is needed.
        "",
    );
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Runs one OAuth operation: times it, records it in the metrics under
/// `endpoint`, and renders its outcome, a refusal as RFC 6749 section 5.2
/// JSON. What the gRPC face's `answer` is to gRPC.
async fn answer<T>(
    authority: &Authority,
    endpoint: &'static str,
    operation: impl Future<Output = Result<T, AuthError>>,
    render: impl FnOnce(T) -> Response,
) -> Response {
    let started = Instant::now();
    let result = operation.await;
    authority
        .metrics()
        .observe(Face::Http, endpoint, outcome(&result), started.elapsed());
    match result {
        Ok(value) => render(value),
        Err(e) => http_error(&e, authority.issuer()),
    }
}

/// `POST /oauth2/token` (RFC 6749 section 4.4).
async fn token(State(authority): State<Arc<Authority>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let issue = async { authority.issue(token_request(&parts, body).await?).await };
    answer(&authority, "token", issue, |issued| token_response(&issued)).await
}

/// The client credentials a request carries, in the header and the body.
fn presented_credentials(parts: &Parts, form: &FormBody) -> Result<PresentedCredentials, AuthError> {
    Ok(PresentedCredentials {
        authorization: authorization::parse(
            parts
                .headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .map(|v| v.as_bytes()),
        )?,
        client_id: form.single("client_id")?.map(str::to_owned),
        client_secret: form.single("client_secret")?.map(ClientSecret::new),
        client_assertion_type: form.single("client_assertion_type")?.map(str::to_owned),
        client_assertion: form.single("client_assertion")?.map(str::to_owned),
        client_certificate: parts.extensions.get::<PeerCertificate>().cloned(),
        source: peer_ip(parts),
    })
}

/// Reads and checks the body, then gathers the token request from it.
async fn token_request(parts: &Parts, body: Body) -> Result<TokenRequest, AuthError> {
    let form = read_form(parts, body).await?;
    let scope = form.single("scope")?;
    Ok(TokenRequest {
        grant_type: form.single("grant_type")?.map(str::to_owned),
        credentials: presented_credentials(parts, &form)?,
        // RFC 6749 §3.3: space-delimited. Runs of spaces are tolerated.
        scopes: scope
            .map(|s| s.split(' ').filter(|t| !t.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        // RFC 8707 `resource` and the widespread `audience` both name audiences; both may repeat.
        audiences: form
            .all("resource")
            .chain(form.all("audience"))
            .map(str::to_owned)
            .collect(),
    })
}

/// The connection's peer. `X-Forwarded-For` is deliberately not consulted:
/// no proxy is trusted yet (docs/THREATS.md, row A-15).
pub fn peer_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Checks the request's shape and parses its form body, refusing what is not
/// `application/x-www-form-urlencoded`, too large, or carries credentials in
/// the URL.
async fn read_form(parts: &Parts, body: Body) -> Result<FormBody, AuthError> {
    if let Some(query) = parts.uri.query() {
        let query = FormBody::parse(query.as_bytes())?;
        if ["client_secret", "client_assertion"].iter().any(|p| query.contains(p)) {
            return Err(AuthError::invalid_request(
                "credentials must not be sent in the URL query; send them in the body or the Authorization header (RFC 6749 section 2.3.1)",
            ));
        }
    }
    check_content_type(&parts.headers)?;
    let too_large = || AuthError::invalid_request(format!("the request body exceeds {MAX_BODY_BYTES} bytes"));
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    // Nothing is decompressed, so a compressed bomb cannot inflate here (docs/THREATS.md, row H-02).
    if let Some(coding) = parts.headers.get(header::CONTENT_ENCODING)
        && !coding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(AuthError::invalid_request(
            "compressed request bodies are not accepted; send the form uncompressed, without Content-Encoding",
        ));
    }
    // A slow sender cannot hold a request open (docs/THREATS.md, row A-07).
    let bytes = tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES))
        .await
        .map_err(|_| {
            AuthError::invalid_request(format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|_| too_large())?;
    FormBody::parse(&bytes)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), AuthError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let wrong = || {
        AuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded (RFC 6749 section 4.4.2)")
    };
    let value = values.next().ok_or_else(wrong)?;
    if values.next().is_some() {
        return Err(wrong());
    }
    let media_type = value
        .to_str()
        .map_err(|_| wrong())?
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(wrong());
    }
    Ok(())
}

/// The RFC 6749 §5.1 success body. A struct rather than a `json!` value,
/// which would build a map of owned strings on every issuance; the fields
/// are in the order the map wrote them.
#[derive(serde::Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    expires_in: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    token_type: &'static str,
}

/// RFC 6749 §5.1.
fn token_response(issued: &IssuedToken) -> Response {
    let body = TokenBody {
        access_token: issued.access_token.expose(),
        expires_in: issued.expires_in,
        scope: (!issued.scopes.is_empty()).then(|| issued.scopes.join(" ")),
        token_type: "Bearer",
    };
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

/// The caller's credentials and the `token` parameter of an introspection or
/// revocation request. `token_type_hint` may be anything: a wrong hint still
/// resolves (RFC 7662 §2.1, RFC 7009 §2.1), but it may not repeat.
async fn token_operation(parts: &Parts, body: Body) -> Result<(PresentedCredentials, String), AuthError> {
    let form = read_form(parts, body).await?;
    let _hint = form.single("token_type_hint")?;
    let token = form
        .single("token")?
        .ok_or_else(|| AuthError::invalid_request("the token parameter is required"))?;
    Ok((presented_credentials(parts, &form)?, token.to_owned()))
}

/// `POST /oauth2/introspect` (RFC 7662).
async fn introspect(State(authority): State<Arc<Authority>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let introspect = async {
        let (caller, token) = token_operation(&parts, body).await?;
        authority.introspect(caller, &token).await
    };
    answer(&authority, "introspect", introspect, |active| {
        let mut response = axum::Json(introspection_json(active.as_ref())).into_response();
        no_store(&mut response);
        response
    })
    .await
}

/// RFC 7662 §2.2: the members of an active token; `{"active": false}` alone otherwise.
pub fn introspection_json(active: Option<&ActiveToken>) -> serde_json::Value {
    let Some(token) = active else {
        return json!({ "active": false });
    };
    let aud = match token.audiences.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    let mut answer = json!({
        "active": true,
        "scope": token.scopes.join(" "),
        "client_id": token.client_id,
        "sub": token.sub,
        "aud": aud,
        "iss": token.iss,
        "exp": token.exp,
        "iat": token.iat,
        "nbf": token.nbf,
        "jti": token.jti,
        "token_type": "Bearer",
    });
    // RFC 8705 section 3.2: a bound token's confirmation, as in the token.
    if let Some(cnf) = &token.cnf {
        answer["cnf"] = json!(cnf);
    }
    answer
}

/// `POST /oauth2/revoke` (RFC 7009).
async fn revoke(State(authority): State<Arc<Authority>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let revoke = async {
        let (caller, token) = token_operation(&parts, body).await?;
        authority.revoke(caller, &token).await
    };
    answer(&authority, "revoke", revoke, |()| {
        let mut response = StatusCode::OK.into_response();
        no_store(&mut response);
        response
    })
    .await
}

/// How long verifiers may keep the key set: short enough that they see a new
/// key well within the publish-ahead delay of a rotation, and drop a revoked
/// one within five minutes. Sent on both faces (gRPC as response metadata).
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// `GET /.well-known/jwks.json` (RFC 7517 §5).
async fn jwks(State(authority): State<Arc<Authority>>) -> Response {
    let mut response = axum::Json(json!({ "keys": authority.jwks() })).into_response();
    // Verifiers also refetch on an unknown `kid`.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_CACHE_CONTROL));
    response
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 section 3): the
/// document the core describes itself with, at this face's paths.
async fn metadata(State(authority): State<Arc<Authority>>) -> Response {
    let paths = crate::authority::EndpointPaths {
        token: TOKEN_PATH,
        introspection: INTROSPECT_PATH,
        revocation: REVOKE_PATH,
        jwks: JWKS_PATH,
    };
    axum::Json(authority.metadata(&paths)).into_response()
}

/// JSON 404 for any other path.
pub async fn not_found() -> Response {
    let body = json!({ "error": "not_found", "error_description": "no such endpoint; see /.well-known/oauth-authorization-server" });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

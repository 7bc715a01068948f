//! The HTTP shim: standard OAuth 2.0 endpoints for clients that do not speak
//! gRPC (curl, Spring, authlib, openid-client, golang.org/x/oauth2).
//!
//! Every answer, success or failure, is JSON in the RFC's shape; a framework
//! rejection (wrong method, bad body) never leaks through as plain text.

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
    ActiveToken, AuthError, Authority, ClientSecret, IssuedToken, PresentedCredentials, StoreHealth, TokenRequest,
};
use crate::metrics::Face;
use crate::tls::PeerCertificate;

/// Largest request body read; a larger one is refused unread (THREATS A-07).
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
/// Liveness probe.
pub const LIVENESS_PATH: &str = "/health/live";
/// Readiness probe.
pub const READINESS_PATH: &str = "/health/ready";
/// Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
/// The OpenAPI 3.1 description of these endpoints.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The OpenAPI document, as kept in the repository (`server/api/openapi.json`).
pub const OPENAPI_DOCUMENT: &str = include_str!("../../api/openapi.json");

/// The shim's routes. The gRPC service is mounted beside them by `server::app`.
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token).fallback(method_not_allowed))
        .route(INTROSPECT_PATH, post(introspect).fallback(method_not_allowed))
        .route(REVOKE_PATH, post(revoke).fallback(method_not_allowed))
        .route(JWKS_PATH, get(jwks).fallback(method_not_allowed))
        .route(METADATA_PATH, get(metadata).fallback(method_not_allowed))
        .route(LIVENESS_PATH, get(liveness).fallback(method_not_allowed))
        .route(READINESS_PATH, get(readiness).fallback(method_not_allowed))
        .route(METRICS_PATH, get(metrics).fallback(method_not_allowed))
        .route(OPENAPI_PATH, get(openapi).fallback(method_not_allowed))
        .with_state(authority)
}

async fn method_not_allowed(State(authority): State<Arc<Authority>>, method: Method) -> Response {
    let allow = if method == Method::GET { "POST" } else { "GET, POST" };
    let mut response = http_error(
        &AuthError::invalid_request(format!(
            "method {method} is not allowed here; the OAuth endpoints take POST with an application/x-www-form-urlencoded body (RFC 6749 section 3.2)"
        )),
        authority.issuer(),
    );
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `POST /oauth2/token` (RFC 6749 §4.4).
async fn token(State(authority): State<Arc<Authority>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let result = match token_request(&parts, body).await {
        Ok(request) => authority.issue(request).await,
        Err(e) => Err(e),
    };
    authority
        .metrics()
        .observe(Face::Http, "token", outcome(&result), started.elapsed());
    match result {
        Ok(issued) => token_response(&issued),
        Err(e) => http_error(&e, authority.issuer()),
    }
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
/// no proxy is trusted yet (THREATS A-15).
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
    // Nothing is decompressed, so a compressed bomb cannot inflate here (THREATS H-02).
    if let Some(coding) = parts.headers.get(header::CONTENT_ENCODING)
        && !coding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(AuthError::invalid_request(
            "compressed request bodies are not accepted; send the form uncompressed, without Content-Encoding",
        ));
    }
    // A slow sender cannot hold a request open (THREATS A-07).
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
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let result = match token_operation(&parts, body).await {
        Ok((caller, token)) => authority.introspect(caller, &token).await,
        Err(e) => Err(e),
    };
    authority
        .metrics()
        .observe(Face::Http, "introspect", outcome(&result), started.elapsed());
    match result {
        Ok(active) => {
            let mut response = axum::Json(introspection_json(active.as_ref())).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => http_error(&e, authority.issuer()),
    }
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
    json!({
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
    })
}

/// `POST /oauth2/revoke` (RFC 7009).
async fn revoke(State(authority): State<Arc<Authority>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let result = match token_operation(&parts, body).await {
        Ok((caller, token)) => authority.revoke(caller, &token).await,
        Err(e) => Err(e),
    };
    authority
        .metrics()
        .observe(Face::Http, "revoke", outcome(&result), started.elapsed());
    match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(e) => http_error(&e, authority.issuer()),
    }
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

/// `GET /openapi.json`.
async fn openapi() -> Response {
    let mut response = OPENAPI_DOCUMENT.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /metrics`: Prometheus text exposition (format 0.0.4).
async fn metrics(State(authority): State<Arc<Authority>>) -> Response {
    let mut response = authority.render_metrics().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Liveness: the process answers. Says nothing about the store, so an
/// orchestrator does not restart healthy replicas during a database outage.
async fn liveness() -> Response {
    axum::Json(json!({ "status": "alive" })).into_response()
}

/// Readiness: 200 while Tessera can answer correctly, with the store's state;
/// 503 once the store has been out of reach for longer than the staleness
/// window (`--store-staleness`), when issuance and introspection refuse too.
/// A store that is briefly unreachable keeps the replica ready: failing
/// readiness at once would take every replica out of the load balancer
/// together at the first database hiccup.
async fn readiness(State(authority): State<Arc<Authority>>) -> Response {
    let (status, ready, store) = match authority.store_health() {
        StoreHealth::Reachable => (StatusCode::OK, "ready", "reachable"),
        StoreHealth::Unreachable => (StatusCode::OK, "ready", "unreachable"),
        StoreHealth::Stale => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", "stale"),
    };
    let (status, ready) = if authority.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (status, ready)
    };
    (status, axum::Json(json!({ "status": ready, "store": store }))).into_response()
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
async fn metadata(State(authority): State<Arc<Authority>>) -> Response {
    let issuer = authority.issuer().trim_end_matches('/');
    axum::Json(json!({
        "issuer": authority.issuer(),
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
        "introspection_endpoint": format!("{issuer}{INTROSPECT_PATH}"),
        // RFC 8414 §2 takes values from the OAuth token endpoint
        // authentication methods registry. A bearer token is also accepted
        // (its client's scopes count), but "bearer" is no registered value.
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint": format!("{issuer}{REVOKE_PATH}"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        // RFC 8414 makes this member required; with no authorization endpoint there are none.
        "response_types_supported": [],
    }))
    .into_response()
}

/// JSON 404 for any other path.
pub async fn not_found() -> Response {
    let body = json!({ "error": "not_found", "error_description": "no such endpoint; see /.well-known/oauth-authorization-server" });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

//! The operational routes, apart from the OAuth ones: liveness and
//! readiness probes, Prometheus metrics, and the OpenAPI document.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::http::method_not_allowed;
use crate::authority::StoreHealth;
use crate::health::{Health, Readiness};

/// Liveness probe.
pub const LIVENESS_PATH: &str = "/health/live";
/// Readiness probe.
pub const READINESS_PATH: &str = "/health/ready";
/// Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
/// The OpenAPI 3.1 description of the HTTP endpoints.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The OpenAPI document, as kept in the repository (`server/api/openapi.json`).
pub const OPENAPI_DOCUMENT: &str = include_str!("../../api/openapi.json");

/// The operational routes.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route(LIVENESS_PATH, get(liveness).fallback(method_not_allowed))
        .route(READINESS_PATH, get(readiness).fallback(method_not_allowed))
        .route(METRICS_PATH, get(metrics).fallback(method_not_allowed))
        .route(OPENAPI_PATH, get(openapi).fallback(method_not_allowed))
        .with_state(health)
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
async fn metrics(State(health): State<Arc<Health>>) -> Response {
    let mut response = health.authority().render_metrics().into_response();
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

/// Readiness: 200 while Tessera can answer correctly, with the store's
/// state; 503 once the store has been out of reach for longer than the
/// staleness window (`--store-staleness`), when issuance and introspection
/// refuse too, and 503 while draining.
async fn readiness(State(health): State<Arc<Health>>) -> Response {
    let store = match health.authority().store_health() {
        StoreHealth::Reachable => "reachable",
        StoreHealth::Unreachable => "unreachable",
        StoreHealth::Stale => "stale",
    };
    let (status, ready) = match health.readiness() {
        Readiness::Ready => (StatusCode::OK, "ready"),
        Readiness::StoreStale => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
        Readiness::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
    };
    (status, axum::Json(json!({ "status": ready, "store": store }))).into_response()
}

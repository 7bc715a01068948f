//! Serving: one listener for the gRPC service and the HTTP shim.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tonic::server::NamedService;

use crate::authority::{Authority, StoreHealth};
use crate::faces::{grpc, http};

/// Every route: the HTTP shim's endpoints, `tessera.v1.TokenService` and the
/// gRPC health service (`grpc.health.v1.Health`). gRPC and HTTP/1.1 share
/// the port; HTTP/2 without TLS is accepted with prior knowledge, which is
/// what gRPC clients send.
///
/// Must be called within a Tokio runtime: it starts the task that keeps the
/// gRPC health status in step with the store.
pub fn app(authority: Arc<Authority>) -> Router {
    let token_service = grpc::TokenService::new(authority.clone()).into_server();
    let grpc_path = format!("/{}/{{*method}}", <grpc::TokenService as ServiceName>::NAME);
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health_path = format!(
        "/{}/{{*method}}",
        <tonic_health::pb::health_server::HealthServer<()> as NamedService>::NAME
    );
    tokio::spawn(report_health(Arc::downgrade(&authority), reporter));
    http::router(authority)
        .route_service(&grpc_path, token_service)
        .route_service(&health_path, health_service)
        .fallback(http::not_found)
}

/// Keeps the gRPC health status in step with readiness: SERVING unless the
/// store has been out of reach for longer than the staleness window (the
/// same rule as the HTTP readiness probe). Reported for the server as a
/// whole (`""`) and for `tessera.v1.TokenService`.
async fn report_health(authority: std::sync::Weak<Authority>, reporter: tonic_health::server::HealthReporter) {
    use tonic_health::ServingStatus;
    let mut reported = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tick.tick().await;
        let Some(authority) = authority.upgrade() else {
            return;
        };
        let status = match authority.store_health() {
            StoreHealth::Stale => ServingStatus::NotServing,
            StoreHealth::Reachable | StoreHealth::Unreachable => ServingStatus::Serving,
        };
        drop(authority);
        if reported != Some(status) {
            reporter.set_service_status("", status).await;
            reporter
                .set_service_status(<grpc::TokenService as ServiceName>::NAME, status)
                .await;
            reported = Some(status);
        }
    }
}

/// Name of the generated service, without naming the generated server type
/// at every use.
trait ServiceName {
    const NAME: &'static str;
}

impl ServiceName for grpc::TokenService {
    const NAME: &'static str =
        <tessera_proto::pb::token_service_server::TokenServiceServer<grpc::TokenService> as NamedService>::NAME;
}

/// Serves until `shutdown` completes, then stops accepting connections and
/// lets requests in flight finish.
///
/// # Errors
/// When the listener fails.
pub async fn run(
    authority: Arc<Authority>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(authority).into_make_service_with_connect_info::<SocketAddr>();
    // Small answers must leave at once: with Nagle's algorithm on, each one
    // waits for the client's delayed ACK, about 40 ms (found by the benchmark).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

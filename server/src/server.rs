//! Serving: one listener for the gRPC service and the HTTP shim.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tonic::server::NamedService;

use crate::authority::Authority;
use crate::faces::{grpc, http};

/// Every route: the HTTP shim's endpoints and `tessera.v1.TokenService`.
/// gRPC and HTTP/1.1 share the port; HTTP/2 without TLS is accepted with
/// prior knowledge, which is what gRPC clients send.
pub fn app(authority: Arc<Authority>) -> Router {
    let token_service = grpc::TokenService::new(authority.clone()).into_server();
    let grpc_path = format!("/{}/{{*method}}", <grpc::TokenService as ServiceName>::NAME);
    http::router(authority)
        .route_service(&grpc_path, token_service)
        .fallback(http::not_found)
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

//! Serving: one listener (plain or TLS) for the gRPC services and the HTTP shim.
//!
//! The accept loop is ours rather than `axum::serve`, for what a token
//! service on every request path needs: TLS with reloadable certificates,
//! a bound on connections, header and handshake timeouts, per-connection
//! stream limits, and a graceful drain with a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::server::NamedService;
use tracing::{debug, info, warn};

use crate::authority::Authority;
use crate::connection::{self, ConnectionState, DrainPhase, PerAddress, Timeouts};
use crate::faces::{admin_grpc, admin_http, grpc, http, ops};
use crate::health::Health;
use crate::request_id::RequestId;
use crate::tls::{PeerCertificate, TlsReloader};
use tessera_proto::admin::v1::admin_service_server::AdminServiceServer;

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TLS on the listener; `None` serves plain TCP (HTTP/1.1 and HTTP/2
    /// with prior knowledge).
    pub tls: Option<Arc<TlsReloader>>,
    /// Open connections at most; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests in flight on one HTTP/2 connection; more are refused at
    /// once (`REFUSED_STREAM`, which clients may retry), not queued.
    pub max_connection_streams: u32,
    /// Time for a TLS handshake, for an HTTP/1.1 request's headers, and
    /// for a new connection's first request.
    pub header_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
    /// Connections one peer address may hold at once; 0 for no bound.
    pub max_connections_per_address: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub drain_timeout: Duration,
    /// On shutdown, how long to keep accepting and answering, telling every
    /// client to reconnect, before the listener closes (see [`crate::connection`]).
    pub drain_delay: Duration,
    /// Whether this listener serves the admin API (`/admin/v1/`,
    /// `tessera.admin.v1.AdminService`); without it, those paths are 404.
    pub admin_api: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            max_connections: 10_000,
            max_connection_streams: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections_per_address: 1_000,
            drain_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            admin_api: true,
        }
    }
}

/// Every route: the HTTP shim's endpoints, `tessera.v1.TokenService`, the
/// gRPC health service (`grpc.health.v1.Health`), gRPC reflection, and the
/// admin API (JSON under `/admin/v1/` and `tessera.admin.v1.AdminService`).
/// Every request gets an `x-request-id`, also carried by its log lines.
///
/// Must be called within a Tokio runtime: it starts the task that keeps the
/// gRPC health status in step with readiness.
pub fn app(health: &Arc<Health>) -> Router {
    app_with(health, true)
}

/// [`app`], with or without the admin API: a listener given to the admin
/// API alone (`--admin-listen`) leaves it out of the main one.
pub fn app_with(health: &Arc<Health>, admin_api: bool) -> Router {
    let authority = health.authority().clone();
    let token_service = grpc::TokenService::new(authority.clone()).into_server();
    let (reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(Health::report(
        Arc::downgrade(health),
        reporter,
        &[<grpc::TokenService as ServiceName>::NAME],
    ));
    let mut router = http::router(authority.clone())
        .merge(ops::router(health.clone()))
        .route_service(
            &grpc_route(<grpc::TokenService as ServiceName>::NAME),
            GrpcDeadline(token_service),
        )
        .route_service(
            &grpc_route(<tonic_health::pb::health_server::HealthServer<()> as NamedService>::NAME),
            health_service,
        );
    // Both reflection versions: grpcurl before 1.8.8 and many tools speak only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tessera_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => {
            let v1_name = <tonic_reflection::server::v1::ServerReflectionServer<()> as NamedService>::NAME;
            let v1alpha_name = <tonic_reflection::server::v1alpha::ServerReflectionServer<()> as NamedService>::NAME;
            router = router
                .route_service(&grpc_route(v1_name), v1)
                .route_service(&grpc_route(v1alpha_name), v1alpha);
        }
        (Err(e), _) | (_, Err(e)) => warn!(error = %e, "gRPC reflection unavailable"),
    }
    if admin_api {
        let admin_name = <AdminServiceServer<admin_grpc::AdminGrpc> as NamedService>::NAME;
        router = router.merge(admin_http::router(authority.clone())).route_service(
            &grpc_route(admin_name),
            GrpcDeadline(admin_grpc::AdminGrpc::new(authority).into_server()),
        );
    }
    router.fallback(http::not_found)
}

fn grpc_route(service: &str) -> String {
    format!("/{service}/{{*method}}")
}

/// Honours the caller's `grpc-timeout`: past it the caller gets
/// DEADLINE_EXCEEDED at once, as gRPC specifies, instead of an answer it no
/// longer waits for. Work already handed to a hashing thread still finishes
/// and keeps its slot until then (docs/THREATS.md, rows B-07 and H-04).
#[derive(Clone)]
struct GrpcDeadline<S>(S);

/// `grpc-timeout`: at most 8 digits and a unit (gRPC over HTTP/2 spec).
fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(amount.checked_mul(3600)?),
        b"M" => Duration::from_secs(amount.checked_mul(60)?),
        b"S" => Duration::from_secs(amount),
        b"m" => Duration::from_millis(amount),
        b"u" => Duration::from_micros(amount),
        b"n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

impl<S, B> tower::Service<::http::Request<B>> for GrpcDeadline<S>
where
    S: tower::Service<
            ::http::Request<B>,
            Response = ::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Send,
    S::Future: Send + 'static,
{
    type Response = ::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    /// The inner future as is when the caller set no deadline: the common
    /// case pays no allocation.
    type Future = futures_util::future::Either<
        S::Future,
        std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>,
    >;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: ::http::Request<B>) -> Self::Future {
        let deadline = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(|v| parse_grpc_timeout(v.as_bytes()));
        let answer = self.0.call(request);
        let Some(deadline) = deadline else {
            return futures_util::future::Either::Left(answer);
        };
        futures_util::future::Either::Right(Box::pin(async move {
            match tokio::time::timeout(deadline, answer).await {
                Ok(answered) => answered,
                Err(_) => Ok(tonic::Status::deadline_exceeded(
                    "the call's deadline passed before Tessera could answer",
                )
                .into_http()),
            }
        }))
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

/// A connection silent for 60 s is probed every 10 s, and closed after 3
/// unanswered probes: a vanished client's connection (and its slot under
/// `--max-connections`) is freed within 90 s.
const TCP_KEEPALIVE: socket2::TcpKeepalive = socket2::TcpKeepalive::new()
    .with_time(Duration::from_secs(60))
    .with_interval(Duration::from_secs(10))
    .with_retries(3);

/// Serves until `shutdown` completes; then reports NOT_SERVING, keeps
/// serving for the drain delay while asking every client to reconnect, stops
/// accepting connections, and lets requests in flight (queued argon2 work
/// included) finish within the drain deadline. [`crate::connection`] says why.
///
/// # Errors
/// When the listener fails.
pub async fn run(
    authority: Arc<Authority>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let health = Health::new(authority);
    let app = app_with(&health, options.admin_api);
    let builder = connection_builder(&options);
    let (phase, _) = tokio::sync::watch::channel(DrainPhase::Serving);
    let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let max_connections = options.max_connections.max(1);
    // Until shutdown, then for the drain delay: accept.
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accepting_until: Option<tokio::time::Instant> = None;
    let context = ConnectionContext {
        app,
        health: health.clone(),
        builder,
        phase: phase.clone(),
        tls: options.tls.clone(),
        handshake_timeout: options.header_timeout,
        timeouts: Timeouts {
            first_request: options.header_timeout,
            idle: options.idle_timeout,
        },
        per_address: PerAddress::new(options.max_connections_per_address),
    };
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown, if accepting_until.is_none() => {
                accepting_until = Some(begin_drain(&health, &phase, options.drain_delay));
                continue;
            }
            () = until(accepting_until) => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown, if accepting_until.is_none() => {
                accepting_until = Some(begin_drain(&health, &phase, options.drain_delay));
                continue;
            }
            () = until(accepting_until) => break,
        };
        spawn_connection(&context, tcp, peer, Some(permit));
    }
    if accepting_until.is_none() {
        begin_drain(&health, &phase, Duration::ZERO);
    }
    take_backlog(listener, &context, &connections);
    finish_in_flight(&options, &phase, &connections, max_connections).await;
    Ok(())
}

/// HTTP/1.1 and HTTP/2 settings of every connection.
fn connection_builder(options: &ServeOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.max_connection_streams)
        .max_header_list_size(16 * 1024)
        // Rapid-reset floods (CVE-2023-44487) end the connection (docs/THREATS.md, row H-03).
        .max_pending_accept_reset_streams(Some(20));
    // Dead peers are found by TCP keep-alive, set on each socket, not by
    // HTTP/2 PINGs: with PINGs on, hyper reads the clock and takes a lock on
    // every frame received, 2 µs of a 48 µs warm issuance (BENCHMARKS.md).
    builder
}

/// Serves the connections the kernel completed but the loop has not
/// accepted yet: they would be reset when the listener closes, with a
/// request perhaps already sent on them. Takes them all, then the listener
/// closes at once. (Asked of the socket itself: tokio's accept answers from
/// readiness events, which may not have arrived for the last few.)
fn take_backlog(listener: TcpListener, context: &ConnectionContext, connections: &Arc<Semaphore>) {
    match listener.into_std() {
        Ok(listener) => {
            while let Ok((tcp, peer)) = listener.accept() {
                let Ok(tcp) = tcp
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::TcpStream::from_std(tcp))
                else {
                    continue;
                };
                let permit = connections.clone().try_acquire_owned().ok();
                spawn_connection(context, tcp, peer, permit);
            }
        }
        Err(e) => warn!(error = %e, "cannot take the last pending connections"),
    }
}

/// Lets requests in flight finish, within the drain deadline: every
/// connection is asked to close once idle, and this returns when all have
/// (all their permits are back) or the deadline passes.
async fn finish_in_flight(
    options: &ServeOptions,
    phase: &tokio::sync::watch::Sender<DrainPhase>,
    connections: &Semaphore,
    max_connections: usize,
) {
    info!(
        deadline_secs = options.drain_timeout.as_secs(),
        "shutting down: not accepting connections, finishing requests in flight"
    );
    let every_connection_closed = async {
        if !options.drain_delay.is_zero() {
            // Connections accepted last get a moment to send their request,
            // which is then answered with `Connection: close`.
            tokio::time::sleep(DRAIN_SETTLE.min(options.drain_delay)).await;
        }
        phase.send_replace(DrainPhase::Closing);
        let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
        let _ = connections.acquire_many(all).await;
    };
    match tokio::time::timeout(options.drain_timeout, every_connection_closed).await {
        Ok(()) => info!("every request in flight finished"),
        Err(_) => warn!("drain deadline passed; closing the remaining connections"),
    }
}

/// What every connection task needs from the accept loop.
struct ConnectionContext {
    app: Router,
    health: Arc<Health>,
    builder: auto::Builder<TokioExecutor>,
    phase: tokio::sync::watch::Sender<DrainPhase>,
    tls: Option<Arc<TlsReloader>>,
    handshake_timeout: Duration,
    timeouts: Timeouts,
    per_address: Arc<PerAddress>,
}

/// Serves one accepted connection on its own task, holding `permit` (its
/// place under `--max-connections`) until it closes.
fn spawn_connection(
    context: &ConnectionContext,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let Some(address_slot) = context.per_address.admit(peer.ip()) else {
        debug!(%peer, "closing a connection: its address holds its share of --max-connections already");
        return;
    };
    // Small answers must leave at once: with Nagle's algorithm on, each one
    // waits for the client's delayed ACK, about 40 ms (found by the benchmark).
    if let Err(e) = tcp.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&TCP_KEEPALIVE) {
        debug!(error = %e, "cannot set TCP keep-alive");
    }
    let state = Arc::new(ConnectionState::default());
    let service = ConnectionService {
        app: context.app.clone(),
        health: context.health.clone(),
        peer,
        certificate: None,
        state: state.clone(),
    };
    let builder = context.builder.clone();
    let phase = context.phase.subscribe();
    let tls = context.tls.as_ref().map(|tls| tls.handshake());
    let handshake_timeout = context.handshake_timeout;
    let timeouts = context.timeouts;
    tokio::spawn(async move {
        let _permit = permit;
        let _address_slot = address_slot;
        let Some(handshake) = tls else {
            let connection = builder.serve_connection(TokioIo::new(tcp), service.into_hyper());
            connection::drive(connection, state, phase, timeouts).await;
            return;
        };
        let stream = match tokio::time::timeout(handshake_timeout, handshake.acceptor().accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => return debug!(%peer, "TLS handshake timed out"),
        };
        let certificate = handshake.peer_certificate(stream.get_ref().1);
        let service = ConnectionService { certificate, ..service };
        let connection = builder.serve_connection(TokioIo::new(stream), service.into_hyper());
        connection::drive(connection, state, phase, timeouts).await;
    });
}

/// Completes at `deadline`; never without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// After the drain delay, how long connections accepted last may take to
/// send their request before idle connections are closed.
const DRAIN_SETTLE: Duration = Duration::from_millis(500);

/// Starts draining: readiness and health turn negative at once, and every
/// connection is asked to reconnect. Returns when to stop accepting.
fn begin_drain(
    health: &Health,
    phase: &tokio::sync::watch::Sender<DrainPhase>,
    delay: Duration,
) -> tokio::time::Instant {
    health.begin_draining();
    if !delay.is_zero() {
        phase.send_replace(DrainPhase::Draining);
        info!(
            delay_secs = delay.as_secs(),
            "draining: still answering, asking clients to reconnect elsewhere"
        );
    }
    tokio::time::Instant::now() + delay
}

/// What a connection knows about itself, handed to every request on it.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_per_the_spec() {
        assert_eq!(parse_grpc_timeout(b"50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_grpc_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in [&b""[..], b"m", b"123456789m", b"5x", b"-5m", b"5 m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn a_call_past_its_grpc_timeout_is_answered_deadline_exceeded() {
        let slow = tower::service_fn(|_request: ::http::Request<()>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, std::convert::Infallible>(::http::Response::new(tonic::body::Body::empty()))
        });
        let request = ::http::Request::builder()
            .header("grpc-timeout", "20m")
            .body(())
            .unwrap();
        let started = std::time::Instant::now();
        let response = tower::ServiceExt::oneshot(GrpcDeadline(slow), request).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        // DEADLINE_EXCEEDED is code 4.
        assert_eq!(response.headers().get("grpc-status").unwrap(), "4");
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

#[derive(Clone)]
struct ConnectionService {
    app: Router,
    health: Arc<Health>,
    peer: SocketAddr,
    certificate: Option<PeerCertificate>,
    state: Arc<ConnectionState>,
}

impl ConnectionService {
    fn into_hyper(
        self,
    ) -> impl hyper::service::Service<
        ::http::Request<Incoming>,
        Response = Response,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<Response, std::convert::Infallible>> + Send + 'static,
    > + Clone
    + Send
    + 'static {
        hyper::service::service_fn(move |mut request: ::http::Request<Incoming>| {
            let version = request.version();
            let in_flight = self.state.request_started(version);
            request.extensions_mut().insert(ConnectInfo(self.peer));
            if let Some(certificate) = &self.certificate {
                request.extensions_mut().insert(certificate.clone());
            }
            // Each request is named here, once, rather than by a router
            // middleware (which boxes and clones per request): the id goes in
            // an `x-request-id` header and in every audit line written while
            // answering (see [`RequestId`]). A caller's own id is not trusted.
            let id = RequestId::next();
            let answer = id.scope(tower::ServiceExt::oneshot(self.app.clone(), request));
            // Draining: an HTTP/1.1 client closes the connection itself after
            // this complete answer, instead of the server closing it under a
            // request being sent (see `crate::connection`). Read as the
            // request arrives: a request already in hand when draining
            // starts is answered as usual, and the next one is told.
            let close_after = version <= ::http::Version::HTTP_11 && self.health.is_draining();
            async move {
                let mut response = answer.await?;
                drop(in_flight);
                if let Ok(value) = HeaderValue::from_str(id.as_str()) {
                    response.headers_mut().insert(X_REQUEST_ID, value);
                }
                if close_after {
                    response
                        .headers_mut()
                        .insert(::http::header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok(response)
            }
        })
    }
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

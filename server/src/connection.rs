//! One connection's life: closed when it sends nothing, when it idles, and
//! when the server drains.
//!
//! # Slots
//!
//! Every open connection holds one of `--max-connections` slots, so a
//! connection that sends nothing must not hold one for long: one that has not
//! sent a whole first request within the first-request timeout (10 s), or has
//! had nothing in flight for the idle timeout (a minute), is closed
//! gracefully (HTTP/2 gets a GOAWAY). One address may hold at most
//! `--max-connections-per-address` slots, so one host cannot take them all.
//!
//! # Shutting down without losing a request
//!
//! A client on a keep-alive connection may be writing its next request at
//! the instant the server closes that connection; it then sees "server
//! disconnected without sending a response", and a POST is not retried. So
//! shutdown runs in phases, each connection told in the way its protocol
//! allows:
//!
//! 1. [`DrainPhase::Draining`], for `--drain-delay`: readiness is already
//!    503 and gRPC health NOT_SERVING, so load balancers stop sending new
//!    work, but the listener stays open and every request is answered.
//!    HTTP/1.1 answers carry `Connection: close`, so each client closes its
//!    connection itself, after a complete answer. HTTP/2 connections get a
//!    GOAWAY: the client finishes what it sent and opens a new connection
//!    for the rest.
//! 2. [`DrainPhase::Closing`]: the listener is closed (a refused connection
//!    is the load balancer's cue, and no request was sent on it). After a
//!    short settle time, for connections accepted last to send their request,
//!    every connection is shut down gracefully: idle ones close, busy ones
//!    finish their request first, within `--drain-timeout`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Where shutdown stands, shared by the accept loop and every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainPhase {
    /// Serving normally.
    Serving,
    /// Still accepting and answering, asking every client to reconnect.
    Draining,
    /// Not accepting; connections close once their requests are answered.
    Closing,
}

/// How long connections may stay silent.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accepting a connection to its first request.
    pub first_request: Duration,
    /// With no request in flight, between requests.
    pub idle: Duration,
}

/// What one connection's request handling tells the task that drives it.
#[derive(Debug)]
pub struct ConnectionState {
    http2: AtomicBool,
    noticed: Notify,
    opened: Instant,
    /// Requests received but not yet answered.
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` of the last request's start or end; 0
    /// while none has arrived.
    last_active_ms: AtomicU64,
}

impl Default for ConnectionState {
    fn default() -> Self {
        Self {
            http2: AtomicBool::new(false),
            noticed: Notify::new(),
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
        }
    }
}

impl ConnectionState {
    /// Called as each request arrives; the returned guard marks it answered
    /// when dropped. Records that the connection speaks HTTP/2, which can be
    /// told to go away without racing a request.
    pub fn request_started(self: &Arc<Self>, version: http::Version) -> RequestGuard {
        if version == http::Version::HTTP_2
            && !self.http2.load(Ordering::Relaxed)
            && !self.http2.swap(true, Ordering::AcqRel)
        {
            self.noticed.notify_one();
        }
        // Only the end of a request is timed: while one is in flight the
        // connection is not silent, whenever it began.
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.last_active_ms.store(ms, Ordering::Release);
    }

    fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Acquire)
    }

    /// When the connection will have been silent too long, if nothing
    /// happens meanwhile. While a request is in flight, when to look again:
    /// requests ending do not wake the task (that would cost every request
    /// a wake-up), so it looks once per idle period.
    fn silent_deadline(&self, timeouts: Timeouts) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + timeouts.idle;
        }
        match self.last_active_ms.load(Ordering::Acquire) {
            0 => self.opened + timeouts.first_request,
            ms => self.opened + Duration::from_millis(ms) + timeouts.idle,
        }
    }
}

/// Marks a request answered (or abandoned) when dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnectionState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Open connections per peer address, bounded: one host (or a flood from
/// one address) cannot take every slot. Behind a proxy that pools
/// connections from few addresses, raise the bound or turn it off (0).
#[derive(Debug)]
pub struct PerAddress {
    limit: usize,
    open: DashMap<IpAddr, usize>,
}

impl PerAddress {
    /// At most `limit` connections per address; 0 for no bound.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: DashMap::new(),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it holds
    /// its share already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        if self.limit > 0 {
            let mut open = self.open.entry(ip).or_insert(0);
            if *open >= self.limit {
                return None;
            }
            *open += 1;
        }
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One connection's place in [`PerAddress`], given back when dropped.
#[derive(Debug)]
pub struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if self.table.limit > 0 {
            self.table.open.remove_if_mut(&self.ip, |_, open| {
                *open = open.saturating_sub(1);
                *open == 0
            });
        }
    }
}

/// A connection that can be asked to finish gracefully (hyper-util's
/// `auto::Connection` and its upgradeable form).
pub trait GracefulConnection: Future {
    /// Starts a graceful shutdown: HTTP/2 sends GOAWAY, HTTP/1.1 closes when idle.
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, E, B> GracefulConnection for hyper_util::server::conn::auto::Connection<'_, I, S, E>
where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper_util::server::conn::auto::Connection::graceful_shutdown(self);
    }
}

/// Drives one connection to its end, shutting it down gracefully when it
/// has been silent too long (see [`Timeouts`]) or when the phase says so:
/// HTTP/2 from [`DrainPhase::Draining`] on, everything at
/// [`DrainPhase::Closing`] (or if the accept loop is gone).
pub async fn drive<C: GracefulConnection>(
    connection: C,
    state: Arc<ConnectionState>,
    mut phase: watch::Receiver<DrainPhase>,
    timeouts: Timeouts,
) {
    let mut connection = pin!(connection);
    let mut shutting_down = false;
    let mut loop_gone = false;
    loop {
        let silent_until = state.silent_deadline(timeouts);
        if !shutting_down {
            let close = loop_gone
                || silent_until <= Instant::now()
                || match *phase.borrow_and_update() {
                    DrainPhase::Serving => false,
                    DrainPhase::Draining => state.is_http2(),
                    DrainPhase::Closing => true,
                };
            if close {
                connection.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
        let silent = tokio::time::sleep_until(silent_until);
        tokio::select! {
            _ = connection.as_mut() => return,
            changed = phase.changed(), if !shutting_down => loop_gone = changed.is_err(),
            () = state.noticed.notified(), if !shutting_down => {}
            () = silent, if !shutting_down => {}
        }
    }
}

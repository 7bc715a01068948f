//! Shutting down without losing a request.
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
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, watch};

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

/// What one connection's request handling tells the task that drives it.
#[derive(Debug, Default)]
pub struct ConnectionState {
    http2: AtomicBool,
    noticed: Notify,
}

impl ConnectionState {
    /// Called for each request: records that the connection speaks HTTP/2,
    /// which can be told to go away without racing a request.
    pub fn saw_request(&self, version: http::Version) {
        if version == http::Version::HTTP_2
            && !self.http2.load(Ordering::Relaxed)
            && !self.http2.swap(true, Ordering::AcqRel)
        {
            self.noticed.notify_one();
        }
    }

    fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Acquire)
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

/// Drives one connection to its end, shutting it down gracefully when the
/// phase says so: HTTP/2 from [`DrainPhase::Draining`] on, everything at
/// [`DrainPhase::Closing`] (or if the accept loop is gone).
pub async fn drive<C: GracefulConnection>(
    connection: C,
    state: Arc<ConnectionState>,
    mut phase: watch::Receiver<DrainPhase>,
) {
    let mut connection = pin!(connection);
    let mut shutting_down = false;
    let mut loop_gone = false;
    loop {
        if !shutting_down {
            let close = loop_gone
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
        tokio::select! {
            _ = connection.as_mut() => return,
            changed = phase.changed(), if !shutting_down => loop_gone = changed.is_err(),
            () = state.noticed.notified(), if !shutting_down => {}
        }
    }
}

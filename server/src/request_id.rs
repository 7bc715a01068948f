//! Request ids: one per request, in the `x-request-id` response header and
//! in every audit line written while answering it.
//!
//! The id lives in a task-local rather than a tracing span: a span costs an
//! allocation and field formatting on every request, and its context on
//! every log line, a measurable share of a warm issuance (BENCHMARKS.md).

use std::fmt;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

tokio::task_local! {
    static CURRENT: RequestId;
}

/// Sixteen lowercase hex digits: a random per-process prefix and a counter,
/// so ids are unique across replicas and restarts without a random draw per
/// request. Ids identify; they are not secrets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

fn hex(value: u32, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().enumerate().take(8) {
        *slot = DIGITS[((value >> (28 - 4 * i)) & 0xf) as usize];
    }
}

impl RequestId {
    /// The next id.
    pub fn next() -> Self {
        static PREFIX: OnceLock<u32> = OnceLock::new();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 4];
            let _ = aws_lc_rs::rand::fill(&mut bytes);
            u32::from_be_bytes(bytes)
        });
        let mut id = [0u8; 16];
        hex(prefix, &mut id[..8]);
        hex(COUNTER.fetch_add(1, Ordering::Relaxed), &mut id[8..]);
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or("????????????????")
    }

    /// Runs `future` with this id as the current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The current request's id, for a log field (`-` outside a request).
    pub fn current() -> Current {
        Current
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Displays the current request's id.
#[derive(Debug, Clone, Copy)]
pub struct Current;

impl fmt::Display for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        CURRENT
            .try_with(|id| f.write_str(id.as_str()))
            .unwrap_or_else(|_| f.write_str("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (RequestId::next(), RequestId::next());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[tokio::test]
    async fn the_current_id_is_the_scopes_and_a_dash_outside() {
        let id = RequestId::next();
        let inside = id.scope(async { RequestId::current().to_string() }).await;
        assert_eq!(inside, id.as_str());
        assert_eq!(RequestId::current().to_string(), "-");
    }
}

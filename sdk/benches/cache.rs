//! The cached `token()` hot path, from one thread and from eight:
//! `cargo bench -p tessera-sdk --bench cache`.

// Setup that fails should stop the benchmark: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_sdk::{CachePolicy, Error, FetchToken, Token, TokenRequest, TokenSource};

/// Hands out one fixed token: the benchmark measures the cache, not a server.
struct Fixed;

impl FetchToken for Fixed {
    async fn fetch(&self, _request: &TokenRequest) -> Result<Token, Error> {
        Ok(Token::new(
            "eyJhbGciOiJFUzI1NiJ9.e30.signature",
            Duration::from_secs(3600),
        ))
    }
}

/// Polls `token()` once: with a valid token cached it completes at once.
fn cached(source: &TokenSource<Fixed>) -> tessera_sdk::CachedToken {
    let mut future = pin!(source.token());
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(token) => token.unwrap(),
        Poll::Pending => panic!("the hot path awaited"),
    }
}

fn hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = TokenSource::new(Fixed, TokenRequest::new(), CachePolicy::default());
    runtime.block_on(source.token()).unwrap();
    c.bench_function("token(), cached, 1 thread", |b| b.iter(|| black_box(cached(&source))));
    // 8 threads on however many cores there are: the figure is wall time per
    // call across all threads. Flat scaling shows as (1-thread time) / cores.
    c.bench_function("token(), cached, 8 threads (aggregate wall time per call)", |b| {
        b.iter_custom(|iterations| {
            let per_thread = iterations.div_ceil(8);
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..8 {
                    scope.spawn(|| {
                        for _ in 0..per_thread {
                            black_box(cached(&source));
                        }
                    });
                }
            });
            // Scaled to exactly `iterations` calls.
            start.elapsed().mul_f64(iterations as f64 / (per_thread * 8) as f64)
        })
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);

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
fn cached(source: &TokenSource<Fixed>) -> tessera_sdk::AccessToken {
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

/// An ES256 key pair made here, and a token signed with it the way Tessera
/// signs (`typ: at+jwt`, the claims of RFC 9068), so the benchmark needs no
/// server crate.
fn signed_token() -> (tessera_sdk::PublicJwk, String) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    // Uncompressed point: 0x04, then x and y, 32 bytes each.
    let point = pair.public_key().as_ref();
    let jwk = tessera_sdk::PublicJwk::es256(
        "bench",
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65]),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("bench".into());
    header.typ = Some("at+jwt".into());
    let claims = serde_json::json!({
        "iss": "https://tessera.internal", "sub": "billing", "client_id": "billing", "aud": "https://ledger",
        "scope": "invoices:read", "exp": now + 3600, "iat": now, "nbf": now, "jti": "Xk3V9qLr2mN8pQ4sT6wY1z",
    });
    let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    (jwk, jsonwebtoken::encode(&header, &claims, &key).unwrap())
}

fn verifier(c: &mut Criterion) {
    let (jwk, token) = signed_token();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The client is never called: the key is given up front.
    let client = runtime
        .block_on(async {
            tessera_sdk::TokenClient::builder("http://127.0.0.1:9")
                .client_secret("rs", "unused")
                .build()
        })
        .unwrap();
    let verifier = tessera_sdk::Verifier::builder(client, "https://tessera.internal", "https://ledger")
        .keys(&[jwk])
        .build();
    runtime.block_on(verifier.verify(&token)).unwrap();
    c.bench_function("Verifier::verify, ES256, key cached", |b| {
        b.iter(|| runtime.block_on(verifier.verify(black_box(&token))).unwrap())
    });
}

criterion_group!(benches, hot_path, verifier);
criterion_main!(benches);

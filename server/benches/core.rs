//! Micro-benchmarks of the core's hot paths, in process (no network):
//! `cargo bench -p tessera-server --bench core`.

// Setup that fails should stop the benchmark: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Validation, decode};
use tessera_server::admin::{self, NewClient};
use tessera_server::authority::secret::{ClientSecret, hash_secret, verify_secret};
use tessera_server::authority::{
    Authority, AuthorityConfig, CLIENT_CREDENTIALS, PresentedCredentials, ThrottleConfig, TokenRequest,
};
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::keys::{KeyAlgorithm, SigningKey};
use tessera_server::store::SqliteStore;

fn claims() -> serde_json::Value {
    let now = SystemClock.now();
    serde_json::json!({
        "iss": "https://tessera.internal", "sub": "billing", "client_id": "billing", "aud": "https://ledger.internal",
        "scope": "invoices:read invoices:write", "exp": now + 3600, "iat": now, "nbf": now, "jti": "Xk3V9qLr2mN8pQ4sT6wY1z",
    })
}

fn signing(c: &mut Criterion) {
    let claims = claims();
    for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256] {
        let key = SigningKey::from_record(&SigningKey::generate(alg, 0).unwrap()).unwrap();
        c.bench_function(&format!("mint {}", alg.jws_name()), |b| {
            b.iter(|| key.sign_jwt(black_box(&claims)).unwrap())
        });
        let token = key.sign_jwt(&claims).unwrap();
        let mut validation = Validation::new(alg.jwt_algorithm());
        validation.validate_aud = false;
        c.bench_function(&format!("verify {}", alg.jws_name()), |b| {
            b.iter(|| decode::<serde_json::Value>(black_box(&token), key.decoding_key(), &validation).unwrap())
        });
    }
}

struct Core {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    authority: Authority,
    secret: ClientSecret,
}

fn core() -> Core {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (authority, secret) = runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).await.unwrap());
        let now = SystemClock.now();
        let new = |id: &str, scope: &str| NewClient {
            client_id: id.into(),
            scopes: vec![scope.into()],
            audiences: vec![],
            token_ttl: None,
            bind_to_certificate: false,
        };
        let secret = admin::create_client(store.as_ref(), new("billing", "invoices:read"), now)
            .await
            .unwrap();
        let config = AuthorityConfig {
            issuer: "https://tessera.internal".into(),
            default_token_ttl: 3600,
            max_token_ttl: 86_400,
            signing_alg: KeyAlgorithm::Es256,
            hashing_permits: 2,
            hashing_wait: Duration::from_secs(5),
            key_rotation: None,
            key_publish_ahead: Duration::from_secs(600),
            throttle: ThrottleConfig::default(),
            require_audience: false,
            max_assertion_lifetime_secs: 3600,
            federation: Default::default(),
            client_certificates: false,
            custody: std::sync::Arc::new(tessera_server::keys::KeyCustody::clear()),
        };
        (
            Authority::new(config, store, Arc::new(SystemClock)).await.unwrap(),
            secret,
        )
    });
    Core {
        _dir: dir,
        runtime,
        authority,
        secret,
    }
}

fn request(secret: &ClientSecret) -> TokenRequest {
    TokenRequest {
        grant_type: Some(CLIENT_CREDENTIALS.into()),
        credentials: PresentedCredentials {
            client_id: Some("billing".into()),
            client_secret: Some(secret.clone()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn authority(c: &mut Criterion) {
    let core = core();
    let warm = request(&core.secret);
    // The first call runs argon2 and remembers the secret; later ones do not.
    let token = core
        .runtime
        .block_on(core.authority.issue(warm.clone()))
        .unwrap()
        .access_token;
    c.bench_function("issue, warm client (remembered secret + ES256)", |b| {
        b.iter(|| {
            core.runtime
                .block_on(core.authority.issue(black_box(warm.clone())))
                .unwrap()
        })
    });
    core.runtime
        .block_on(core.authority.active_token(token.expose()))
        .unwrap();
    c.bench_function("active_token, verified before (hash lookup)", |b| {
        b.iter(|| {
            core.runtime
                .block_on(core.authority.active_token(black_box(token.expose())))
                .unwrap()
                .unwrap()
        })
    });
}

fn argon2(c: &mut Criterion) {
    let secret = ClientSecret::generate();
    let phc = hash_secret(&secret).unwrap();
    let mut group = c.benchmark_group("argon2id m=19456 t=2 p=1");
    group.sample_size(20);
    group.bench_function("verify", |b| {
        b.iter(|| assert!(verify_secret(black_box(&phc), &secret)))
    });
    group.finish();
}

criterion_group!(benches, signing, authority, argon2);
criterion_main!(benches);

//! `tessera-bench federated`: warm issuance when the credential is the
//! workload's platform token, against the same-run signing ceiling.
//!
//! What is new on this path is one signature verification per request: the
//! platform token's (RS256 for a Kubernetes service-account token, ES256 for
//! a SPIRE JWT-SVID), checked against the trusted issuer's key held in
//! memory. A platform token is reused until it nears expiry, so the calls
//! here reuse one token each, as workloads do; Tessera remembers a token
//! whose signature verified (by its SHA-256, while the trust and its keys
//! stay the same), so a reused token costs what a warm secret does. The
//! first use of each token pays the signature check: the rows with fresh
//! tokens measure that, each token presented once. The client secret's row
//! is measured in the same rounds for comparison.

use std::sync::Arc;

use procs::{BENCH_ISSUER, Spawned};
use run::{Row, print_run_table};
use tessera_server::admin::{self, NewTrust};
use tessera_server::store::{self, JwksSource};
use tessera_testkit::platform::PlatformIssuer;

use crate::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_SPIFFE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
const K8S_SUBJECT: &str = "system:serviceaccount:bench:bench";
const SPIFFE_ID: &str = "spiffe://example.org/ns/bench/sa/bench";

pub(crate) async fn run(common: Common, rounds: usize) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 0).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let kubernetes = PlatformIssuer::kubernetes(dir.path());
    let spire = PlatformIssuer::spire(dir.path());
    trust(setup.store_url(), &kubernetes, &spire).await?;
    // Tokens live an hour: longer than every round together.
    let k8s_token = Arc::new(vec![kubernetes.sign(&kubernetes.kubelet_claims(
        "bench",
        "bench",
        BENCH_ISSUER,
        3600,
    ))]);
    let svid = Arc::new(vec![spire.sign(&spire.svid_claims(SPIFFE_ID, BENCH_ISSUER, 3600))]);
    let issuer_args: &[&str] = if setup.on_postgres() {
        &[]
    } else {
        &["--issuer", BENCH_ISSUER]
    };
    eprintln!("signing {FRESH} fresh tokens of each kind");
    let fresh_k8s = fresh(FRESH, || {
        kubernetes.sign(&kubernetes.kubelet_claims("bench", "bench", BENCH_ISSUER, 3600))
    });
    let fresh_svids = fresh(FRESH, || spire.sign(&spire.svid_claims(SPIFFE_ID, BENCH_ISSUER, 3600)));
    let mut rows = [
        Row::new("IssueToken, client secret (warm) vs signing ceiling"),
        Row::new("IssueToken, Kubernetes token (RS256), reused vs signing ceiling"),
        Row::new("IssueToken, JWT-SVID (ES256), reused vs signing ceiling"),
        Row::new("IssueToken, Kubernetes token (RS256), each new vs signing ceiling"),
        Row::new("IssueToken, JWT-SVID (ES256), each new vs signing ceiling"),
    ];
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}");
        let tessera = setup.start(&common, issuer_args).await?;
        let secret = Call::Issue {
            client_id: "bench".into(),
            secret: setup.secret.clone(),
        };
        let assertions = |pool: &Arc<Vec<String>>, assertion_type, once| Call::IssueWithAssertions {
            client_id: "bench".into(),
            assertion_type,
            pool: pool.clone(),
            next: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            once,
        };
        let ours = [
            measure(&tessera, &common, secret, u64::MAX).await?,
            measure(&tessera, &common, assertions(&k8s_token, JWT_BEARER, false), u64::MAX).await?,
            measure(&tessera, &common, assertions(&svid, JWT_SPIFFE, false), u64::MAX).await?,
            measure(
                &tessera,
                &common,
                assertions(&fresh_k8s, JWT_BEARER, true),
                FRESH as u64,
            )
            .await?,
            measure(
                &tessera,
                &common,
                assertions(&fresh_svids, JWT_SPIFFE, true),
                FRESH as u64,
            )
            .await?,
        ];
        drop(tessera);
        let crypto = Spawned::ceiling(&common, ceiling::Mode::Crypto).await?;
        let fixed = || Call::Issue {
            client_id: "x".into(),
            secret: "x".into(),
        };
        for (row, ours) in rows.iter_mut().zip(ours) {
            let ceiling = measure(&crypto, &common, fixed(), u64::MAX).await?;
            row.push(ours, ceiling);
        }
        drop(crypto);
    }
    print_run_table(&rows, rounds);
    Ok(())
}

/// Never-seen tokens per scenario and round: more than the measured phase
/// uses at the rate a signature check allows. Each round's server starts
/// with nothing remembered, so the rounds can share them.
const FRESH: usize = 40_000;

/// `n` tokens from `sign`, signed on every core.
fn fresh(n: usize, sign: impl Fn() -> String + Sync) -> Arc<Vec<String>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tokens = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let sign = &sign;
                scope.spawn(move || {
                    (0..n / threads + usize::from(t < n % threads))
                        .map(|_| sign())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    Arc::new(tokens)
}

/// Trusts both platforms with their keys inline and binds their subjects
/// to client `bench`.
async fn trust(store_url: &str, kubernetes: &PlatformIssuer, spire: &PlatformIssuer) -> Result<(), String> {
    let store = store::open(store_url).await?;
    let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
    let bindings = [
        (kubernetes.issuer.clone(), kubernetes.jwks(), K8S_SUBJECT),
        ("spiffe://example.org".to_owned(), spire.jwks(), SPIFFE_ID),
    ];
    for (issuer, jwks, subject) in bindings {
        let trust = NewTrust {
            issuer: issuer.clone(),
            jwks: JwksSource::Inline(jwks),
            audiences: vec![],
            max_lifetime_secs: 86_400,
            ca_pem: None,
            bearer_token_file: None,
        };
        admin::add_trusted_issuer(store.as_ref(), trust, Some(BENCH_ISSUER), now)
            .await
            .map_err(|e| e.to_string())?;
        admin::add_federated_identity(store.as_ref(), "bench", &issuer, subject, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

//! Memory with many registered clients, and a soak under mixed load that
//! checks, at the end, the error counts, the RSS slope, and that every
//! acknowledged revocation is still in force.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tessera_proto::pb;
use tessera_server::authority::secret::{ClientSecret, SecretCheck, hash_secret};
use tessera_server::store::{self, ClientRecord, SecretRecord};
use tonic::metadata::{Ascii, MetadataValue};

use crate::procs::{self, TesseraSetup};
use crate::{Common, load, pb_request};

/// Resident memory with `clients` registered, of which `warm` have been
/// authenticated once (and so are held in the server's hot copies).
pub async fn memory(common: Common, clients: usize, warm: usize) -> Result<(), String> {
    let setup = TesseraSetup::prepare(&common, 0).await?;
    // One real argon2 hash shared by every client: registering 10,000 clients
    // with a hash each would take minutes and measure nothing more.
    let secret = ClientSecret::generate();
    let phc = hash_secret(&secret).map_err(|e| e.to_string())?;
    let store = store::open(setup.store_url()).await?;
    for i in 0..clients {
        let record = ClientRecord {
            client_id: format!("many-{i}"),
            scopes: vec!["bench:read".into()],
            audiences: vec!["https://api.internal".into()],
            token_ttl: None,
            disabled: false,
            created_at: 0,
            secrets: vec![SecretRecord {
                secret_id: format!("s{i}"),
                phc: phc.clone(),
                check: Some(SecretCheck::new(&secret).into_inner()),
                created_at: 0,
                expires_at: None,
            }],
            keys: vec![],
            federated: vec![],
            certificates: vec![],
            bind_to_certificate: false,
        };
        store.create_client(record).await.map_err(|e| e.to_string())?;
    }
    drop(store);
    let tessera = setup.start(&common, &[]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cold = procs::rss_kib(tessera.pid())?;
    let mut clients_rpc = load::connect(&tessera.url(), 1).await?;
    let mut warm_up = async |range: std::ops::Range<usize>| -> Result<(), String> {
        for i in range {
            clients_rpc[0]
                .issue_token(pb_request(&format!("many-{i}"), secret.expose()))
                .await
                .map_err(|e| format!("warming client {i}: {e}"))?;
        }
        Ok(())
    };
    // The first verifications allocate the hashing threads' fixed buffers
    // (19 MiB each): a one-time cost, so per-client cost is measured after them.
    let first = warm.min(50);
    warm_up(0..first).await?;
    let fixed = procs::rss_kib(tessera.pid())?;
    warm_up(first..warm).await?;
    let warmed = procs::rss_kib(tessera.pid())?;
    let per_client = warmed.saturating_sub(fixed) as f64 / (warm - first).max(1) as f64;
    println!("\n| state | resident memory |");
    println!("|---|---|");
    println!("| {clients} clients registered, none used yet | {cold} KiB |");
    println!("| {first} of them authenticated (hashing buffers now allocated) | {fixed} KiB |");
    println!("| {warm} of them authenticated (hot copy + remembered secret each) | {warmed} KiB |");
    println!(
        "| extrapolated: all {clients} authenticated | {:.0} KiB ({per_client:.2} KiB per authenticated client) |",
        fixed as f64 + per_client * (clients - first) as f64
    );
    Ok(())
}

/// What the soak's callers count, by index into [`Counters`].
const ISSUED: usize = 0;
const INTROSPECTED: usize = 1;
const REVOKED: usize = 2;
const REFUSED: usize = 3;
const UNEXPECTED: usize = 4;
const BUSY: usize = 5;
type Counters = Arc<[AtomicU64; 6]>;
type Channel = tessera_proto::pb::token_service_client::TokenServiceClient<tonic::transport::Channel>;

/// Holds a mixed load for `duration`, sampling RSS, then checks the outcome.
pub async fn soak(common: Common, duration: Duration, token_ttl: u32) -> Result<(), String> {
    let setup = TesseraSetup::prepare(&common, 0).await?;
    // The deny-list keeps each revoked jti until its token expires, so it
    // grows for one token lifetime, then holds steady: a short lifetime lets
    // a soak of minutes show the steady state.
    let ttl = token_ttl.to_string();
    let tessera = setup.start(&common, &["--token-ttl", &ttl]).await?;
    let channels = load::connect(&tessera.url(), 4).await?;
    let deadline = Instant::now() + duration;
    let counters: Counters = Arc::new(Default::default());
    let revoked_tokens = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let introspector: MetadataValue<Ascii> = setup.introspector_authorization()?;
    let bench_auth: MetadataValue<Ascii> = procs::basic_metadata("bench", &setup.secret)?;
    let mut tasks = spawn_warm_callers(&channels, &counters, &setup.secret, &introspector, deadline);
    tasks.push(spawn_revoker(
        channels[0].clone(),
        counters.clone(),
        setup.secret.clone(),
        revoked_tokens.clone(),
        bench_auth,
        deadline,
    ));
    tasks.push(spawn_wrong_secrets(channels[1].clone(), counters.clone(), deadline));
    let started = Instant::now();
    let mut samples = Vec::new();
    let every = (duration / 40).max(Duration::from_secs(1));
    while Instant::now() < deadline {
        samples.push((started.elapsed().as_secs_f64(), procs::rss_kib(tessera.pid())? as f64));
        tokio::time::sleep(every).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    samples.push((started.elapsed().as_secs_f64(), procs::rss_kib(tessera.pid())? as f64));
    let revoked = revoked_tokens.lock().map(|r| r.clone()).unwrap_or_default();
    let still_active = still_active(channels[0].clone(), &revoked, &introspector).await;
    report(duration, token_ttl, &counters, &samples, revoked.len(), still_active)
}

/// 8 callers issuing and introspecting as a warm client would.
fn spawn_warm_callers(
    channels: &[Channel],
    counters: &Counters,
    secret: &str,
    introspector: &MetadataValue<Ascii>,
    deadline: Instant,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let mut client = channels[worker % channels.len()].clone();
        let (counters, secret, introspector) = (counters.clone(), secret.to_owned(), introspector.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Ok(answer) = client.issue_token(pb_request("bench", &secret)).await else {
                    counters[UNEXPECTED].fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                counters[ISSUED].fetch_add(1, Ordering::Relaxed);
                let mut request = tonic::Request::new(pb::IntrospectTokenRequest {
                    token: answer.into_inner().access_token,
                    token_type_hint: String::new(),
                });
                request.metadata_mut().insert("authorization", introspector.clone());
                match client.introspect_token(request).await {
                    Ok(a) if a.get_ref().active => counters[INTROSPECTED].fetch_add(1, Ordering::Relaxed),
                    _ => counters[UNEXPECTED].fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tasks
}

/// One caller revoking a fresh token every 50 ms, remembering each acknowledged revocation.
fn spawn_revoker(
    mut client: Channel,
    counters: Counters,
    secret: String,
    revoked_tokens: Arc<std::sync::Mutex<Vec<String>>>,
    bench_auth: MetadataValue<Ascii>,
    deadline: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while Instant::now() < deadline {
            if let Ok(answer) = client.issue_token(pb_request("bench", &secret)).await {
                let token = answer.into_inner().access_token;
                let mut request = tonic::Request::new(pb::RevokeTokenRequest {
                    token: token.clone(),
                    token_type_hint: String::new(),
                });
                request.metadata_mut().insert("authorization", bench_auth.clone());
                match client.revoke_token(request).await {
                    Ok(_) => {
                        counters[REVOKED].fetch_add(1, Ordering::Relaxed);
                        revoked_tokens.lock().map(|mut r| r.push(token)).ok();
                    }
                    Err(_) => drop(counters[UNEXPECTED].fetch_add(1, Ordering::Relaxed)),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// One caller sending a wrong secret every 100 ms (refusals, not errors).
fn spawn_wrong_secrets(mut client: Channel, counters: Counters, deadline: Instant) -> tokio::task::JoinHandle<()> {
    let next = AtomicUsize::new(0);
    tokio::spawn(async move {
        while Instant::now() < deadline {
            let id = format!("nobody-{}", next.fetch_add(1, Ordering::Relaxed));
            match client.issue_token(pb_request(&id, "wrong")).await {
                Err(s) if s.code() == tonic::Code::Unauthenticated => counters[REFUSED].fetch_add(1, Ordering::Relaxed),
                Err(s) if s.code() == tonic::Code::Unavailable => counters[BUSY].fetch_add(1, Ordering::Relaxed),
                _ => counters[UNEXPECTED].fetch_add(1, Ordering::Relaxed),
            };
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// How many of the acknowledged revocations are not in force.
async fn still_active(mut client: Channel, revoked: &[String], introspector: &MetadataValue<Ascii>) -> usize {
    let mut still_active = 0;
    for token in revoked {
        let mut request = tonic::Request::new(pb::IntrospectTokenRequest {
            token: token.clone(),
            token_type_hint: String::new(),
        });
        request.metadata_mut().insert("authorization", introspector.clone());
        if client
            .introspect_token(request)
            .await
            .map(|a| a.get_ref().active)
            .unwrap_or(true)
        {
            still_active += 1;
        }
    }
    still_active
}

/// The RSS slope after `warm_up` seconds, by least squares, as text.
fn rss_slope(samples: &[(f64, f64)], warm_up: f64) -> String {
    let steady: Vec<_> = samples.iter().filter(|(t, _)| *t >= warm_up).copied().collect();
    let n = steady.len() as f64;
    let (mean_t, mean_r) = steady
        .iter()
        .fold((0.0, 0.0), |(t, r), (st, sr)| (t + st / n, r + sr / n));
    let slope_kib_per_s = steady.iter().map(|(t, r)| (t - mean_t) * (r - mean_r)).sum::<f64>()
        / steady
            .iter()
            .map(|(t, _)| (t - mean_t).powi(2))
            .sum::<f64>()
            .max(f64::EPSILON);
    if steady.len() >= 8 {
        format!("{:+.2} % per hour", slope_kib_per_s * 3600.0 / mean_r * 100.0)
    } else {
        "not measured (too few samples after it; run longer)".to_owned()
    }
}

/// Prints what the soak saw, and fails it on unexpected answers, lost
/// revocations or growing memory.
fn report(
    duration: Duration,
    token_ttl: u32,
    counters: &Counters,
    samples: &[(f64, f64)],
    revoked: usize,
    still_active: usize,
) -> Result<(), String> {
    // Warm-up is the longer of the first quarter and two token lifetimes
    // plus a minute: a revoked token stays on the deny-list for one
    // lifetime, its row in the store until the first minutely prune after
    // that, so only then do the deny-list, the table and the store's page
    // cache stop growing.
    let warm_up = (duration.as_secs_f64() / 4.0).max(2.0 * f64::from(token_ttl) + 60.0);
    let slope = rss_slope(samples, warm_up);
    let get = |i: usize| counters[i].load(Ordering::Relaxed);
    println!(
        "\nSoak of {} s: {} issued, {} introspected active, {} revoked, {} wrong secrets refused, {} answered busy (503), {} unexpected.",
        duration.as_secs(),
        get(ISSUED),
        get(INTROSPECTED),
        get(REVOKED),
        get(REFUSED),
        get(BUSY),
        get(UNEXPECTED)
    );
    println!(
        "RSS: {:.0} KiB at start, {:.0} KiB at the end; slope after the {warm_up:.0} s warm-up {slope} (target < 1 %).",
        samples.first().map(|s| s.1).unwrap_or(0.0),
        samples.last().map(|s| s.1).unwrap_or(0.0)
    );
    println!(
        "Acknowledged revocations still in force: {} of {revoked}.",
        revoked - still_active
    );
    let shape: Vec<String> = samples
        .iter()
        .map(|(t, r)| format!("{t:.0}s:{:.0}M", r / 1024.0))
        .collect();
    println!("RSS samples: {}", shape.join(" "));
    // Growth check, robust to the allocator's 1 MB steps: the peak of the
    // last third against the peak of the middle third.
    let third = samples.len() / 3;
    let peak = |part: &[(f64, f64)]| part.iter().map(|s| s.1).fold(0.0, f64::max);
    let middle = peak(&samples[third..2 * third]);
    let last = peak(&samples[2 * third..]);
    let growth = if middle > 0.0 {
        (last - middle) / middle * 100.0
    } else {
        0.0
    };
    println!(
        "RSS peak: {middle:.0} KiB in the middle third, {last:.0} KiB in the last ({growth:+.1} %; the soak fails above +5 %)."
    );
    if get(UNEXPECTED) > 0 || still_active > 0 {
        return Err("the soak found unexpected answers or lost revocations".into());
    }
    if growth > 5.0 {
        return Err(format!(
            "resident memory kept growing: {growth:+.1} % from the middle to the last third"
        ));
    }
    Ok(())
}

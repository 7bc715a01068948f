//! `tessera-bench`: measures a real Tessera server against ceilings measured
//! in the same run, on the same core, and prints ratios (these machines are
//! shared and noisy, so absolute figures mean little on their own).
//!
//! ```text
//! cargo build --release -p tessera-server -p tessera-bench
//! taskset -c 1 target/release/tessera-bench run      # servers pinned to core 0, load on core 1
//! target/release/tessera-bench timing                # unknown vs wrong vs disabled client medians
//! taskset -c 1 target/release/tessera-bench flood    # warm p99 with and without a wrong-secret flood
//! ```

mod ceiling;
mod http;
mod idle;
mod load;
mod procs;
mod soak;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use clap::{Parser, Subcommand};
use load::{Call, Stats};
use procs::Spawned;

#[derive(Debug, Parser)]
#[command(name = "tessera-bench", about = "Load harness for Tessera with same-run ceilings")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Let idle cores poll this many ns before halting (KVM guests with
    /// cpuidle-haltpoll; needs root; restored at exit), so waking the load
    /// generator costs the server's core no interrupt. See `idle.rs`.
    #[arg(long, global = true)]
    halt_poll_ns: Option<u64>,
}

#[derive(Debug, clap::Args, Clone)]
struct Common {
    /// The tessera binary [default: next to this one]
    #[arg(long)]
    tessera: Option<PathBuf>,
    /// Core the servers are pinned to (with taskset); run the harness itself on another
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Seconds each measured phase lasts
    #[arg(long, default_value_t = 8)]
    duration: u64,
    /// Concurrent callers
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the callers share
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Run Tessera on a throwaway PostgreSQL cluster (initdb in a temp dir,
    /// fsync on) instead of a SQLite file
    #[arg(long)]
    postgres: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tessera against the ceilings, A B A B, for issuance and introspection.
    Run {
        #[command(flatten)]
        common: Common,
        /// Rounds of the A B alternation
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The HTTP shim under wrk against the ceilings' HTTP endpoints, A B A B.
    Http {
        #[command(flatten)]
        common: Common,
        /// Rounds of the A B alternation
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Latency medians of unknown-client, wrong-secret and disabled-client answers, interleaved.
    Timing {
        #[command(flatten)]
        common: Common,
        /// Samples of each kind
        #[arg(long, default_value_t = 500)]
        samples: usize,
    },
    /// Server CPU per refused secret, and a warm client's p99 alone and
    /// during 2,000 wrong secrets a second.
    Flood {
        #[command(flatten)]
        common: Common,
    },
    /// Resident memory with many registered clients, some of them authenticated.
    Memory {
        #[command(flatten)]
        common: Common,
        /// Clients registered
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// Of those, clients authenticated once (each costs one argon2 verification)
        #[arg(long, default_value_t = 500)]
        warm: usize,
    },
    /// Mixed load (issue, introspect, revoke, wrong secrets) for a while, sampling RSS.
    Soak {
        #[command(flatten)]
        common: Common,
        /// Seconds to hold the load
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Token lifetime: revoked tokens stay on the deny-list this long, so
        /// memory reaches its steady state after one lifetime
        #[arg(long, default_value_t = 60)]
        token_ttl: u32,
    },
    /// Hold warm IssueToken load on one server for `--duration` seconds, after
    /// printing its PID, so a profiler can attach (`perf record -p PID`).
    Hold {
        #[command(flatten)]
        common: Common,
        /// Which server: Tessera, or the signing or bare ceiling
        #[arg(long, value_enum, default_value_t = HoldTarget::Tessera)]
        target: HoldTarget,
    },
    /// Revocations: each call an acknowledged, durable write, on the chosen store.
    Writes {
        #[command(flatten)]
        common: Common,
    },
    /// The assertion replay store: what remembering each `private_key_jwt`
    /// `jti` until it expires costs, in writes per second and bytes per id,
    /// on a SQLite store (`--count` ids, pruning as the server does).
    Assertions {
        /// Assertion ids to remember
        #[arg(long, default_value_t = 100_000)]
        count: u64,
    },
    /// Memory per deny-list entry: the server keeps each revoked token's
    /// `jti` (22 characters) and `exp` in a `DashMap<String, i64>` until the
    /// token expires; this builds one of `--entries` and reads RSS.
    Denylist {
        /// Revoked tokens to hold
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
    },
    /// Serve a ceiling (used by `run`).
    Ceiling {
        #[arg(long, value_enum)]
        mode: ceiling::Mode,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

fn main() -> std::process::ExitCode {
    // As the `tessera` binary does, so that the ceilings this binary serves
    // allocate the way Tessera does.
    tessera_server::malloc::cap_arenas();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let halt_poll = match cli.halt_poll_ns.map(idle::HaltPoll::set).transpose() {
        Ok(guard) => guard.flatten(),
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if !matches!(cli.command, Command::Ceiling { .. }) {
        eprintln!(
            "guest_halt_poll_ns during this run: {}",
            idle::HaltPoll::current().unwrap_or_else(|| "(no such knob)".into())
        );
    }
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Run { common, rounds } => run(common, rounds).await,
            Command::Http { common, rounds } => http::run(common, rounds).await,
            Command::Hold { common, target } => hold(common, target).await,
            Command::Writes { common } => writes(common).await,
            Command::Memory { common, clients, warm } => soak::memory(common, clients, warm).await,
            Command::Soak {
                common,
                seconds,
                token_ttl,
            } => soak::soak(common, Duration::from_secs(seconds), token_ttl).await,
            Command::Timing { common, samples } => timing(common, samples).await,
            Command::Flood { common } => flood(common).await,
            Command::Assertions { count } => assertions(count).await,
            Command::Denylist { entries } => denylist(entries),
            Command::Ceiling { mode, listen } => ceiling::serve(mode, listen).await,
        }
    });
    drop(halt_poll);
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One measured phase against one server.
struct Measured {
    stats: Stats,
    cpu_us_per_call: f64,
}

/// Tokens for the revocation scenario: more than its measured phase uses.
const REVOKE_POOL: usize = 40_000;

async fn writes(common: Common) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 0).await?;
    let tessera = setup.start(&common, &[]).await?;
    let pool = Arc::new(procs::token_pool(&tessera, "bench", &setup.secret, REVOKE_POOL).await?);
    let call = Call::Revoke {
        pool: pool.clone(),
        authorization: setup.bench_authorization()?,
        next: Arc::new(AtomicUsize::new(0)),
    };
    let measured = measure(&tessera, &common, call, REVOKE_POOL as u64).await?;
    // Every revocation acknowledged must be in force: the first tokens of the
    // pool were revoked (callers take them in order), so they must be inactive.
    let clients = load::connect(&tessera.url(), 1).await?;
    let mut client = clients.first().cloned().ok_or("no connection")?;
    let revoked = (measured.stats.ok as usize).min(pool.len());
    let mut still_active = 0;
    for token in pool.iter().take(revoked.min(200)) {
        let mut request = tonic::Request::new(tessera_proto::pb::IntrospectTokenRequest {
            token: token.clone(),
            token_type_hint: String::new(),
        });
        request
            .metadata_mut()
            .insert("authorization", setup.introspector_authorization()?);
        if client
            .introspect_token(request)
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .active
        {
            still_active += 1;
        }
    }
    println!(
        "\n| store | revocations/s | server CPU µs/revocation | p50 / p99 / p999 ms | errors | of the first {} revoked, still active |",
        revoked.min(200)
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} | {:.0} | {:.2} / {:.2} / {:.2} | {} | {still_active} |",
        setup.store_kind(),
        measured.stats.rps(),
        measured.cpu_us_per_call,
        measured.stats.quantile_ms(0.5),
        measured.stats.quantile_ms(0.99),
        measured.stats.quantile_ms(0.999),
        measured.stats.errors,
    );
    if still_active > 0 {
        return Err(format!("{still_active} acknowledged revocations are not in force"));
    }
    Ok(())
}

/// The server `hold` loads.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum HoldTarget {
    Tessera,
    Signing,
    Bare,
}

async fn hold(common: Common, target: HoldTarget) -> Result<(), String> {
    let setup;
    let (server, call) = match target {
        HoldTarget::Tessera => {
            setup = procs::TesseraSetup::prepare(&common, 0).await?;
            let call = Call::Issue {
                client_id: "bench".into(),
                secret: setup.secret.clone(),
            };
            (setup.start(&common, &[]).await?, call)
        }
        HoldTarget::Signing | HoldTarget::Bare => {
            let mode = match target {
                HoldTarget::Signing => ceiling::Mode::Crypto,
                _ => ceiling::Mode::Bare,
            };
            let call = Call::Issue {
                client_id: "x".into(),
                secret: "x".into(),
            };
            (Spawned::ceiling(&common, mode).await?, call)
        }
    };
    println!("server pid {}", server.pid());
    let measured = measure(&server, &common, call, u64::MAX).await?;
    println!(
        "{:.0} calls/s, server CPU {:.1} µs/call, p50 {:.2} ms, p99 {:.2} ms, errors {}",
        measured.stats.rps(),
        measured.cpu_us_per_call,
        measured.stats.quantile_ms(0.5),
        measured.stats.quantile_ms(0.99),
        measured.stats.errors
    );
    Ok(())
}

async fn measure(server: &Spawned, common: &Common, call: Call, max_calls: u64) -> Result<Measured, String> {
    let clients = load::connect(&server.url(), common.connections).await?;
    let warmup = Duration::from_secs(1);
    let before = procs::cpu_time(server.pid())?;
    let stats = load::drive(
        &clients,
        call,
        common.concurrency,
        warmup,
        Duration::from_secs(common.duration),
        max_calls,
    )
    .await;
    let used = procs::cpu_time(server.pid())?.saturating_sub(before);
    // The CPU window includes the warm-up; scale calls accordingly.
    let warm_share = warmup.as_secs_f64() / (warmup.as_secs_f64() + stats.elapsed.as_secs_f64());
    let calls = stats.ok as f64 / (1.0 - warm_share);
    Ok(Measured {
        cpu_us_per_call: used.as_secs_f64() * 1e6 / calls.max(1.0),
        stats,
    })
}

/// Distinct tokens for the never-seen introspection scenario: enough for the
/// warm-up second and the measured phase at the verify bound.
const UNSEEN_POOL: usize = 60_000;

/// One line of the `run` table: a scenario's measurements over the rounds.
struct Row {
    name: &'static str,
    /// Tessera calls/s over ceiling calls/s, per round.
    ratios: Vec<f64>,
    /// Tessera server CPU per call over the ceiling's, per round.
    cpu_ratios: Vec<f64>,
    ours: Vec<Measured>,
    limits: Vec<Measured>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn run(common: Common, rounds: usize) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 600).await?;
    let names = [
        "IssueToken, warm client vs signing ceiling",
        "IssueToken, warm client vs bare ceiling",
        "IntrospectToken, 1,000 live tokens vs bare ceiling",
        "IntrospectToken, never-seen tokens vs verify ceiling",
    ];
    let mut rows: Vec<Row> = names
        .into_iter()
        .map(|name| Row {
            name,
            ratios: Vec::new(),
            cpu_ratios: Vec::new(),
            ours: Vec::new(),
            limits: Vec::new(),
        })
        .collect();
    let auth = setup.introspector_authorization()?;
    let introspect_call = |pool: Vec<String>, once: bool| Call::Introspect {
        pool: Arc::new(pool),
        authorization: auth.clone(),
        next: Arc::new(AtomicUsize::new(0)),
        once,
    };
    let fixed_issue = || Call::Issue {
        client_id: "x".into(),
        secret: "x".into(),
    };
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}");
        // A: Tessera.
        let tessera = setup.start(&common, &[]).await?;
        let warm = Call::Issue {
            client_id: "bench".into(),
            secret: setup.secret.clone(),
        };
        let issue = measure(&tessera, &common, warm, u64::MAX).await?;
        let live = procs::token_pool(&tessera, "bench", &setup.secret, 1000).await?;
        let introspect = measure(&tessera, &common, introspect_call(live, false), u64::MAX).await?;
        let unseen = procs::token_pool(&tessera, "bench", &setup.secret, UNSEEN_POOL).await?;
        let introspect_unseen = measure(&tessera, &common, introspect_call(unseen, true), UNSEEN_POOL as u64).await?;
        drop(tessera);
        // B: the ceilings, on the same core.
        let crypto = Spawned::ceiling(&common, ceiling::Mode::Crypto).await?;
        let sign_ceiling = measure(&crypto, &common, fixed_issue(), u64::MAX).await?;
        let unseen = procs::token_pool(&crypto, "x", "x", UNSEEN_POOL).await?;
        let verify_ceiling = measure(&crypto, &common, introspect_call(unseen, true), UNSEEN_POOL as u64).await?;
        drop(crypto);
        let bare = Spawned::ceiling(&common, ceiling::Mode::Bare).await?;
        let bare_issue = measure(&bare, &common, fixed_issue(), u64::MAX).await?;
        let pool = procs::token_pool(&bare, "x", "x", 1000).await?;
        let bare_introspect = measure(&bare, &common, introspect_call(pool, false), u64::MAX).await?;
        drop(bare);
        let pairs = [
            (issue.clone_stats(), sign_ceiling),
            (issue, bare_issue),
            (introspect, bare_introspect),
            (introspect_unseen, verify_ceiling),
        ];
        for (row, (ours, limit)) in rows.iter_mut().zip(pairs) {
            row.ratios.push(ours.stats.rps() / limit.stats.rps());
            row.cpu_ratios.push(ours.cpu_us_per_call / limit.cpu_us_per_call);
            row.ours.push(ours);
            row.limits.push(limit);
        }
    }
    print_run_table(&rows, rounds);
    cold_issuance(&setup, &common).await
}

/// The `run` table: per scenario, medians over the rounds.
fn print_run_table(rows: &[Row], rounds: usize) {
    println!(
        "\n| scenario | Tessera calls/s | ceiling calls/s | ratio (median of {rounds}) | Tessera server CPU µs/call | ceiling server CPU µs/call | Tessera p50 / p99 / p999 ms | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for Row {
        name,
        ratios,
        cpu_ratios,
        ours,
        limits,
    } in rows
    {
        let rps = median(ours.iter().map(|m| m.stats.rps()).collect());
        let limit_rps = median(limits.iter().map(|m| m.stats.rps()).collect());
        let cpu = median(ours.iter().map(|m| m.cpu_us_per_call).collect());
        let limit_cpu = median(limits.iter().map(|m| m.cpu_us_per_call).collect());
        let latency = ours
            .last()
            .map(|m| {
                let s = &m.stats;
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    s.quantile_ms(0.5),
                    s.quantile_ms(0.99),
                    s.quantile_ms(0.999)
                )
            })
            .unwrap_or_default();
        let errors: u64 = ours.iter().map(|m| m.stats.errors).sum();
        let first_error = ours
            .iter()
            .find_map(|m| m.stats.first_error.clone())
            .unwrap_or_default();
        println!(
            "| {name} | {rps:.0} | {limit_rps:.0} | **{:.2}** (CPU ratio {:.2}) | {cpu:.0} | {limit_cpu:.0} | {latency} | {errors} {first_error} |",
            median(ratios.clone()),
            median(cpu_ratios.clone()),
        );
    }
}

/// Cold issuance: every call verifies a secret with argon2 (distinct clients).
async fn cold_issuance(setup: &procs::TesseraSetup, common: &Common) -> Result<(), String> {
    let tessera = setup.start(common, &[]).await?;
    let cold = Call::IssueCold {
        clients: setup.cold.clone(),
        next: Arc::new(AtomicUsize::new(0)),
    };
    let low = Common {
        concurrency: 1,
        connections: 1,
        ..common.clone()
    };
    let measured = measure(&tessera, &low, cold, u64::MAX).await?;
    println!(
        "\nCold IssueToken (argon2id m=19 MiB t=2 p=1 each call, concurrency 1): {:.1} calls/s, p50 {:.1} ms, p99 {:.1} ms, server CPU {:.0} µs/call, errors {}",
        measured.stats.rps(),
        measured.stats.quantile_ms(0.5),
        measured.stats.quantile_ms(0.99),
        measured.cpu_us_per_call,
        measured.stats.errors
    );
    println!(
        "Tessera resident memory after the run: {} KiB",
        procs::rss_kib(tessera.pid())?
    );
    Ok(())
}

impl Measured {
    fn clone_stats(&self) -> Measured {
        Measured {
            stats: self.stats.clone(),
            cpu_us_per_call: self.cpu_us_per_call,
        }
    }
}

async fn timing(common: Common, samples: usize) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 0).await?;
    let tessera = setup.start(&common, &[]).await?;
    let mut clients = load::connect(&tessera.url(), 1).await?;
    let client = &mut clients[0];
    let kinds = ["unknown client", "wrong secret", "disabled client"];
    let mut latencies: [Vec<f64>; 3] = Default::default();
    for i in 0..samples * 3 {
        let kind = i % 3;
        let (id, secret) = match kind {
            0 => (format!("nobody-{i}"), setup.secret.clone()),
            1 => ("bench".to_owned(), format!("wrong-{i}")),
            _ => ("disabled".to_owned(), setup.disabled_secret.clone()),
        };
        let request = pb_request(&id, &secret);
        let start = std::time::Instant::now();
        let answer = client.issue_token(request).await;
        latencies[kind].push(start.elapsed().as_secs_f64() * 1000.0);
        match answer {
            Err(status) if status.code() == tonic::Code::Unauthenticated => {}
            other => return Err(format!("{} answered {other:?}", kinds[kind])),
        }
    }
    let medians: Vec<f64> = latencies.iter().map(|l| median(l.clone())).collect();
    let lowest = medians.iter().cloned().fold(f64::INFINITY, f64::min);
    println!("\n| answer | samples | median ms | vs fastest |");
    println!("|---|---|---|---|");
    for (kind, m) in kinds.iter().zip(&medians) {
        println!("| {kind} | {samples} | {m:.2} | +{:.1} % |", (m / lowest - 1.0) * 100.0);
    }
    Ok(())
}

fn pb_request(id: &str, secret: &str) -> tessera_proto::pb::IssueTokenRequest {
    tessera_proto::pb::IssueTokenRequest {
        grant_type: String::new(),
        client_id: id.into(),
        credential: Some(tessera_proto::pb::issue_token_request::Credential::ClientSecret(
            secret.into(),
        )),
        scopes: vec![],
        audiences: vec![],
    }
}

async fn flood(common: Common) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 0).await?;
    let warm = || Call::Issue {
        client_id: "bench".into(),
        secret: setup.secret.clone(),
    };
    // Light warm traffic, as a real client's would be.
    let light = Common {
        concurrency: 4,
        connections: 1,
        ..common.clone()
    };
    let tessera = setup.start(&common, &[]).await?;
    // What one refused secret costs the server, flat out: for a registered
    // client (its check value refuses it) and for an unknown id (a store
    // lookup, then a dummy check).
    let wrong_known = measure(
        &tessera,
        &common,
        Call::WrongSecretFor {
            client_id: "bench".into(),
        },
        u64::MAX,
    )
    .await?;
    let wrong_unknown = measure(&tessera, &common, Call::WrongSecret, u64::MAX).await?;
    println!(
        "\n| refused request (gRPC, {} callers) | calls/s | server CPU µs/call | p50 ms |",
        common.concurrency
    );
    println!("|---|---|---|---|");
    for (name, m) in [
        ("wrong secret, registered client", &wrong_known),
        ("unknown client id", &wrong_unknown),
    ] {
        println!(
            "| {name} | {:.0} | {:.1} | {:.2} |",
            m.stats.rps(),
            m.cpu_us_per_call,
            m.stats.quantile_ms(0.5)
        );
    }
    let alone = measure(&tessera, &light, warm(), u64::MAX).await?;
    let rss_before = procs::rss_kib(tessera.pid())?;
    let flood_clients = load::connect(&tessera.url(), 2).await?;
    let duration = Duration::from_secs(common.duration + 1);
    let flood = tokio::spawn(paced_wrong_secrets(flood_clients, FLOOD_RATE, duration));
    let under_flood = measure(&tessera, &light, warm(), u64::MAX).await?;
    let (sent, refused) = flood.await.map_err(|e| e.to_string())?;
    let rss_after = procs::rss_kib(tessera.pid())?;
    println!("\n| warm client (4 callers) | calls/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (name, m) in [("alone", &alone), ("during 2,000 wrong secrets/s", &under_flood)] {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} |",
            m.stats.rps(),
            m.stats.quantile_ms(0.5),
            m.stats.quantile_ms(0.99)
        );
    }
    println!(
        "\np99 ratio under flood: **{:.2}**. Flood: {sent} wrong secrets sent in {} s, {refused} refused with invalid_client. RSS {} KiB before, {} KiB after.",
        under_flood.stats.quantile_ms(0.99) / alone.stats.quantile_ms(0.99),
        duration.as_secs(),
        rss_before,
        rss_after
    );
    Ok(())
}

/// Resident memory of a deny-list of `entries` revoked tokens, shaped as the
/// server's (`Authority::denied`): `jti` as Tessera makes them, `exp` as i64.
fn denylist(entries: usize) -> Result<(), String> {
    use base64::Engine as _;
    let before = procs::rss_kib(std::process::id())?;
    let denied: dashmap::DashMap<String, i64> = dashmap::DashMap::new();
    for i in 0..entries as u128 {
        let jti = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835).to_le_bytes());
        denied.insert(jti, 1_900_000_000);
    }
    let after = procs::rss_kib(std::process::id())?;
    let per_entry = (after.saturating_sub(before) * 1024) as f64 / entries as f64;
    println!("\n| revocations held | resident memory added | bytes per entry |");
    println!("|---|---|---|");
    println!("| {entries} | {} KiB | {per_entry:.0} |", after.saturating_sub(before));
    drop(denied);
    Ok(())
}

/// Remembers `count` assertion ids the way the server does (one durable
/// write each, `synchronous=FULL`) from 16 writers at once, and reports the
/// write rate and the file's growth per id.
async fn assertions(count: u64) -> Result<(), String> {
    use tessera_server::store::{SqliteStore, Store};
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("tessera.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path).await.map_err(|e| e.to_string())?);
    let size = |path: &std::path::Path| -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
            .map(|m| m.len())
            .sum()
    };
    let before = size(&path);
    let started = std::time::Instant::now();
    const WRITERS: u64 = 16;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (writer..count).step_by(WRITERS as usize) {
                // A client id and a 22-character random-looking jti, as
                // authlib sends (a UUID is 36: a little more per row).
                let jti = format!("{:022x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let fresh = store
                    .remember_assertion(&format!("client-{}", i % 100), &jti, 4_000_000_000)
                    .await
                    .map_err(|e| e.to_string())?;
                if !fresh {
                    return Err(format!("jti {jti} reported as a replay"));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Checkpoint, so the file holds every row and the WAL is empty.
    drop(store);
    let reopened = SqliteStore::open(&path).await.map_err(|e| e.to_string())?;
    drop(reopened);
    let bytes = size(&path).saturating_sub(before);
    let per_id = bytes as f64 / count as f64;
    println!("\n| assertion ids | writes/s (16 writers) | bytes per id on disk | 1 h at 1,000/s (3.6 M ids) |");
    println!("|---|---|---|---|");
    println!(
        "| {count} | {:.0} | {per_id:.0} | {:.0} MB |",
        count as f64 / elapsed,
        per_id * 3.6e6 / 1e6
    );
    Ok(())
}

/// Wrong secrets a second in the flood: enough to have needed a lockout when
/// each one cost argon2 (about 100 cores' worth), now a few percent of one.
const FLOOD_RATE: u64 = 2_000;

/// Sends wrong secrets for registered and unknown client ids at `rate` per
/// second for `duration`, from 32 callers; returns (sent, refused).
async fn paced_wrong_secrets(
    clients: Vec<tessera_proto::pb::token_service_client::TokenServiceClient<tonic::transport::Channel>>,
    rate: u64,
    duration: Duration,
) -> (u64, u64) {
    const CALLERS: u64 = 32;
    let end = tokio::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    for worker in 0..CALLERS {
        let mut client = clients[worker as usize % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * CALLERS / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut sent, mut refused) = (0u64, 0u64);
            while tokio::time::Instant::now() < end {
                tick.tick().await;
                let id = if sent % 2 == 0 {
                    "bench".to_owned()
                } else {
                    format!("nobody-{worker}-{sent}")
                };
                sent += 1;
                if let Err(status) = client.issue_token(pb_request(&id, "wrong")).await
                    && status.code() == tonic::Code::Unauthenticated
                {
                    refused += 1;
                }
            }
            (sent, refused)
        }));
    }
    let mut totals = (0, 0);
    for task in tasks {
        if let Ok((sent, refused)) = task.await {
            totals.0 += sent;
            totals.1 += refused;
        }
    }
    totals
}

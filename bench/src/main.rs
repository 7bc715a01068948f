//! `tessera-bench`: measures a real Tessera server against ceilings measured
//! in the same run, on the same core, and prints ratios (these machines are
//! shared and noisy, so absolute figures mean little on their own).
//!
//! ```text
//! cargo build --release -p tessera-server -p tessera-bench
//! taskset -c 1 target/release/tessera-bench run      # servers pinned to core 0, load on core 1
//! target/release/tessera-bench timing                # unknown vs wrong vs disabled client medians
//! taskset -c 1 target/release/tessera-bench flood    # warm p99 with and without a wrong-secret flood
//! taskset -c 1 target/release/tessera-bench federated  # platform tokens as credentials vs the signing ceiling
//! taskset -c 1 target/release/tessera-bench certificates  # client certificates over mutual TLS vs a TLS ceiling
//! target/release/tessera-bench hsm                   # ES256 signing in SoftHSM2 vs in process
//! ```

mod ceiling;
mod certificates;
mod failures;
mod federated;
mod hsm;
mod http;
mod idle;
mod load;
use failures::pb_request;
mod procs;
mod run;
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
    /// Warm issuance with a platform token as the credential (a Kubernetes
    /// service-account token, a JWT-SVID) beside a client secret, against
    /// the signing ceiling, A B A B.
    Federated {
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
        /// Serve TLS with this certificate (and --tls-key), requiring client
        /// certificates chained to --tls-client-ca: the chain check in the
        /// handshake is the unavoidable work of tls_client_auth
        #[arg(long, requires_all = ["tls_key", "tls_client_ca"])]
        tls_cert: Option<PathBuf>,
        #[arg(long)]
        tls_key: Option<PathBuf>,
        #[arg(long)]
        tls_client_ca: Option<PathBuf>,
    },
    /// Client certificates (RFC 8705): warm issuance on kept-alive mutual-TLS
    /// connections, by secret, by certificate, and bound, vs ceilings on the same transport.
    Certificates {
        #[command(flatten)]
        common: Common,
        /// Rounds of the A B alternation
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// ES256 signing with a key in a SoftHSM2 token (PKCS#11) beside the same signing in process.
    Hsm {
        /// Rounds of the alternation
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds each measurement lasts
        #[arg(long, default_value_t = 5)]
        duration: u64,
    },
    /// The measuring half of `hsm`, run with SOFTHSM2_CONF set.
    #[command(hide = true)]
    HsmChild {
        #[arg(long)]
        rounds: usize,
        #[arg(long)]
        duration: u64,
        #[arg(long)]
        uri: String,
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        pin_file: PathBuf,
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
            Command::Run { common, rounds } => run::run(common, rounds).await,
            Command::Http { common, rounds } => http::run(common, rounds).await,
            Command::Federated { common, rounds } => federated::run(common, rounds).await,
            Command::Hold { common, target } => hold(common, target).await,
            Command::Writes { common } => writes(common).await,
            Command::Memory { common, clients, warm } => soak::memory(common, clients, warm).await,
            Command::Soak {
                common,
                seconds,
                token_ttl,
            } => soak::soak(common, Duration::from_secs(seconds), token_ttl).await,
            Command::Timing { common, samples } => failures::timing(common, samples).await,
            Command::Flood { common } => failures::flood(common).await,
            Command::Assertions { count } => failures::assertions(count).await,
            Command::Denylist { entries } => failures::denylist(entries),
            Command::Ceiling {
                mode,
                listen,
                tls_cert,
                tls_key,
                tls_client_ca,
            } => {
                let tls = match (tls_cert, tls_key) {
                    (Some(cert), Some(key)) => Some(tessera_server::tls::TlsFiles {
                        cert,
                        key,
                        client_ca: tls_client_ca,
                        client_auth: Some(tessera_server::tls::ClientAuth::Required),
                    }),
                    _ => None,
                };
                ceiling::serve(mode, listen, tls).await
            }
            Command::Certificates { common, rounds } => certificates::run(common, rounds).await,
            Command::Hsm { rounds, duration } => hsm::run(rounds, Duration::from_secs(duration)),
            Command::HsmChild {
                rounds,
                duration,
                uri,
                module,
                pin_file,
            } => hsm::child(rounds, Duration::from_secs(duration), &uri, module, pin_file),
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
    let endpoint = tonic::transport::Endpoint::from_shared(server.url()).map_err(|e| e.to_string())?;
    measure_through(server, &endpoint, common, call, max_calls).await
}

/// As [`measure`], connecting through `endpoint` (with its TLS settings).
async fn measure_through(
    server: &Spawned,
    endpoint: &tonic::transport::Endpoint,
    common: &Common,
    call: Call,
    max_calls: u64,
) -> Result<Measured, String> {
    let clients = load::connect_to(endpoint, common.connections).await?;
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

//! `tessera-bench run`: gRPC issuance and introspection against the same-run
//! ceilings, and cold issuance.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use load::Call;
use procs::Spawned;

use crate::*;

/// Distinct tokens for the never-seen introspection scenario: enough for the
/// warm-up second and the measured phase at the verify bound.
const UNSEEN_POOL: usize = 60_000;

/// One line of the `run` table: a scenario's measurements over the rounds.
pub(crate) struct Row {
    pub(crate) name: &'static str,
    /// Tessera calls/s over ceiling calls/s, per round.
    pub(crate) ratios: Vec<f64>,
    /// Tessera server CPU per call over the ceiling's, per round.
    pub(crate) cpu_ratios: Vec<f64>,
    pub(crate) ours: Vec<Measured>,
    pub(crate) limits: Vec<Measured>,
}

impl Row {
    /// A row with no measurement yet.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            ratios: Vec::new(),
            cpu_ratios: Vec::new(),
            ours: Vec::new(),
            limits: Vec::new(),
        }
    }

    /// Adds one round: Tessera's measurement and the ceiling's.
    pub(crate) fn push(&mut self, ours: Measured, limit: Measured) {
        self.ratios.push(ours.stats.rps() / limit.stats.rps());
        self.cpu_ratios.push(ours.cpu_us_per_call / limit.cpu_us_per_call);
        self.ours.push(ours);
        self.limits.push(limit);
    }
}

pub(crate) async fn run(common: Common, rounds: usize) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 600).await?;
    let names = [
        "IssueToken, warm client vs signing ceiling",
        "IssueToken, warm client vs bare ceiling",
        "IntrospectToken, 1,000 live tokens vs bare ceiling",
        "IntrospectToken, never-seen tokens vs verify ceiling",
    ];
    let mut rows: Vec<Row> = names.into_iter().map(Row::new).collect();
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
            row.push(ours, limit);
        }
    }
    print_run_table(&rows, rounds);
    cold_issuance(&setup, &common).await
}

/// The `run` table: per scenario, medians over the rounds.
pub(crate) fn print_run_table(rows: &[Row], rounds: usize) {
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
    pub(crate) fn clone_stats(&self) -> Measured {
        Measured {
            stats: self.stats.clone(),
            cpu_us_per_call: self.cpu_us_per_call,
        }
    }
}

//! The HTTP shim under an existing HTTP load tool (wrk), against the same
//! ceilings' HTTP endpoints, in the same run.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use crate::procs::{self, Spawned};
use crate::{Common, median};

/// What one wrk phase measured.
#[derive(Clone)]
pub struct WrkStats {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub cpu_us_per_call: f64,
}

fn lua(method_body: &str, authorization: &str) -> String {
    format!(
        "wrk.method = \"POST\"\nwrk.body = \"{method_body}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\nwrk.headers[\"Authorization\"] = \"{authorization}\"\n"
    )
}

fn parse_ms(value: &str) -> f64 {
    let (number, factor) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (value, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

/// Runs wrk (pinned to the other core) for `duration` seconds against `url`.
fn wrk(server: &Spawned, common: &Common, url: &str, script: &Path) -> Result<WrkStats, String> {
    let other_core = (common.server_cpu + 1) % 2;
    let before = procs::cpu_time(server.pid())?;
    let output = Command::new("taskset")
        .args([
            "-c",
            &other_core.to_string(),
            "wrk",
            "-t1",
            &format!("-c{}", common.concurrency),
        ])
        .arg(format!("-d{}s", common.duration))
        .args(["--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("running wrk (apt-get install wrk): {e}"))?;
    let used = procs::cpu_time(server.pid())?.saturating_sub(before);
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
    };
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or(format!("no wrk result:\n{text}"))?;
    let requests: f64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.trim().parse().unwrap_or(0.0))
        })
        .unwrap_or(0.0);
    Ok(WrkStats {
        rps,
        p50_ms: field("50%").map(|v| parse_ms(&v)).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(|v| parse_ms(&v)).unwrap_or(f64::NAN),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        cpu_us_per_call: used.as_secs_f64() * 1e6 / requests.max(1.0),
    })
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub async fn run(common: Common, rounds: usize) -> Result<(), String> {
    let setup = procs::TesseraSetup::prepare(&common, 0).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let write = |name: &str, text: String| -> Result<std::path::PathBuf, String> {
        let path = dir.path().join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(path)
    };
    let token_script = write(
        "token.lua",
        lua("grant_type=client_credentials", &basic("bench", &setup.secret)),
    )?;
    // (scenario, ratio per round, Tessera per round, ceiling per round)
    type Row = (&'static str, Vec<f64>, Vec<WrkStats>, Vec<WrkStats>);
    let mut rows: Vec<Row> = vec![
        (
            "POST /oauth2/token, warm client (Basic) vs signing ceiling",
            vec![],
            vec![],
            vec![],
        ),
        (
            "POST /oauth2/introspect, a live token vs bare ceiling",
            vec![],
            vec![],
            vec![],
        ),
        (
            "POST /oauth2/token, warm client vs bare ceiling",
            vec![],
            vec![],
            vec![],
        ),
    ];
    for round in 1..=rounds {
        eprintln!("http round {round}/{rounds}");
        let tessera = setup.start(&common, &[]).await?;
        let issue = wrk(
            &tessera,
            &common,
            &format!("{}/oauth2/token", tessera.url()),
            &token_script,
        )?;
        let live = procs::token_pool(&tessera, "bench", &setup.secret, 16).await?.remove(0);
        let auth = basic("introspector", &setup.introspector_secret);
        let introspect_script = write("introspect.lua", lua(&format!("token={live}"), &auth))?;
        let introspect = wrk(
            &tessera,
            &common,
            &format!("{}/oauth2/introspect", tessera.url()),
            &introspect_script,
        )?;
        drop(tessera);
        let crypto = Spawned::ceiling(&common, crate::ceiling::Mode::Crypto).await?;
        let sign = wrk(
            &crypto,
            &common,
            &format!("{}/oauth2/token", crypto.url()),
            &token_script,
        )?;
        drop(crypto);
        let bare = Spawned::ceiling(&common, crate::ceiling::Mode::Bare).await?;
        let bare_token = wrk(&bare, &common, &format!("{}/oauth2/token", bare.url()), &token_script)?;
        let bare_introspect = wrk(
            &bare,
            &common,
            &format!("{}/oauth2/introspect", bare.url()),
            &introspect_script,
        )?;
        drop(bare);
        let pairs = [
            (issue.clone(), sign),
            (introspect, bare_introspect),
            (issue, bare_token),
        ];
        for (row, (ours, limit)) in rows.iter_mut().zip(pairs) {
            row.1.push(ours.rps / limit.rps);
            row.2.push(ours);
            row.3.push(limit);
        }
    }
    println!(
        "\n| HTTP scenario (wrk, 1 thread, {} connections) | Tessera req/s | ceiling req/s | ratio (median of {rounds}) | server CPU µs/req, Tessera / ceiling | Tessera p50 / p99 ms | non-2xx |",
        common.concurrency
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, ratios, ours, limits) in &rows {
        let last = ours.last().ok_or("no result")?;
        println!(
            "| {name} | {:.0} | {:.0} | **{:.2}** | {:.0} / {:.0} | {:.2} / {:.2} | {} |",
            median(ours.iter().map(|s| s.rps).collect()),
            median(limits.iter().map(|s| s.rps).collect()),
            median(ratios.clone()),
            median(ours.iter().map(|s| s.cpu_us_per_call).collect()),
            median(limits.iter().map(|s| s.cpu_us_per_call).collect()),
            last.p50_ms,
            last.p99_ms,
            ours.iter().map(|s| s.non_2xx).sum::<u64>(),
        );
    }
    Ok(())
}

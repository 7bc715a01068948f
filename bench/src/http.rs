//! The HTTP shim under an existing HTTP load tool (wrk), against the same
//! ceilings' HTTP endpoints, in the same run.

use std::path::Path;
use std::process::Command;

use crate::procs::{self, Spawned, basic};
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

/// Seconds of the never-seen introspection phase, and the tokens it has:
/// at the verify bound (about 12,000/s here) the pool lasts over 5 s.
const UNSEEN_SECONDS: u64 = 4;
const UNSEEN_POOL: usize = 64_000;

/// A wrk script introspecting each token of the file `tokens` once, in
/// order; it prints `WRAPPED` at the end if the pool ran out.
fn unseen_lua(tokens: &Path, authorization: &str) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "{authorization}"
local tokens = {{}}
for line in io.lines("{path}") do tokens[#tokens + 1] = line end
local next_token = 0
wrapped = 0
request = function()
  next_token = next_token + 1
  if next_token > #tokens then next_token = 1; wrapped = wrapped + 1 end
  return wrk.format(nil, nil, nil, "token=" .. tokens[next_token])
end
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  for _, thread in ipairs(threads) do
    if thread:get("wrapped") > 0 then print("WRAPPED") end
  end
end
"#,
        path = tokens.display()
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
    if text.lines().any(|l| l.trim() == "WRAPPED") {
        return Err(format!(
            "{}: the token pool ran out, so some tokens were introspected twice",
            script.display()
        ));
    }
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
    let mut rows: Vec<Row> = SCENARIOS.iter().map(|name| (*name, vec![], vec![], vec![])).collect();
    let auth = basic("introspector", &setup.introspector_secret);
    // Each token is introspected once: the phase is short enough that the
    // pool outlasts it at the verify bound, and the script fails the run if
    // it ever wraps around (a repeat would hit the verified-token cache).
    let unseen = Common {
        duration: UNSEEN_SECONDS,
        ..common.clone()
    };
    let unseen_script = |name: &str, pool: &[String]| -> Result<std::path::PathBuf, String> {
        let tokens = write(&format!("{name}.tokens"), pool.join("\n"))?;
        write(&format!("{name}.lua"), unseen_lua(&tokens, &auth))
    };
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
        let introspect_script = write("introspect.lua", lua(&format!("token={live}"), &auth))?;
        let introspect = wrk(
            &tessera,
            &common,
            &format!("{}/oauth2/introspect", tessera.url()),
            &introspect_script,
        )?;
        let pool = procs::token_pool(&tessera, "bench", &setup.secret, UNSEEN_POOL).await?;
        let introspect_unseen = wrk(
            &tessera,
            &unseen,
            &format!("{}/oauth2/introspect", tessera.url()),
            &unseen_script("tessera-unseen", &pool)?,
        )?;
        drop(tessera);
        let crypto = Spawned::ceiling(&common, crate::ceiling::Mode::Crypto).await?;
        let sign = wrk(
            &crypto,
            &common,
            &format!("{}/oauth2/token", crypto.url()),
            &token_script,
        )?;
        let pool = procs::token_pool(&crypto, "x", "x", UNSEEN_POOL).await?;
        let verify = wrk(
            &crypto,
            &unseen,
            &format!("{}/oauth2/introspect", crypto.url()),
            &unseen_script("ceiling-unseen", &pool)?,
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
            (introspect_unseen, verify),
        ];
        for (row, (ours, limit)) in rows.iter_mut().zip(pairs) {
            row.1.push(ours.rps / limit.rps);
            row.2.push(ours);
            row.3.push(limit);
        }
    }
    print_table(&rows, &common, rounds)
}

/// Per scenario: its name, the ratio per round, Tessera per round, the ceiling per round.
type Row = (&'static str, Vec<f64>, Vec<WrkStats>, Vec<WrkStats>);

/// The scenarios, in the order each round measures them.
const SCENARIOS: [&str; 4] = [
    "POST /oauth2/token, warm client (Basic) vs signing ceiling",
    "POST /oauth2/introspect, a live token vs bare ceiling",
    "POST /oauth2/token, warm client vs bare ceiling",
    "POST /oauth2/introspect, never-seen tokens vs verify ceiling",
];

/// The `http` table: per scenario, medians over the rounds.
fn print_table(rows: &[Row], common: &Common, rounds: usize) -> Result<(), String> {
    println!(
        "\n| HTTP scenario (wrk, 1 thread, {} connections) | Tessera req/s | ceiling req/s | ratio (median of {rounds}) | server CPU µs/req, Tessera / ceiling | Tessera p50 / p99 ms | non-2xx |",
        common.concurrency
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, ratios, ours, limits) in rows {
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

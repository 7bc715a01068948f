//! What failures and refusals cost: answer-time spread (`timing`), a
//! wrong-secret flood (`flood`), and the memory of assertion ids and
//! revocations (`assertions`, `denylist`).

use std::time::Duration;

use load::Call;

use crate::*;

pub(crate) async fn timing(common: Common, samples: usize) -> Result<(), String> {
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

pub(crate) fn pb_request(id: &str, secret: &str) -> tessera_proto::pb::IssueTokenRequest {
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

pub(crate) async fn flood(common: Common) -> Result<(), String> {
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
pub(crate) fn denylist(entries: usize) -> Result<(), String> {
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
pub(crate) async fn assertions(count: u64) -> Result<(), String> {
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

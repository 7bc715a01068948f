//! `tessera-bench hsm`: how fast Tessera signs access tokens with an ES256
//! key in a SoftHSM2 token (PKCS#11), beside the same signing in process,
//! measured in the same run, alternating, on one thread and on two.
//!
//! The token is made with the tests' own helper (softhsm2-util, pkcs11-tool);
//! SoftHSM2 reads its configuration from `SOFTHSM2_CONF` when the module is
//! initialised, so the measurement runs in a child process given it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_server::keys::pkcs11::{HsmKey, Pkcs11Uri};
use tessera_server::keys::{KeyAlgorithm, SigningKey};
use tessera_testkit::softhsm::{KEY_LABEL, SoftHsm};

/// Makes a token and measures in a child process that has `SOFTHSM2_CONF`.
pub fn run(rounds: usize, duration: Duration) -> Result<(), String> {
    let hsm = SoftHsm::start_or_skip("tessera-bench hsm")
        .ok_or("SoftHSM2 is not installed: apt-get install softhsm2 opensc")?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = std::process::Command::new(me)
        .args([
            "hsm-child",
            "--rounds",
            &rounds.to_string(),
            "--duration",
            &duration.as_secs().to_string(),
        ])
        .arg("--uri")
        .arg(hsm.uri(KEY_LABEL))
        .arg("--module")
        .arg(&hsm.module)
        .arg("--pin-file")
        .arg(&hsm.pin_file)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the measuring process failed: {status}"))
    }
}

/// Signs the same claims in process and in the HSM, alternating.
pub fn child(rounds: usize, duration: Duration, uri: &str, module: PathBuf, pin_file: PathBuf) -> Result<(), String> {
    let uri = Pkcs11Uri::parse(uri)?;
    let hsm = Arc::new(SigningKey::from_hsm(HsmKey::open(&uri, &module, &pin_file)?, 0).map_err(|e| e.to_string())?);
    let local =
        Arc::new(SigningKey::from_record(&SigningKey::generate(KeyAlgorithm::Es256, 0)?).map_err(|e| e.to_string())?);
    let claims = serde_json::json!({
        "iss": "https://tessera.internal", "sub": "billing", "client_id": "billing", "aud": "https://ledger.internal",
        "scope": "invoices:read invoices:write", "exp": 1_900_000_000u64, "iat": 1_800_000_000u64,
        "nbf": 1_800_000_000u64, "jti": "Xk3V9qLr2mN8pQ4sT6wY1z",
    });
    println!("ES256 signatures per second (sign_jwt: claims to compact JWS), {rounds} rounds of {duration:?} each");
    println!(
        "{:<10} {:>8} {:>14} {:>14} {:>8}",
        "round", "threads", "in process", "SoftHSM2", "ratio"
    );
    for round in 1..=rounds {
        for threads in [1usize, 2] {
            let local_rate = rate(&local, &claims, threads, duration)?;
            let hsm_rate = rate(&hsm, &claims, threads, duration)?;
            println!(
                "{round:<10} {threads:>8} {local_rate:>14.0} {hsm_rate:>14.0} {:>8.2}",
                hsm_rate / local_rate
            );
        }
    }
    Ok(())
}

fn rate(key: &Arc<SigningKey>, claims: &serde_json::Value, threads: usize, duration: Duration) -> Result<f64, String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (key, claims) = (key.clone(), claims.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                let mut signed = 0u64;
                while started.elapsed() < duration {
                    key.sign_jwt(&claims)?;
                    signed += 1;
                }
                Ok(signed)
            })
        })
        .collect();
    let mut total = 0u64;
    for handle in handles {
        total += handle.join().map_err(|_| "a signing thread panicked".to_owned())??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

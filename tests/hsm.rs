//! End to end: signing in an HSM (issue 20). A real SoftHSM2 token made by
//! the test (`softhsm2-util`, `pkcs11-tool`), and a real `tessera serve`
//! signing through PKCS#11 with a key that never leaves it.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::softhsm::{KEY_LABEL, SoftHsm};
use support::{Server, path};

fn hsm_flags(hsm: &SoftHsm, label: &str) -> Vec<String> {
    vec![
        "--signing-key".into(),
        hsm.uri(label),
        "--pkcs11-module".into(),
        path(&hsm.module).into(),
        "--pkcs11-pin-file".into(),
        path(&hsm.pin_file).into(),
    ]
}

fn start(hsm: &SoftHsm, store: Option<(Arc<tempfile::TempDir>, String)>, extra: &[&str]) -> Server {
    let flags = hsm_flags(hsm, KEY_LABEL);
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    let builder = Server::builder()
        .args(&args)
        .envs(&[("SOFTHSM2_CONF", path(&hsm.conf))]);
    match store {
        Some((dir, url)) => builder.store(dir, url),
        None => builder,
    }
    .start()
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn an_hsm_key_signs_es256_tokens_that_verify_with_the_published_jwks_and_nothing_is_stored() {
    let Some(hsm) = SoftHsm::start_or_skip("an_hsm_key_signs_es256_tokens") else {
        return;
    };
    let server = start(&hsm, None, &[]);
    let secret = server.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let token = server.issued("svc", &secret).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let claims = support::verify_with_http_jwks(&server, &token).await;
    assert_eq!(claims["client_id"], "svc");
    assert!(server.is_active(("svc", &secret), &token).await);
    let listed = server.cli(&["keys", "list", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "[]",
        "no signing key in the store: the private key is only in the HSM"
    );
    assert!(
        server.stderr().contains("signing with the HSM's key"),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn moving_to_an_hsm_keeps_earlier_tokens_valid_and_signs_new_ones_in_the_hsm() {
    let Some(hsm) = SoftHsm::start_or_skip("moving_to_an_hsm") else {
        return;
    };
    let issuer = ["--issuer", "http://tessera.test"];
    let before = Server::builder().args(&issuer).start();
    let secret = before.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let earlier = before.issued("svc", &secret).await;
    let store = before.kill();
    let after = start(&hsm, Some(store), &issuer);
    let later = after.issued("svc", &secret).await;
    assert_ne!(kid(&earlier), kid(&later), "the HSM's key signs now");
    let jwks = after.http("GET", "/.well-known/jwks.json").send().await.json();
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        published.contains(&kid(&earlier).as_str()) && published.contains(&kid(&later).as_str()),
        "{jwks}"
    );
    for token in [&earlier, &later] {
        assert!(after.is_active(("svc", &secret), token).await, "{token}");
    }
}

fn serve_refused(hsm: &SoftHsm, flags: &[String]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("t.db").display());
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, stderr) = support::serve_refused(&store, &args, &[("SOFTHSM2_CONF", path(&hsm.conf))]);
    assert_ne!(code, Some(0), "started with {flags:?}");
    stderr
}

#[test]
fn a_wrong_pin_or_a_key_not_on_the_token_is_refused_at_start_saying_which() {
    let Some(hsm) = SoftHsm::start_or_skip("a_wrong_pin_or_a_key_not_on_the_token") else {
        return;
    };
    let mut flags = hsm_flags(&hsm, KEY_LABEL);
    flags[5] = path(&hsm.wrong_pin_file()).into();
    let stderr = serve_refused(&hsm, &flags);
    assert!(stderr.contains("PIN"), "{stderr}");
    let stderr = serve_refused(&hsm, &hsm_flags(&hsm, "no-such-key"));
    assert!(stderr.contains("no private key on the token"), "{stderr}");
    let mut flags = hsm_flags(&hsm, KEY_LABEL);
    flags[1] = format!("{}?pin-value=87654321", hsm.uri(KEY_LABEL));
    let stderr = serve_refused(&hsm, &flags);
    assert!(stderr.contains("--pkcs11-pin-file"), "{stderr}");
}

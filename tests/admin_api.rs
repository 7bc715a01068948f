//! End to end: the admin API (`tessera.admin.v1.AdminService`, JSON under
//! `/admin/v1/`) and the command line as its client (`--server`), on real
//! `tessera serve` processes.
//!
//! Authorisation follows RFC 6750: no usable token is 401 `invalid_token`
//! (with a `WWW-Authenticate: Bearer` challenge), a token without the scope
//! the call needs is 403 `insufficient_scope`, decided before anything is
//! looked up.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::pg_cluster::PgCluster;
use support::{Exchange, Server, eventually, tessera_bin};
use tessera_proto::admin::v1 as pb;
use tessera_proto::admin::v1::admin_service_client::AdminServiceClient;

/// The admin audience of a server whose issuer is its URL.
fn admin_audience(server: &Server) -> String {
    format!("{}/admin", server.url())
}

/// Registers an admin client on the store (the bootstrap), returning its secret.
fn bootstrap_admin(server: &Server, id: &str, scope: &str) -> String {
    let audience = admin_audience(server);
    server.create_client(id, &["--scope", scope, "--audience", &audience])
}

/// Runs `tessera ARGS --server URL` as an admin client would: with its
/// credentials in the environment, no store named, in an empty directory
/// (so that a store opened by mistake would show up as a new file there).
fn remote(server_url: &str, admin: (&str, &str), args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(tessera_bin())
        .args(args)
        .args(["--server", server_url])
        .env_remove("TESSERA_STORE")
        .env("TESSERA_ADMIN_CLIENT_ID", admin.0)
        .env("TESSERA_ADMIN_CLIENT_SECRET", admin.1)
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(left.is_empty(), "tessera {args:?} --server wrote files: {left:?}");
    out
}

#[track_caller]
fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn failed(out: &Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A token for `id` asking for its registered scopes and audiences.
async fn token(server: &Server, id: &str, secret: &str) -> String {
    server.issued(id, secret).await
}

async fn admin_call(server: &Server, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Exchange {
    let mut request = server.http(method, path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes());
    }
    request.send().await
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A JWKS with one P-256 key, as a trusted issuer publishes it.
fn jwks_file(dir: &Path) -> String {
    let key = support::ClientKey::generate("platform-1", "ES256");
    let jwk: Value = serde_json::from_str(key.public_jwk()).unwrap();
    write(dir, "jwks.json", &json!({ "keys": [jwk] }).to_string())
}

#[tokio::test]
async fn every_cli_operation_works_through_the_server_without_the_store() {
    let server = Server::start();
    let admin_secret = bootstrap_admin(&server, "platform-admin", "tessera:admin");
    let admin = ("platform-admin", admin_secret.as_str());
    let url = server.url();
    let files = tempfile::tempdir().unwrap();

    // client create: the secret is printed once and works.
    let created: Value = serde_json::from_str(&succeeded(
        &remote(
            &url,
            admin,
            &["client", "create", "billing", "--scope", "invoices:read", "--json"],
        ),
        "client create",
    ))
    .unwrap();
    let billing_secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(server.grant("billing", &billing_secret).await.status, 200);

    let listed = succeeded(&remote(&url, admin, &["client", "list"]), "client list");
    assert!(
        listed.contains("billing") && listed.contains("platform-admin"),
        "{listed}"
    );
    let shown = succeeded(&remote(&url, admin, &["client", "show", "billing"]), "client show");
    assert!(shown.contains("scopes:     invoices:read"), "{shown}");

    succeeded(
        &remote(
            &url,
            admin,
            &[
                "client",
                "update",
                "billing",
                "--scope",
                "invoices:write",
                "--ttl",
                "120",
            ],
        ),
        "client update",
    );
    let shown: Value = serde_json::from_str(&succeeded(
        &remote(&url, admin, &["client", "show", "billing", "--json"]),
        "show",
    ))
    .unwrap();
    assert_eq!(shown["scopes"], json!(["invoices:write"]), "{shown}");
    assert_eq!(shown["token_ttl"], 120, "{shown}");

    succeeded(
        &remote(&url, admin, &["client", "disable", "billing"]),
        "client disable",
    );
    assert_eq!(server.grant("billing", &billing_secret).await.status, 401);
    succeeded(&remote(&url, admin, &["client", "enable", "billing"]), "client enable");
    assert_eq!(server.grant("billing", &billing_secret).await.status, 200);

    let rotated: Value = serde_json::from_str(&succeeded(
        &remote(
            &url,
            admin,
            &["client", "rotate-secret", "billing", "--keep-old-for", "0", "--json"],
        ),
        "rotate-secret",
    ))
    .unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(server.grant("billing", new_secret).await.status, 200);
    assert_eq!(server.grant("billing", &billing_secret).await.status, 401);

    let key = support::ClientKey::generate("k1", "ES256");
    let jwk = write(files.path(), "k1.jwk", key.public_jwk());
    let added = succeeded(
        &remote(
            &url,
            admin,
            &["client", "add-key", "billing", "--jwk", &jwk, "--kid", "k1"],
        ),
        "add-key",
    );
    assert!(added.contains("Registered key \"k1\""), "{added}");
    succeeded(
        &remote(&url, admin, &["client", "remove-key", "billing", "--kid", "k1"]),
        "remove-key",
    );

    let issuer = "https://platform.example";
    let jwks = jwks_file(files.path());
    succeeded(
        &remote(&url, admin, &["trust", "add", issuer, "--jwks-file", &jwks]),
        "trust add",
    );
    let trusted = succeeded(&remote(&url, admin, &["trust", "list"]), "trust list");
    assert!(trusted.contains("1 stored key(s)"), "{trusted}");
    succeeded(&remote(&url, admin, &["trust", "show", issuer]), "trust show");
    let identity = [
        "--issuer",
        issuer,
        "--subject",
        "system:serviceaccount:payments:billing",
    ];
    let mut add = vec!["client", "add-federated", "billing"];
    add.extend_from_slice(&identity);
    succeeded(&remote(&url, admin, &add), "add-federated");
    let mut remove = vec!["client", "remove-federated", "billing"];
    remove.extend_from_slice(&identity);
    succeeded(&remote(&url, admin, &remove), "remove-federated");
    succeeded(&remote(&url, admin, &["trust", "remove", issuer]), "trust remove");

    let added = succeeded(
        &remote(
            &url,
            admin,
            &["client", "add-certificate", "billing", "--san-dns", "Billing.Internal"],
        ),
        "add-certificate",
    );
    assert!(added.contains("billing.internal"), "{added}");
    succeeded(
        &remote(
            &url,
            admin,
            &[
                "client",
                "remove-certificate",
                "billing",
                "--san-dns",
                "billing.internal",
            ],
        ),
        "remove-certificate",
    );

    let keys = succeeded(&remote(&url, admin, &["keys", "list", "--json"]), "keys list");
    let first_kid = serde_json::from_str::<Value>(&keys).unwrap()[0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    succeeded(
        &remote(&url, admin, &["keys", "rotate", "--publish-ahead", "0"]),
        "keys rotate",
    );
    let revoked = succeeded(&remote(&url, admin, &["keys", "revoke", &first_kid]), "keys revoke");
    assert!(revoked.contains("Revoked signing key"), "{revoked}");
    let jwks = server.http("GET", "/.well-known/jwks.json").send().await.json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != first_kid.as_str()),
        "{jwks}"
    );

    succeeded(&remote(&url, admin, &["client", "delete", "billing"]), "client delete");
    let gone = failed(
        &remote(&url, admin, &["client", "show", "billing"]),
        "show of a deleted client",
    );
    assert!(gone.contains("no client \"billing\""), "{gone}");
}

#[tokio::test]
async fn the_output_is_the_same_with_store_and_server() {
    let server = Server::start();
    let admin_secret = bootstrap_admin(&server, "platform-admin", "tessera:admin");
    server.create_client(
        "billing",
        &["--scope", "invoices:read", "--audience", "https://ledger.internal"],
    );
    for args in [
        &["client", "list"][..],
        &["client", "list", "--json"],
        &["client", "show", "billing"],
        &["client", "show", "billing", "--json"],
        &["keys", "list"],
        &["keys", "list", "--json"],
        &["trust", "list"],
    ] {
        let local = succeeded(&server.cli(args), "with --store");
        let through_server = succeeded(
            &remote(&server.url(), ("platform-admin", &admin_secret), args),
            "with --server",
        );
        assert_eq!(local, through_server, "tessera {args:?}");
    }
}

#[tokio::test]
async fn a_client_without_the_admin_scope_is_refused_every_operation_and_learns_nothing() {
    let server = Server::start();
    let secret = server.create_client("billing", &["--scope", "invoices:read"]);
    server.create_client("ledger", &["--scope", "read"]);
    let token = token(&server, "billing", &secret).await;
    let calls: &[(&str, &str, Option<Value>)] = &[
        ("GET", "/admin/v1/clients", None),
        (
            "POST",
            "/admin/v1/clients",
            Some(json!({"client_id": "x", "scopes": ["a"]})),
        ),
        ("GET", "/admin/v1/clients/ledger", None),
        ("PATCH", "/admin/v1/clients/ledger", Some(json!({"scopes": ["b"]}))),
        ("DELETE", "/admin/v1/clients/ledger", None),
        ("POST", "/admin/v1/clients/ledger/disable", None),
        ("POST", "/admin/v1/clients/ledger/enable", None),
        ("POST", "/admin/v1/clients/ledger/rotate-secret", Some(json!({}))),
        ("POST", "/admin/v1/clients/ledger/keys", Some(json!({"jwk": "{}"}))),
        ("DELETE", "/admin/v1/clients/ledger/keys/k1", None),
        (
            "POST",
            "/admin/v1/clients/ledger/federated-identities",
            Some(json!({"issuer": "https://i", "subject": "s"})),
        ),
        (
            "POST",
            "/admin/v1/clients/ledger/federated-identities/remove",
            Some(json!({"issuer": "https://i", "subject": "s"})),
        ),
        (
            "POST",
            "/admin/v1/clients/ledger/certificates",
            Some(json!({"san_dns": "a.b"})),
        ),
        (
            "POST",
            "/admin/v1/clients/ledger/certificates/remove",
            Some(json!({"san_dns": "a.b"})),
        ),
        ("GET", "/admin/v1/signing-keys", None),
        ("POST", "/admin/v1/signing-keys/rotate", Some(json!({}))),
        ("POST", "/admin/v1/signing-keys/some-kid/revoke", None),
        ("GET", "/admin/v1/trusted-issuers", None),
        (
            "POST",
            "/admin/v1/trusted-issuers",
            Some(json!({"issuer": "https://i", "discovery": true})),
        ),
        ("GET", "/admin/v1/trusted-issuers/https%3A%2F%2Fi", None),
        ("DELETE", "/admin/v1/trusted-issuers/https%3A%2F%2Fi", None),
    ];
    for (method, path, body) in calls {
        let exchange = admin_call(&server, method, path, Some(&token), body.clone()).await;
        assert_eq!(exchange.status, 403, "{method} {path}\n{exchange}");
        assert_eq!(
            exchange.json()["error"],
            "insufficient_scope",
            "{method} {path}\n{exchange}"
        );
        // An existing client and a missing one get the same answer.
        let other = path.replace("/ledger", "/no-such-client");
        let twin = admin_call(&server, method, &other, Some(&token), body.clone()).await;
        assert_eq!(
            (twin.status, twin.json()),
            (exchange.status, exchange.json()),
            "{method} {other}\n{twin}"
        );
    }
    // Nothing changed.
    let listed = succeeded(&server.cli(&["client", "list", "--json"]), "client list");
    let clients: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(clients.as_array().unwrap().len(), 2, "{clients}");

    // And over gRPC: PERMISSION_DENIED with the same reason.
    let channel = tonic::transport::Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = AdminServiceClient::new(channel);
    let mut request = tonic::Request::new(pb::ClientRequest {
        client_id: "ledger".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let status = grpc.delete_client(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(support::grpc_oauth_error(&status), "insufficient_scope");
    let mut request = tonic::Request::new(pb::ListClientsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let status = grpc.list_clients(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    // The command line says so.
    let refused = failed(
        &remote(&server.url(), ("billing", &secret), &["client", "delete", "ledger"]),
        "a non-admin's client delete",
    );
    assert!(
        refused.contains("no admin") && refused.contains("--scope tessera:admin"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_read_only_admin_lists_but_cannot_change() {
    let server = Server::start();
    let reader_secret = bootstrap_admin(&server, "auditor", "tessera:admin:read");
    server.create_client("billing", &["--scope", "invoices:read"]);
    let reader = ("auditor", reader_secret.as_str());
    let listed = succeeded(&remote(&server.url(), reader, &["client", "list"]), "client list");
    assert!(listed.contains("billing"), "{listed}");
    succeeded(&remote(&server.url(), reader, &["keys", "list"]), "keys list");
    for change in [
        &["client", "disable", "billing"][..],
        &["client", "create", "x", "--scope", "a"],
        &["keys", "rotate"],
    ] {
        let refused = failed(&remote(&server.url(), reader, change), "a reader's change");
        assert!(refused.contains("tessera:admin"), "{change:?}: {refused}");
    }
    let token = token(&server, "auditor", &reader_secret).await;
    let exchange = admin_call(&server, "POST", "/admin/v1/clients/billing/disable", Some(&token), None).await;
    assert_eq!(exchange.status, 403, "{exchange}");
    assert!(
        exchange
            .header("www-authenticate")
            .is_some_and(|c| c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"tessera:admin\"")),
        "{exchange}"
    );
    assert_eq!(server.grant("billing", "wrong").await.status, 401);
    let shown = succeeded(&server.cli(&["client", "show", "billing", "--json"]), "show");
    assert_eq!(serde_json::from_str::<Value>(&shown).unwrap()["disabled"], false);
}

#[tokio::test]
async fn every_change_leaves_an_audit_line_naming_the_admin_and_never_the_secret() {
    let server = Server::start();
    let admin_secret = bootstrap_admin(&server, "platform-admin", "tessera:admin");
    let admin = ("platform-admin", admin_secret.as_str());
    let out = succeeded(
        &remote(
            &server.url(),
            admin,
            &["client", "create", "billing", "--scope", "a", "--json"],
        ),
        "create",
    );
    let billing_secret = serde_json::from_str::<Value>(&out).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    succeeded(
        &remote(&server.url(), admin, &["client", "disable", "billing"]),
        "disable",
    );
    succeeded(
        &remote(&server.url(), admin, &["client", "delete", "billing"]),
        "delete",
    );
    // Log lines are written off the request path: wait for the last.
    let log = server.logged("event=\"client_deleted\"", Duration::from_secs(5)).await;
    for event in ["client_created", "client_disabled", "client_deleted"] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("event=\"{event}\"")))
            .unwrap_or_else(|| panic!("no {event} line in:\n{log}"));
        assert!(line.contains("actor=client:platform-admin"), "{line}");
        assert!(line.contains("client_id=billing"), "{line}");
    }
    assert!(!log.contains(&billing_secret), "a secret in the log:\n{log}");
    assert!(!log.contains(&admin_secret), "the admin's secret in the log:\n{log}");
}

#[tokio::test]
async fn a_missing_foreign_or_wrong_audience_token_is_401_with_a_bearer_challenge_rfc6750_3() {
    let server = Server::start();
    // An admin client that may also ask for tokens for another service.
    let audience = admin_audience(&server);
    let secret = server.create_client(
        "platform-admin",
        &[
            "--scope",
            "tessera:admin",
            "--audience",
            &audience,
            "--audience",
            "https://ledger.internal",
        ],
    );
    let for_ledger = server
        .token_form(&format!(
            "grant_type=client_credentials&client_id=platform-admin&client_secret={secret}&resource=https://ledger.internal"
        ))
        .send()
        .await;
    assert_eq!(for_ledger.status, 200, "{for_ledger}");
    let ledger_token = for_ledger.json()["access_token"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, support::HttpRequest)> = vec![
        ("no token", server.http("GET", "/admin/v1/clients")),
        (
            "a token for another audience",
            server
                .http("GET", "/admin/v1/clients")
                .header("authorization", format!("Bearer {ledger_token}")),
        ),
        (
            "a token not issued here",
            server
                .http("GET", "/admin/v1/clients")
                .header("authorization", "Bearer eyJhbGciOiJub25lIn0.e30."),
        ),
        (
            "client credentials instead of a token",
            server.http("GET", "/admin/v1/clients").basic("platform-admin", &secret),
        ),
    ];
    for (what, request) in cases {
        let exchange = request.send().await;
        assert_eq!(exchange.status, 401, "{what}\n{exchange}");
        assert_eq!(exchange.json()["error"], "invalid_token", "{what}\n{exchange}");
        let challenge = exchange.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=") && challenge.contains("error=\"invalid_token\""),
            "{what}\n{exchange}"
        );
    }
    // The same client's admin token works.
    let admin_token = server
        .token_form(&format!(
            "grant_type=client_credentials&client_id=platform-admin&client_secret={secret}&resource={audience}"
        ))
        .send()
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let exchange = admin_call(&server, "GET", "/admin/v1/clients", Some(&admin_token), None).await;
    assert_eq!(exchange.status, 200, "{exchange}");
}

#[tokio::test]
async fn with_admin_listen_the_admin_api_is_there_alone_and_the_main_listener_answers_404() {
    let server = Server::builder().args(&["--admin-listen", "127.0.0.1:0"]).start();
    let admin_url = server
        .stdout()
        .lines()
        .find_map(|l| {
            l.strip_prefix("tessera admin API on ")?
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no admin listener line:\n{}", server.stdout()));
    // The issuer (and so the admin audience) is the main listener's.
    let secret = bootstrap_admin(&server, "platform-admin", "tessera:admin");
    let token = token(&server, "platform-admin", &secret).await;
    let main = admin_call(&server, "GET", "/admin/v1/clients", Some(&token), None).await;
    assert_eq!(main.status, 404, "{main}");
    let client = reqwest::Client::new();
    let admin = client
        .get(format!("{admin_url}/admin/v1/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    // The command line reaches it, tokens and all.
    let listed = succeeded(
        &remote(&admin_url, ("platform-admin", &secret), &["client", "list"]),
        "list",
    );
    assert!(listed.contains("platform-admin"), "{listed}");
    let refused = failed(
        &remote(&server.url(), ("platform-admin", &secret), &["client", "list"]),
        "list on the main listener",
    );
    assert!(!refused.is_empty());
}

#[tokio::test]
async fn bad_input_and_paging_abuse_get_clear_errors_and_never_a_500() {
    let server = Server::start();
    let secret = bootstrap_admin(&server, "platform-admin", "tessera:admin");
    let token = token(&server, "platform-admin", &secret).await;
    for id in ["a", "b", "c"] {
        server.create_client(id, &["--scope", "read"]);
    }
    // Paging: a page at a time, each client once; a huge page size is the maximum.
    let mut seen = Vec::new();
    let mut page_token = String::new();
    for _ in 0..10 {
        let page = admin_call(
            &server,
            "GET",
            &format!("/admin/v1/clients?page_size=2&page_token={page_token}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(page.status, 200, "{page}");
        let json = page.json();
        seen.extend(
            json["clients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["client_id"].as_str().unwrap().to_owned()),
        );
        page_token = json["next_page_token"].as_str().unwrap().to_owned();
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["a", "b", "c", "platform-admin"]);
    let all = admin_call(
        &server,
        "GET",
        "/admin/v1/clients?page_size=4294967295",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(all.json()["clients"].as_array().unwrap().len(), 4, "{all}");

    let huge = "x".repeat(300 * 1024);
    let cases: Vec<(&str, &str, Option<Vec<u8>>, u16)> = vec![
        ("GET", "/admin/v1/clients?page_token=not-ours!", None, 400),
        ("GET", "/admin/v1/clients?page_size=-1", None, 400),
        ("GET", "/admin/v1/clients?page_size=1&colour=blue", None, 400),
        ("POST", "/admin/v1/clients", Some(b"{not json".to_vec()), 400),
        ("POST", "/admin/v1/clients", Some(br#"{"client_id": 5}"#.to_vec()), 400),
        (
            "POST",
            "/admin/v1/clients",
            Some(br#"{"client_id": "x", "scope": ["a"]}"#.to_vec()),
            400,
        ),
        (
            "POST",
            "/admin/v1/clients",
            Some(br#"{"client_id": "x"}"#.to_vec()),
            400,
        ),
        (
            "POST",
            "/admin/v1/clients",
            Some(br#"{"client_id": "bad id", "scopes": ["a"]}"#.to_vec()),
            400,
        ),
        (
            "POST",
            "/admin/v1/clients",
            Some(br#"{"client_id": "a", "scopes": ["a"]}"#.to_vec()),
            409,
        ),
        (
            "POST",
            "/admin/v1/clients",
            Some(format!(r#"{{"client_id": "{huge}"}}"#).into_bytes()),
            413,
        ),
        (
            "PATCH",
            "/admin/v1/clients/a",
            Some(br#"{"client_id": "b", "scopes": ["x"]}"#.to_vec()),
            400,
        ),
        ("PATCH", "/admin/v1/clients/a", Some(b"{}".to_vec()), 400),
        (
            "PATCH",
            "/admin/v1/clients/a",
            Some(br#"{"token_ttl": 5, "default_token_ttl": true}"#.to_vec()),
            400,
        ),
        ("GET", "/admin/v1/clients/%FF%FE", None, 400),
        ("GET", "/admin/v1/clients/nobody", None, 404),
        (
            "POST",
            "/admin/v1/clients/a/keys",
            Some(br#"{"jwk": "{\"kty\":\"oct\",\"k\":\"AAAA\"}"}"#.to_vec()),
            400,
        ),
        ("POST", "/admin/v1/clients/a/keys", Some(br#"{}"#.to_vec()), 400),
        (
            "POST",
            "/admin/v1/clients/a/rotate-secret",
            Some(br#"{"keep_old_for_secs": -1}"#.to_vec()),
            400,
        ),
        (
            "POST",
            "/admin/v1/clients/a/certificates",
            Some(br#"{"san_dns": "a", "san_uri": "b:c"}"#.to_vec()),
            400,
        ),
        (
            "POST",
            "/admin/v1/signing-keys/rotate",
            Some(br#"{"alg": "HS256"}"#.to_vec()),
            400,
        ),
        ("POST", "/admin/v1/signing-keys/nokey/revoke", None, 404),
        (
            "POST",
            "/admin/v1/trusted-issuers",
            Some(br#"{"issuer": "https://i"}"#.to_vec()),
            400,
        ),
        (
            "POST",
            "/admin/v1/trusted-issuers",
            Some(format!(r#"{{"issuer": "{}", "discovery": true}}"#, server.url()).into_bytes()),
            400,
        ),
        ("PUT", "/admin/v1/clients", None, 405),
    ];
    for (method, path, body, status) in cases {
        let mut request = server
            .http(method, path)
            .header("authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let exchange = request.send().await;
        assert_eq!(exchange.status, status, "{method} {path}\n{exchange}");
        let json = exchange.json();
        assert!(
            json["error"].is_string() && json["error_description"].is_string(),
            "{method} {path}\n{exchange}"
        );
        assert!(
            exchange.body.len() <= 600,
            "a long error answer to {method} {path}\n{exchange}"
        );
    }
    assert!(!server.stderr().contains("internal error"), "{}", server.stderr());
}

/// The YAML of the issue, with a second client.
const CLIENTS: &str = "\
clients:
  - id: billing
    scopes: [invoices:read, invoices:write]
    audiences: [https://ledger.internal]
    token_ttl: 600        # optional
    disabled: false       # optional
  - id: reports
    scopes: [reports:read]
";

/// Where `apply` and `export` make their changes: `--store URL`, or
/// `--server URL` with an admin client's credentials.
struct Target {
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Target {
    fn store(server: &Server) -> Self {
        Self {
            args: vec!["--store".into(), server.store_url.clone()],
            envs: vec![],
        }
    }

    fn server(url: &str, admin: (&str, &str)) -> Self {
        Self {
            args: vec!["--server".into(), url.to_owned()],
            envs: vec![
                ("TESSERA_ADMIN_CLIENT_ID".into(), admin.0.to_owned()),
                ("TESSERA_ADMIN_CLIENT_SECRET".into(), admin.1.to_owned()),
            ],
        }
    }

    /// `tessera ARGS` with this target.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(tessera_bin())
            .args(args)
            .args(&self.args)
            .env_remove("TESSERA_STORE")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn apply(&self, file: &str, extra: &[&str]) -> Output {
        let mut args = vec!["apply", "-f", file];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// Every `apply` case of the issue, and `export`, through `target`, checked
/// against `server`.
async fn apply_cases(server: &Server, target: &Target) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "clients.yaml", CLIENTS);

    // --dry-run: the plan, and nothing changed.
    let plan = succeeded(&target.apply(&file, &["--dry-run"]), "apply --dry-run");
    assert!(
        plan.contains("create     billing") && plan.contains("create     reports"),
        "{plan}"
    );
    assert!(plan.contains("Dry run: nothing was changed."), "{plan}");
    assert_eq!(server.grant("billing", "x").await.status, 401);
    assert!(!succeeded(&target.run(&["export"]), "export").contains("billing"));

    // Create: the secrets go to --secrets-out (0600), and work.
    let secrets_out = dir.path().join("secrets.json");
    let applied = succeeded(
        &target.apply(&file, &["--secrets-out", secrets_out.to_str().unwrap()]),
        "apply",
    );
    assert!(applied.contains("Plan: 2 to create, 0 to update"), "{applied}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets_out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let secrets: Value = serde_json::from_slice(&std::fs::read(&secrets_out).unwrap()).unwrap();
    let secret_of = |id: &str| {
        secrets
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["client_id"] == id)
            .unwrap()["client_secret"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let granted = server.grant("billing", &secret_of("billing")).await;
    assert_eq!(granted.status, 200, "{granted}");
    assert_eq!(granted.json()["expires_in"], 600, "{granted}");
    assert!(
        !applied.contains(&secret_of("billing")),
        "the secret went to standard output too"
    );

    // A second run: no changes.
    let again = succeeded(&target.apply(&file, &[]), "apply again");
    assert!(
        again.contains("unchanged  billing") && again.contains("No changes."),
        "{again}"
    );

    // An update of scopes.
    let updated = CLIENTS.replace("[reports:read]", "[reports:read, reports:export]");
    let file2 = write(dir.path(), "clients2.yaml", &updated);
    let out = succeeded(&target.apply(&file2, &[]), "apply an update");
    assert!(
        out.contains("update     reports: scopes [reports:read] -> [reports:read, reports:export]"),
        "{out}"
    );

    // export, then apply: nothing to do.
    let exported = succeeded(&target.run(&["export"]), "export");
    let file3 = write(dir.path(), "exported.yaml", &exported);
    let out = succeeded(&target.apply(&file3, &[]), "apply of the export");
    assert!(out.contains("No changes."), "{exported}\n{out}");

    // A malformed file is refused whole, with its line, before any change.
    let bad = format!(
        "{updated}  - id: new-one\n    scopes: [a]\n  - id: broken\n    scopes: [ok]\n    audiences: [\"two words\"]\n"
    );
    let file4 = write(dir.path(), "bad.yaml", &bad);
    let refused = failed(&target.apply(&file4, &[]), "apply of a bad file");
    assert!(refused.contains("line 11") && refused.contains("audience"), "{refused}");
    let typo = write(dir.path(), "typo.yaml", "clients:\n  - id: x\n    scope: [a]\n");
    let refused = failed(&target.apply(&typo, &[]), "apply of a file with a typo");
    assert!(
        refused.contains("line 3") && refused.contains("nothing was changed"),
        "{refused}"
    );
    assert_eq!(server.grant("new-one", "x").await.status, 401);
    assert!(!succeeded(&target.run(&["export"]), "export").contains("new-one"));

    // --prune deletes what the file does not name, and only with the flag.
    let only_billing = "clients:\n  - id: billing\n    scopes: [invoices:read, invoices:write]\n    audiences: [https://ledger.internal]\n    token_ttl: 600\n";
    let file5 = write(dir.path(), "pruned.yaml", only_billing);
    let kept = succeeded(&target.apply(&file5, &[]), "apply without --prune");
    assert!(
        kept.contains("--prune would delete them") && !kept.contains("delete     reports"),
        "{kept}"
    );
    assert!(succeeded(&target.run(&["export"]), "export").contains("reports"));
    let pruned = succeeded(&target.apply(&file5, &["--prune"]), "apply --prune");
    assert!(pruned.contains("delete     reports"), "{pruned}");
    let listed = succeeded(&target.run(&["export"]), "export");
    assert!(!listed.contains("reports") && listed.contains("billing"), "{listed}");
}

#[tokio::test]
async fn apply_and_export_on_a_sqlite_store() {
    let server = Server::start();
    apply_cases(&server, &Target::store(&server)).await;
}

#[tokio::test]
async fn apply_never_prunes_the_admin_client_running_it() {
    let server = Server::start();
    let secret = bootstrap_admin(&server, "platform-admin", "tessera:admin");
    let target = Target::server(&server.url(), ("platform-admin", &secret));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "clients.yaml", CLIENTS);
    let out = succeeded(&target.apply(&file, &["--prune"]), "apply --prune");
    assert!(out.contains("keep       platform-admin"), "{out}");
    assert!(succeeded(&target.run(&["export"]), "export").contains("platform-admin"));
}

#[tokio::test]
async fn apply_through_one_postgres_replica_is_in_force_at_another_within_2s() {
    let Some(cluster) = PgCluster::start_or_skip("apply_through_one_postgres_replica_is_in_force_at_another_within_2s")
    else {
        return;
    };
    let url = cluster.create_database("tessera");
    // Replicas that poll once a minute: a change seen within 2 s is
    // PostgreSQL's notification at work.
    let replica = || {
        Server::builder()
            .store(Arc::new(tempfile::tempdir().unwrap()), url.clone())
            .args(&["--issuer", "http://tessera.test", "--store-poll-ms", "60000"])
            .start()
    };
    let (a, b) = (replica(), replica());
    let admin_secret = a.create_client(
        "platform-admin",
        &["--scope", "tessera:admin", "--audience", "http://tessera.test/admin"],
    );
    let through_a = Target::server(&a.url(), ("platform-admin", &admin_secret));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "clients.yaml", CLIENTS);
    let out = succeeded(&through_a.apply(&file, &[]), "apply through replica A");
    let reports_secret = out
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .unwrap_or_else(|| panic!("no secret printed for reports:\n{out}"))
        .to_owned();
    assert_eq!(a.grant("reports", &reports_secret).await.status, 200);
    assert!(
        eventually(Duration::from_secs(2), async || b
            .grant("reports", &reports_secret)
            .await
            .status
            == 200)
        .await,
        "replica B does not serve the client applied through A within 2 s"
    );
    let disabled = CLIENTS.replace(
        "    scopes: [reports:read]\n",
        "    scopes: [reports:read]\n    disabled: true\n",
    );
    let file2 = write(dir.path(), "disabled.yaml", &disabled);
    let said = succeeded(&through_a.apply(&file2, &[]), "apply a disable through A");
    assert!(said.contains("update     reports: disable"), "{said}");
    assert!(
        eventually(Duration::from_secs(2), async || b
            .grant("reports", &reports_secret)
            .await
            .status
            == 401)
        .await,
        "replica B still serves the client disabled through A after 2 s"
    );
    // Then every apply case, through replica B, on a fresh database.
    drop((a, b));
    let fresh = cluster.create_database("fresh");
    let server = Server::builder()
        .store(Arc::new(tempfile::tempdir().unwrap()), fresh)
        .args(&["--issuer", "http://tessera.test"])
        .start();
    let secret = server.create_client(
        "platform-admin",
        &["--scope", "tessera:admin", "--audience", "http://tessera.test/admin"],
    );
    apply_cases(&server, &Target::server(&server.url(), ("platform-admin", &secret))).await;
}

#[tokio::test]
async fn the_admin_api_never_trusts_the_server_s_own_issuer() {
    let server = Server::builder().args(&["--issuer", "https://tessera.test"]).start();
    let secret = server.create_client(
        "platform-admin",
        &["--scope", "tessera:admin", "--audience", "https://tessera.test/admin"],
    );
    let token = token(&server, "platform-admin", &secret).await;
    let exchange = admin_call(
        &server,
        "POST",
        "/admin/v1/trusted-issuers",
        Some(&token),
        Some(json!({"issuer": "https://tessera.test", "discovery": true})),
    )
    .await;
    assert_eq!(exchange.status, 400, "{exchange}");
    assert!(
        exchange.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("own issuer"),
        "{exchange}"
    );
}

#[tokio::test]
async fn admin_credentials_are_read_from_a_private_file_only() {
    let server = Server::start();
    let secret = bootstrap_admin(&server, "platform-admin", "tessera:admin");
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "admin.json",
        &json!({"client_id": "platform-admin", "client_secret": secret}).to_string(),
    );
    let list = |file: &str| {
        Command::new(tessera_bin())
            .args([
                "client",
                "list",
                "--server",
                &server.url(),
                "--admin-credentials-file",
                file,
            ])
            .env_remove("TESSERA_STORE")
            .env_remove("TESSERA_ADMIN_CLIENT_ID")
            .env_remove("TESSERA_ADMIN_CLIENT_SECRET")
            .output()
            .unwrap()
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = failed(&list(&file), "a shared credentials file");
        assert!(refused.contains("chmod"), "{refused}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let listed = succeeded(&list(&file), "a private credentials file");
    assert!(listed.contains("platform-admin"), "{listed}");
    // Without credentials, --server says how to give them.
    let out = Command::new(tessera_bin())
        .args(["client", "list", "--server", &server.url()])
        .env_remove("TESSERA_STORE")
        .env_remove("TESSERA_ADMIN_CLIENT_ID")
        .env_remove("TESSERA_ADMIN_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_ADMIN_CLIENT_ID"));
}

#[tokio::test]
async fn apply_manages_keys_identities_and_certificates_and_export_round_trips_them() {
    let server = Server::start();
    let target = Target::store(&server);
    let dir = tempfile::tempdir().unwrap();
    let jwks = jwks_file(dir.path());
    succeeded(
        &target.run(&["trust", "add", "https://platform.example", "--jwks-file", &jwks]),
        "trust add",
    );
    let key = support::ClientKey::generate("k1", "ES256");
    let jwk: Value = serde_json::from_str(key.public_jwk()).unwrap();
    let yaml = format!(
        "clients:\n  - id: reports\n    scopes: [reports:read]\n    secret: false\n    keys:\n      - kid: k1\n        jwk: {jwk}\n    federated_identities:\n      - issuer: https://platform.example\n        subject: system:serviceaccount:reports:reports\n    certificates:\n      - san_dns: Reports.Internal\n"
    );
    let file = write(dir.path(), "clients.yaml", &yaml);
    let out = succeeded(&target.apply(&file, &[]), "apply");
    assert!(
        out.contains("create     reports") && !out.contains("Secrets of the new clients"),
        "{out}"
    );
    let shown: Value = serde_json::from_str(&succeeded(
        &target.run(&["client", "show", "reports", "--json"]),
        "show",
    ))
    .unwrap();
    assert_eq!(shown["keys"][0]["kid"], "k1", "{shown}");
    assert_eq!(shown["federated"][0]["issuer"], "https://platform.example", "{shown}");
    assert_eq!(shown["certificates"][0]["value"], "reports.internal", "{shown}");
    assert_eq!(shown["secrets"], json!([]), "{shown}");
    let again = succeeded(&target.apply(&file, &[]), "apply again");
    assert!(again.contains("No changes."), "{again}");
    let exported = succeeded(&target.run(&["export"]), "export");
    let file2 = write(dir.path(), "exported.yaml", &exported);
    assert!(
        succeeded(&target.apply(&file2, &[]), "apply of the export").contains("No changes."),
        "{exported}"
    );
    // An empty list is managed: it removes what is there.
    let emptied = yaml.replace(
        &format!("    keys:\n      - kid: k1\n        jwk: {jwk}\n"),
        "    keys: []\n",
    );
    let file3 = write(dir.path(), "emptied.yaml", &emptied);
    let out = succeeded(&target.apply(&file3, &[]), "apply with no keys");
    assert!(out.contains("update     reports: remove key k1"), "{out}");
    let shown: Value = serde_json::from_str(&succeeded(
        &target.run(&["client", "show", "reports", "--json"]),
        "show",
    ))
    .unwrap();
    assert_eq!(shown["keys"], json!([]), "{shown}");
}

#[tokio::test]
async fn the_cli_asks_for_a_token_for_the_admin_audience_alone_even_where_audiences_are_required() {
    let server = Server::builder().args(&["--require-audience"]).start();
    let audience = admin_audience(&server);
    // An admin client that may also ask for tokens for another service.
    let secret = server.create_client(
        "platform-admin",
        &[
            "--scope",
            "tessera:admin",
            "--audience",
            "https://ledger.internal",
            "--audience",
            &audience,
        ],
    );
    let listed = succeeded(
        &remote(&server.url(), ("platform-admin", &secret), &["client", "list"]),
        "list",
    );
    assert!(listed.contains("platform-admin"), "{listed}");
    let issued = server.logged("event=\"token_issued\"", Duration::from_secs(5)).await;
    let line = issued
        .lines()
        .find(|l| l.contains("event=\"token_issued\"") && l.contains("client_id=platform-admin"))
        .unwrap_or_else(|| panic!("no token_issued line:\n{issued}"));
    assert!(line.contains(&format!("aud={audience} ")), "{line}");
    assert!(
        !line.contains("ledger"),
        "the admin token names another service too: {line}"
    );
}

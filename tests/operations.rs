//! End to end: running Tessera in production. TLS and mutual TLS on the one
//! listener, certificate reload, health, reflection, metrics, graceful
//! shutdown, logs without secrets, and limits — against real `tessera`
//! processes, with curl and tonic as the clients.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use support::{ClientKey, Server, TestPki, curl, eventually, grpc_oauth_error, issue_request, path, register_key};
use tessera_proto::pb;
use tessera_proto::pb::token_service_client::TokenServiceClient;
use tessera_server::keys::KeyAlgorithm;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn tls_server(pki: &TestPki, extra: &[&str]) -> Server {
    let mut args = vec!["--tls-cert", path(&pki.cert), "--tls-key", path(&pki.key)];
    args.extend_from_slice(extra);
    Server::builder().args(&args).start()
}

/// The README's token request, over HTTPS against the test CA.
fn curl_token(server: &Server, ca: &Path, id: &str, secret: &str, extra: &[&str]) -> Output {
    let url = format!("https://localhost:{}/oauth2/token", server.addr.port());
    let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let resolve = format!("localhost:{}:127.0.0.1", server.addr.port());
    let mut args = vec!["--resolve", &resolve, "--cacert", path(ca), "-X", "POST", &url];
    args.extend_from_slice(&["-H", "Content-Type: application/x-www-form-urlencoded", "-d", &body]);
    args.extend_from_slice(extra);
    curl(&args)
}

async fn tls_channel(server: &Server, pki: &TestPki, identity: bool) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()))
        .domain_name("localhost");
    if identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&pki.client_cert).unwrap(),
            std::fs::read(&pki.client_key).unwrap(),
        ));
    }
    Channel::from_shared(format!("https://127.0.0.1:{}", server.addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

#[tokio::test]
async fn a_token_over_https_with_the_readme_curl_line() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "https");
    let server = tls_server(&pki, &[]);
    assert_eq!(server.scheme, "https");
    let secret = server.create_client("svc", &["--scope", "read"]);
    let out = curl_token(&server, &pki.ca, "svc", &secret, &[]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(json["token_type"], "Bearer", "{body}");
    // Plain HTTP on a TLS port gets no token.
    let plain = curl(&[&format!(
        "http://127.0.0.1:{}/.well-known/jwks.json",
        server.addr.port()
    )]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("keys"));
}

#[tokio::test]
async fn a_token_over_grpc_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "grpc");
    let server = tls_server(&pki, &[]);
    let secret = server.create_client("svc", &["--scope", "read"]);
    let channel = tls_channel(&server, &pki, false).await.unwrap();
    let issued = TokenServiceClient::new(channel)
        .issue_token(issue_request("svc", &secret))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.token_type, "Bearer");
    assert_eq!(issued.scopes, ["read"]);
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "mtls");
    let server = tls_server(&pki, &["--tls-client-ca", path(&pki.ca)]);
    assert!(server.stdout().contains("client certificates required"));
    let secret = server.create_client("svc", &["--scope", "read"]);
    let refused = curl_token(&server, &pki.ca, "svc", &secret, &[]);
    assert!(
        !refused.status.success(),
        "a client without a certificate got an answer: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let accepted = curl_token(
        &server,
        &pki.ca,
        "svc",
        &secret,
        &["--cert", path(&pki.client_cert), "--key", path(&pki.client_key)],
    );
    assert!(
        accepted.status.success() && String::from_utf8_lossy(&accepted.stdout).contains("access_token"),
        "{}{}",
        String::from_utf8_lossy(&accepted.stdout),
        String::from_utf8_lossy(&accepted.stderr)
    );
    // The same over gRPC.
    let without = match tls_channel(&server, &pki, false).await {
        Ok(channel) => TokenServiceClient::new(channel)
            .issue_token(issue_request("svc", &secret))
            .await
            .err(),
        Err(_) => None,
    };
    if let Some(status) = &without {
        assert_ne!(status.code(), tonic::Code::Ok);
    }
    let channel = tls_channel(&server, &pki, true).await.unwrap();
    TokenServiceClient::new(channel)
        .issue_token(issue_request("svc", &secret))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(dir.path(), "old");
    let server = tls_server(&pki, &[]);
    let secret = server.create_client("svc", &["--scope", "read"]);
    let renewed = TestPki::write(dir.path(), "new");
    assert!(
        !curl_token(&server, &renewed.ca, "svc", &secret, &[]).status.success(),
        "the new CA cannot verify the old certificate"
    );
    // Renewal as cert managers do it: new files over the old paths.
    std::fs::copy(&renewed.key, &pki.key).unwrap();
    std::fs::copy(&renewed.cert, &pki.cert).unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || curl_token(
            &server,
            &renewed.ca,
            "svc",
            &secret,
            &[]
        )
        .status
        .success())
        .await,
        "the renewed certificate was not picked up; log:\n{}",
        server.stderr()
    );
    assert!(
        eventually(Duration::from_secs(2), async || server
            .stderr()
            .contains("TLS certificate reloaded"))
        .await,
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn reflection_lists_the_token_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = Server::start();
    let channel = Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(futures_util::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"tessera.v1.TokenService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test]
async fn metrics_count_an_issuance_and_a_failure_by_face_and_outcome() {
    let server = Server::builder().args(&["--failure-limit", "0"]).start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let ok = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(ok.status, 200, "{ok}");
    server
        .token_form("grant_type=client_credentials")
        .basic("svc", "wrong")
        .send()
        .await
        .assert_error(401, "invalid_client");
    let status = server
        .grpc()
        .await
        .issue_token(issue_request("svc", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(grpc_oauth_error(&status), "invalid_client");
    let metrics = server.http("GET", "/metrics").send().await;
    assert_eq!(metrics.status, 200, "{metrics}");
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
    for line in [
        r#"tessera_requests_total{face="http",endpoint="token",outcome="ok"} 1"#,
        r#"tessera_requests_total{face="http",endpoint="token",outcome="invalid_client"} 1"#,
        r#"tessera_requests_total{face="grpc",endpoint="issue_token",outcome="invalid_client"} 1"#,
        "tessera_signing_keys_active 1",
        "tessera_store_reachable 1",
    ] {
        assert!(metrics.body.contains(line), "no {line:?} in\n{}", metrics.body);
    }
    assert!(metrics.body.contains("tessera_hashing_wait_seconds_count"));
    assert!(metrics.body.contains("tessera_request_duration_seconds_bucket"));
    assert!(!metrics.body.contains("svc"), "client ids are not labels");
}

#[tokio::test]
async fn every_response_carries_a_request_id_that_its_log_lines_share() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let ok = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    let id = ok.header("x-request-id").expect("x-request-id").to_owned();
    assert_eq!(id.len(), 16, "{ok}");
    assert!(
        eventually(Duration::from_secs(5), async || server
            .stderr()
            .lines()
            .any(|l| l.contains(&id) && l.contains("token_issued")))
        .await,
        "no audit line carries request id {id}:\n{}",
        server.stderr()
    );
}

#[tokio::test]
async fn health_reports_serving_then_not_serving_during_shutdown_which_exits_0() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let mut server = Server::builder().args(&["--drain-timeout", "2"]).start();
    assert_eq!(server.http("GET", "/health/ready").send().await.status, 200);
    let channel = Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    let checked = health
        .check(HealthCheckRequest {
            service: "tessera.v1.TokenService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.status(), ServingStatus::Serving);
    // A watch stays open across the shutdown and sees the change.
    let mut watch = health
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let _ = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a status change within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("exits within the drain deadline");
    assert!(status.success(), "exit status {status:?}; log:\n{}", server.stderr());
    assert!(server.stderr().contains("shutting down"), "{}", server.stderr());
}

#[tokio::test]
async fn sigterm_during_a_burst_fails_no_request_already_accepted() {
    let mut server = Server::builder().args(&["--drain-timeout", "20"]).start();
    // Distinct clients: each request is a cold argon2 verification, so the
    // burst is still in flight when the signal arrives.
    let mut clients = Vec::new();
    for i in 0..6 {
        let id = format!("svc{i}");
        let secret = server.create_client(&id, &["--scope", "read"]);
        clients.push((id, secret));
    }
    let burst: Vec<_> = clients
        .iter()
        .map(|(id, secret)| {
            let request = server.token_form("grant_type=client_credentials").basic(id, secret);
            tokio::spawn(async move { request.try_send().await })
        })
        .collect();
    // Signal only once the server holds every request of the burst: each is
    // answered already, verifying, or queued for a verification.
    let metric = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let accepted = async || {
        let text = server.http("GET", "/metrics").send().await.body;
        metric(
            &text,
            r#"tessera_requests_total{face="http",endpoint="token",outcome="ok"} "#,
        ) + metric(&text, "tessera_hashing_busy ")
            + metric(&text, "tessera_hashing_queue_depth ")
    };
    // Twice in a row: a finished verification's slot is freed just after its
    // answer, so one reading can count a request twice for a moment.
    assert!(
        eventually(Duration::from_secs(10), async || accepted().await >= 6
            && accepted().await >= 6)
        .await,
        "the burst never reached the server"
    );
    let _ = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status();
    let started = Instant::now();
    for answer in burst {
        let exchange = answer
            .await
            .unwrap()
            .expect("an accepted request was cut off by SIGTERM");
        assert_eq!(exchange.status, 200, "{exchange}");
    }
    let status = server.terminate(Duration::from_secs(20)).expect("exits after draining");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // And it is gone: new connections are refused.
    assert!(server.http("GET", "/health/live").try_send().await.is_err());
}

#[tokio::test]
async fn no_secret_credential_assertion_token_or_key_reaches_the_logs_at_trace() {
    let server = Server::builder().args(&[]).envs(&[("RUST_LOG", "trace")]).start();
    let secret = server.create_client("svc", &["--scope", "read", "--scope", "tessera:introspect"]);
    let key: ClientKey = register_key(&server, "svc", "k1", KeyAlgorithm::Es256);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = key.sign(&json!({
        "iss": "svc", "sub": "svc", "aud": server.url(), "iat": now, "exp": now + 60, "jti": "trace-1",
    }));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{secret}"));
    // Issuance: Basic, post, assertion; a failure; over both faces.
    let token = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .token_form(&format!(
            "grant_type=client_credentials&client_id=svc&client_secret={secret}"
        ))
        .send()
        .await;
    server
        .token_form(&format!(
            "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion={assertion}"
        ))
        .send()
        .await;
    server
        .token_form("grant_type=client_credentials")
        .basic("svc", "wrong-secret-value")
        .send()
        .await;
    let mut grpc = server.grpc().await;
    let grpc_token = grpc
        .issue_token(issue_request("svc", &secret))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    // Introspection and revocation, both faces.
    server
        .form("/oauth2/introspect")
        .basic("svc", &secret)
        .body(format!("token={token}").into_bytes())
        .send()
        .await;
    let mut request = tonic::Request::new(pb::IntrospectTokenRequest {
        token: grpc_token.clone(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    grpc.introspect_token(request).await.unwrap();
    server
        .form("/oauth2/revoke")
        .basic("svc", &secret)
        .body(format!("token={token}").into_bytes())
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(logs.len() > 1000, "TRACE logging produced almost nothing:\n{logs}");
    let signature = |jwt: &str| jwt.rsplit('.').next().unwrap().to_owned();
    for (what, needle) in [
        ("the client secret", secret.clone()),
        ("the wrong secret", "wrong-secret-value".to_owned()),
        ("the Basic credential", basic.clone()),
        ("the assertion", assertion.clone()),
        ("the assertion's signature", signature(&assertion)),
        ("an HTTP token", token.clone()),
        ("an HTTP token's signature", signature(&token)),
        ("a gRPC token's signature", signature(&grpc_token)),
    ] {
        assert!(!logs.contains(&needle), "{what} appears in the logs");
    }
    // The server's private signing key: the store holds it as PKCS#8; no PEM
    // or DER of a private key appears in the log.
    assert!(!logs.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn an_oversized_grpc_message_is_refused() {
    let server = Server::start();
    let mut request = issue_request("svc", "x");
    request.scopes = vec!["s".repeat(100 * 1024)];
    let status = server.grpc().await.issue_token(request).await.unwrap_err();
    // tonic reports a message over the decoding limit as OUT_OF_RANGE.
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// 1 GiB of zeros, gzip-compressed: about 1 MiB on the wire.
fn gzip_bomb() -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", "head -c 1073741824 /dev/zero | gzip -1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[tokio::test]
async fn a_compressed_bomb_is_refused_on_both_faces_and_memory_stays_bounded() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let bomb = gzip_bomb();
    let before = rss_kib(server.pid());
    // HTTP: nothing is decompressed; a compressed body is refused as such.
    let small = server
        .token_form("")
        .header("content-encoding", "gzip")
        .body(bomb[..8 * 1024].to_vec())
        .send()
        .await;
    small.assert_error(400, "invalid_request");
    assert!(
        small.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("compressed")
    );
    // gRPC: a gzip message the server never offered to accept.
    let mut client = server
        .grpc()
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let mut request = issue_request("svc", &secret);
    request.scopes = vec!["a".repeat(60 * 1024)];
    let status = client.issue_token(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    let after = rss_kib(server.pid());
    assert!(after < before + 64 * 1024, "RSS grew from {before} KiB to {after} KiB");
    // Still serving.
    let ok = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(ok.status, 200, "{ok}");
}

#[tokio::test]
async fn a_slow_sender_is_cut_off_rather_than_held() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start();
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Headers promise a body that never comes.
    stream
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn the_openapi_document_is_served_as_kept_in_the_repository_and_names_every_endpoint() {
    let server = Server::start();
    let served = server.http("GET", "/openapi.json").send().await;
    assert_eq!(served.status, 200, "{served}");
    assert_eq!(served.header("content-type"), Some("application/json"));
    let document = served.json();
    let kept: serde_json::Value = serde_json::from_str(include_str!("../server/api/openapi.json")).unwrap();
    assert_eq!(document, kept);
    assert_eq!(document["openapi"], "3.1.0");
    for (path, method) in [
        ("/oauth2/token", "post"),
        ("/oauth2/introspect", "post"),
        ("/oauth2/revoke", "post"),
        ("/.well-known/jwks.json", "get"),
        ("/.well-known/oauth-authorization-server", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
        let answer = server.http(&method.to_uppercase(), path).send().await;
        assert_ne!(
            answer.status, 404,
            "{method} {path} is described but not served: {answer}"
        );
    }
}

/// What a load of keep-alive clients saw across a shutdown.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Complete 200 answers.
    ok: u64,
    /// ... of which after SIGTERM.
    ok_after_signal: u64,
    /// Requests sent that got no complete answer, or not a 200.
    failed: u64,
    /// Calls the client never sent, and sent again.
    not_sent: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.ok += other.ok;
        self.ok_after_signal += other.ok_after_signal;
        self.failed += other.failed;
        self.not_sent += other.not_sent;
    }
}

/// One HTTP/1.1 keep-alive client that never retries, as a POST is not
/// retried by real clients: it sends `request` again and again on one
/// connection, reconnecting only when an answer says `Connection: close`,
/// until a connection is refused (the listener closed: the load balancer's
/// cue, not a failure) or `until` passes.
async fn keep_alive_client(
    addr: std::net::SocketAddr,
    request: Vec<u8>,
    signalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    until: Instant,
) -> Tally {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut tally = Tally::default();
    while Instant::now() < until {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            return tally;
        };
        stream.set_nodelay(true).unwrap();
        let mut stream = BufReader::new(stream);
        loop {
            if Instant::now() >= until {
                return tally;
            }
            if stream.get_mut().write_all(&request).await.is_err() {
                tally.failed += 1;
                break;
            }
            let answered = async {
                let mut status_line = String::new();
                if stream.read_line(&mut status_line).await.ok()? == 0 {
                    return None;
                }
                let (mut length, mut close) = (0usize, false);
                loop {
                    let mut line = String::new();
                    stream.read_line(&mut line).await.ok()?;
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().ok()?;
                    }
                    close |= line == "connection: close";
                }
                let mut body = vec![0; length];
                stream.read_exact(&mut body).await.ok()?;
                Some((status_line.starts_with("HTTP/1.1 200"), close))
            };
            match tokio::time::timeout(Duration::from_secs(10), answered).await {
                Ok(Some((true, close))) => {
                    tally.ok += 1;
                    if signalled.load(Ordering::Acquire) {
                        tally.ok_after_signal += 1;
                    }
                    if close {
                        break;
                    }
                }
                _ => {
                    tally.failed += 1;
                    break;
                }
            }
        }
    }
    tally
}

/// With `--drain-delay`, a rolling restart under keep-alive HTTP/1.1 load
/// fails no request: readiness turns 503 at once, answers carry
/// `Connection: close` so clients leave after a complete answer, and the
/// listener closes only after the delay.
#[tokio::test]
async fn a_rolling_restart_under_keep_alive_http_load_fails_no_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut server = Server::builder()
        .args(&["--drain-delay", "2", "--drain-timeout", "10"])
        .start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    // Warm: the load measures the drain, not argon2.
    let warm = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(warm.status, 200, "{warm}");
    let body = "grant_type=client_credentials";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{secret}"));
    let request = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: tessera\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    let signalled = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(15);
    let clients: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(keep_alive_client(
                server.addr,
                request.clone(),
                signalled.clone(),
                until,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status();
    signalled.store(true, Ordering::Release);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = server.http("GET", "/health/ready").send().await;
    assert_eq!(ready.status, 503, "readiness turns at once; {ready}");
    let mut tally = Tally::default();
    for client in clients {
        tally += client.await.unwrap();
    }
    let status = server.terminate(Duration::from_secs(15)).expect("exits after draining");
    assert!(status.success(), "{status:?}");
    assert_eq!(tally.failed, 0, "{tally:?}; log:\n{}", server.stderr());
    assert!(tally.ok_after_signal > 0, "still answering during the delay: {tally:?}");
    assert!(Instant::now() < until, "every client stopped at a refused connection");
}

/// The same for gRPC: HTTP/2 connections get a GOAWAY when draining starts,
/// the channel reconnects, and no call fails. A call the client had queued
/// on a connection as its GOAWAY arrived was never sent (hyper says
/// `Canceled`); gRPC's own clients retry those transparently (gRPC A6,
/// "transparent retry"), and tonic leaves it to the caller, so this caller
/// does what grpcio does and sends it again.
#[tokio::test]
async fn a_rolling_restart_under_grpc_load_fails_no_call() {
    let mut server = Server::builder()
        .args(&["--drain-delay", "2", "--drain-timeout", "10"])
        .start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let channel = Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
    let warm = TokenServiceClient::new(channel.clone())
        .issue_token(issue_request("svc", &secret))
        .await;
    assert!(warm.is_ok(), "{warm:?}");
    let signalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(15);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let mut client = TokenServiceClient::new(channel.clone());
            let (secret, signalled) = (secret.clone(), signalled.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut refusals = Vec::new();
                while Instant::now() < until {
                    match client.issue_token(issue_request("svc", &secret)).await {
                        Ok(_) => {
                            tally.ok += 1;
                            if signalled.load(std::sync::atomic::Ordering::Acquire) {
                                tally.ok_after_signal += 1;
                            }
                        }
                        // The listener has closed: the cue to go elsewhere,
                        // and the call was never sent.
                        Err(status) if format!("{status:?}").contains("onnection refused") => break,
                        Err(status) if format!("{status:?}").contains("Canceled") => tally.not_sent += 1,
                        Err(status) => {
                            tally.failed += 1;
                            refusals.push(format!("{status:?}"));
                            break;
                        }
                    }
                }
                (tally, refusals)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status();
    signalled.store(true, std::sync::atomic::Ordering::Release);
    let mut tally = Tally::default();
    let mut errors = Vec::new();
    for caller in callers {
        let (t, e) = caller.await.unwrap();
        tally += t;
        errors.extend(e);
    }
    let status = server.terminate(Duration::from_secs(15)).expect("exits after draining");
    assert!(status.success(), "{status:?}");
    assert_eq!(tally.failed, 0, "{tally:?}: {errors:#?}");
    assert!(tally.ok_after_signal > 0, "still answering during the delay: {tally:?}");
}

/// Connections that send nothing give their slots back: with
/// `--max-connections 3`, three silent sockets hold every slot only until
/// the first-request timeout (10 s), and a real request waiting in the
/// backlog is then answered.
#[tokio::test]
async fn silent_connections_give_their_slots_back_after_the_first_request_timeout() {
    use std::io::Read;
    let server = Server::builder().args(&["--max-connections", "3"]).start();
    let silent: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(30), server.http("GET", "/health/live").send())
        .await
        .expect("answered once the silent sockets timed out");
    assert_eq!(answer.status, 200, "{answer}");
    let held = started.elapsed();
    println!("silent sockets held every slot for {held:?}");
    assert!(held >= Duration::from_secs(5), "the slots were really taken ({held:?})");
    for mut socket in silent {
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(socket.read(&mut buf).unwrap_or(0), 0, "closed by the server");
    }
}

/// One address cannot take every slot: past `--max-connections-per-address`
/// its further connections are closed at once, while the slots stay free for
/// other hosts.
#[tokio::test]
async fn one_address_holds_at_most_its_share_of_connections() {
    use std::io::Read;
    let server = Server::builder().args(&["--max-connections-per-address", "2"]).start();
    let _held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    let mut third = std::net::TcpStream::connect(server.addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(third.read(&mut buf).unwrap_or(0), 0, "closed at once");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Another host (another loopback address) is served meanwhile.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(server.addr).await.unwrap();
    other
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), other.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

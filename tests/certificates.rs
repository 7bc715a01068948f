//! End to end: client certificates as credentials, and tokens bound to them
//! (RFC 8705). A real `tessera serve` on TLS, configured with the real CLI;
//! a test PKI made here (rcgen): the server's certificate, a client CA, and
//! client certificates with URI and DNS SANs, a subject DN, expired ones,
//! ones from another CA, and self-signed ones. curl speaks HTTP, tonic gRPC.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use base64::Engine as _;
use serde_json::Value;
use support::certs::{ClientCa, ClientCert, Names};
use support::{Server, TestPki, curl, path};
use tessera_proto::pb;
use tessera_proto::pb::token_service_client::TokenServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const BILLING_SPIFFE_ID: &str = "spiffe://example.org/ns/payments/sa/billing";

/// A Tessera on TLS with its own server certificate, asking clients for
/// certificates as `auth` says, chained to `client_ca` when one is given.
struct Mtls {
    server: Server,
    pki: TestPki,
    dir: tempfile::TempDir,
}

impl Mtls {
    /// A Tessera asking for certificates optionally, with a fresh client CA.
    fn optional_with_ca() -> (Self, ClientCa, [tempfile::TempDir; 2]) {
        let ca_dir = tempfile::tempdir().unwrap();
        let ca = ClientCa::new(ca_dir.path(), "clients");
        let (tessera, certs) = Self::start(Some(&ca), Some("optional"), &[]);
        (tessera, ca, [ca_dir, certs])
    }

    fn start(client_ca: Option<&ClientCa>, auth: Option<&str>, extra: &[&str]) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::write(dir.path(), "server");
        let mut args = vec![
            "--tls-cert".to_owned(),
            path(&pki.cert).to_owned(),
            "--tls-key".to_owned(),
            path(&pki.key).to_owned(),
        ];
        if let Some(ca) = client_ca {
            args.extend(["--tls-client-ca".to_owned(), path(&ca.ca).to_owned()]);
        }
        if let Some(auth) = auth {
            args.extend(["--tls-client-auth".to_owned(), auth.to_owned()]);
        }
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::builder().args(&args).start();
        let certs = tempfile::tempdir().unwrap();
        (Self { server, pki, dir }, certs)
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.server.cli(args);
        assert!(
            out.status.success(),
            "tessera {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A client with no secret, authenticated by the registration `how`.
    fn certificate_client(&self, id: &str, how: &[&str]) {
        self.certificate_client_with(id, &["--scope", "invoices:read"], how);
    }

    /// As [`Mtls::certificate_client`], created with `settings` (scopes, audiences).
    fn certificate_client_with(&self, id: &str, settings: &[&str], how: &[&str]) {
        let mut create = vec!["client", "create", id, "--no-secret"];
        create.extend_from_slice(settings);
        self.cli_ok(&create);
        let mut args = vec!["client", "add-certificate", id];
        args.extend_from_slice(how);
        self.cli_ok(&args);
    }

    /// POSTs a form over HTTPS with curl, with `cert` as the client
    /// certificate; the status and the JSON body.
    fn post(&self, endpoint: &str, body: &str, cert: Option<&ClientCert>, extra: &[&str]) -> (u16, Value) {
        let port = self.server.addr.port();
        let url = format!("https://localhost:{port}{endpoint}");
        let resolve = format!("localhost:{port}:127.0.0.1");
        let mut args = vec![
            "--resolve",
            &resolve,
            "--cacert",
            path(&self.pki.ca),
            "-X",
            "POST",
            &url,
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "-d",
            body,
            "-w",
            "\n%{http_code}",
        ];
        if let Some(cert) = cert {
            args.extend_from_slice(&["--cert", path(&cert.cert), "--key", path(&cert.key)]);
        }
        args.extend_from_slice(extra);
        let out = curl(&args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body_text, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {args:?} got no HTTP answer: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let json = serde_json::from_str(body_text).unwrap_or(Value::Null);
        (status, json)
    }

    /// The token endpoint, authenticating by certificate: `client_id` only.
    fn token_http(&self, client_id: &str, cert: Option<&ClientCert>) -> (u16, Value) {
        self.post(
            "/oauth2/token",
            &format!("grant_type=client_credentials&client_id={client_id}"),
            cert,
            &[],
        )
    }

    /// A gRPC channel with `cert` as the client certificate.
    async fn channel(&self, cert: Option<&ClientCert>) -> Result<Channel, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(&self.pki.ca).unwrap()))
            .domain_name("localhost");
        if let Some(cert) = cert {
            tls = tls.identity(cert.identity());
        }
        Channel::from_shared(format!("https://127.0.0.1:{}", self.server.addr.port()))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await
    }

    /// IssueToken with the credential left empty: the certificate authenticates.
    async fn token_grpc(&self, client_id: &str, cert: Option<&ClientCert>) -> Result<pb::IssueTokenResponse, String> {
        let channel = self.channel(cert).await.map_err(|e| format!("no connection: {e:?}"))?;
        TokenServiceClient::new(channel)
            .issue_token(pb::IssueTokenRequest {
                client_id: client_id.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| {
                use tonic_types::StatusExt;
                status
                    .get_details_error_info()
                    .map_or_else(|| format!("{status:?}"), |info| info.reason)
            })
    }
}

/// The claims of a compact JWT, unverified (the tests that verify are elsewhere).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn access_token(answer: &(u16, Value)) -> String {
    assert_eq!(answer.0, 200, "expected a token, got {answer:?}");
    answer.1["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_uri_san_certificate_gets_a_bound_token_over_http_rfc8705_2_1_and_3_1() {
    let (tessera, ca, _dirs) = Mtls::optional_with_ca();
    tessera.certificate_client_with(
        "billing",
        &["--scope", "tessera:introspect"],
        &["--san-uri", BILLING_SPIFFE_ID],
    );
    let cert = ca.issue("billing", &Names::uri(BILLING_SPIFFE_ID));
    let token = access_token(&tessera.token_http("billing", Some(&cert)));
    let claims = claims(&token);
    assert_eq!(claims["client_id"], "billing");
    assert_eq!(claims["cnf"]["x5t#S256"], cert.thumbprint(), "{claims}");
    // RFC 8705 section 3.2: introspection says what the token is bound to;
    // the client introspects its own token with its certificate.
    let (status, answer) = tessera.post(
        "/oauth2/introspect",
        &format!("client_id=billing&token={token}"),
        Some(&cert),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["cnf"]["x5t#S256"], cert.thumbprint(), "{answer}");
}

#[tokio::test]
async fn a_dns_san_certificate_gets_a_bound_token_over_grpc_with_the_credential_left_empty() {
    let (tessera, ca, _dirs) = Mtls::optional_with_ca();
    tessera.certificate_client_with(
        "ledger",
        &["--scope", "tessera:introspect"],
        &["--san-dns", "ledger.payments.internal"],
    );
    let cert = ca.issue("ledger", &Names::dns("ledger.payments.internal"));
    let issued = tessera.token_grpc("ledger", Some(&cert)).await.unwrap();
    assert_eq!(claims(&issued.access_token)["cnf"]["x5t#S256"], cert.thumbprint());
    // Introspection over gRPC, with the token itself as the caller's
    // credential on the same certificate: it returns cnf too.
    let mut request = tonic::Request::new(pb::IntrospectTokenRequest {
        token: issued.access_token.clone(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", issued.access_token).parse().unwrap(),
    );
    let channel = tessera.channel(Some(&cert)).await.unwrap();
    let answer = TokenServiceClient::new(channel)
        .introspect_token(request)
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
    assert_eq!(answer.cnf.unwrap().x5t_s256, cert.thumbprint());
}

#[tokio::test]
async fn a_subject_dn_certificate_authenticates_on_both_faces_rfc8705_2_1_2() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ClientCa::new(ca_dir.path(), "clients");
    let (tessera, _certs) = Mtls::start(Some(&ca), None, &["--tls-client-auth", "required"]);
    // As `openssl x509 -noout -subject -nameopt RFC2253` prints it.
    tessera.certificate_client("audit", &["--subject-dn", "CN=audit,OU=Payments,O=Example\\, Inc,C=US"]);
    let names = Names {
        subject: vec![
            ("C", "US".into()),
            ("O", "Example, Inc".into()),
            ("OU", "Payments".into()),
            ("CN", "audit".into()),
        ],
        ..Names::default()
    };
    let cert = ca.issue("audit", &names);
    let http = access_token(&tessera.token_http("audit", Some(&cert)));
    assert_eq!(claims(&http)["cnf"]["x5t#S256"], cert.thumbprint());
    let grpc = tessera.token_grpc("audit", Some(&cert)).await.unwrap();
    assert_eq!(claims(&grpc.access_token)["cnf"]["x5t#S256"], cert.thumbprint());
}

#[tokio::test]
async fn a_self_signed_certificate_authenticates_by_thumbprint_without_a_client_ca_rfc8705_2_2() {
    let (tessera, certs) = Mtls::start(None, Some("optional"), &[]);
    let cert = ClientCert::self_signed(certs.path(), "batch", &Names::dns("batch.internal"));
    tessera.certificate_client("batch", &["--pem", path(&cert.cert)]);
    assert!(tessera.server.stdout().contains("client certificates optional"));
    let http = access_token(&tessera.token_http("batch", Some(&cert)));
    assert_eq!(claims(&http)["cnf"]["x5t#S256"], cert.thumbprint());
    let grpc = tessera.token_grpc("batch", Some(&cert)).await.unwrap();
    assert_eq!(claims(&grpc.access_token)["cnf"]["x5t#S256"], cert.thumbprint());
    // Another self-signed certificate with the same names is another certificate.
    let twin = ClientCert::self_signed(certs.path(), "twin", &Names::dns("batch.internal"));
    let (status, body) = tessera.token_http("batch", Some(&twin));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}

#[tokio::test]
async fn a_self_signed_certificate_works_beside_a_client_ca_on_an_optional_listener() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ClientCa::new(ca_dir.path(), "clients");
    let (tessera, certs) = Mtls::start(Some(&ca), Some("optional"), &[]);
    let cert = ClientCert::self_signed(certs.path(), "batch", &Names::dns("batch.internal"));
    tessera.certificate_client("batch", &["--pem", path(&cert.cert)]);
    tessera.certificate_client("ledger", &["--san-dns", "ledger.internal"]);
    let chained = ca.issue("ledger", &Names::dns("ledger.internal"));
    access_token(&tessera.token_http("batch", Some(&cert)));
    access_token(&tessera.token_http("ledger", Some(&chained)));
    tessera.token_grpc("batch", Some(&cert)).await.unwrap();
}

/// Each certificate here must not authenticate as `billing`: on both faces
/// the answer is `invalid_client` (HTTP 401), and nothing else.
#[tokio::test]
async fn certificates_that_do_not_match_are_invalid_client_on_both_faces() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ClientCa::new(ca_dir.path(), "clients");
    let other_ca = ClientCa::new(ca_dir.path(), "elsewhere");
    let (tessera, certs) = Mtls::start(Some(&ca), Some("optional"), &[]);
    tessera.certificate_client("billing", &["--san-uri", BILLING_SPIFFE_ID]);
    tessera.certificate_client("ledger", &["--san-dns", "ledger.internal"]);
    let expired = Names {
        expired: true,
        ..Names::uri(BILLING_SPIFFE_ID)
    };
    let cases = [
        (
            "from another CA, with billing's SAN",
            Some(other_ca.issue("other-ca", &Names::uri(BILLING_SPIFFE_ID))),
        ),
        ("expired, with billing's SAN", Some(ca.issue("expired", &expired))),
        (
            "ledger's certificate, naming billing",
            Some(ca.issue("ledger", &Names::dns("ledger.internal"))),
        ),
        (
            "self-signed, with billing's SAN",
            Some(ClientCert::self_signed(
                certs.path(),
                "self",
                &Names::uri(BILLING_SPIFFE_ID),
            )),
        ),
        (
            "a SAN one segment short",
            Some(ca.issue("short", &Names::uri("spiffe://example.org/ns/payments"))),
        ),
        ("no certificate at all", None),
    ];
    for (what, cert) in &cases {
        let (status, body) = tessera.token_http("billing", cert.as_ref());
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "HTTP, {what}: {body}"
        );
        match tessera.token_grpc("billing", cert.as_ref()).await {
            Err(code) => assert_eq!(code, "invalid_client", "gRPC, {what}"),
            Ok(issued) => panic!("gRPC, {what}: a token was issued: {:?}", claims(&issued.access_token)),
        }
    }
    // The refusals are in the audit log with their reasons, the tokens nowhere.
    let log = tessera.server.stderr();
    assert!(log.contains("client_certificate_refused"), "{log}");
    assert!(log.contains("expired or not yet valid"), "{log}");
    assert!(log.contains("does not chain to the client CA"), "{log}");
    // The right certificate still works: the failures cost billing nothing.
    let billing = ca.issue("billing", &Names::uri(BILLING_SPIFFE_ID));
    access_token(&tessera.token_http("billing", Some(&billing)));
}

/// A protection must not become a weapon: anyone may present a wrong
/// certificate under billing's id as often as they like; billing's own
/// next request is answered at once, from the same address.
#[tokio::test]
async fn wrong_certificates_lock_no_one_out() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ClientCa::new(ca_dir.path(), "clients");
    let (tessera, _certs) = Mtls::start(Some(&ca), Some("optional"), &["--failure-limit", "3"]);
    tessera.certificate_client("billing", &["--san-uri", BILLING_SPIFFE_ID]);
    let wrong = ca.issue("wrong", &Names::uri("spiffe://example.org/ns/payments/sa/mallory"));
    for attempt in 0..12 {
        let (status, body) = tessera.token_http("billing", Some(&wrong));
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    let billing = ca.issue("billing", &Names::uri(BILLING_SPIFFE_ID));
    access_token(&tessera.token_http("billing", Some(&billing)));
}

#[tokio::test]
async fn a_secret_counts_over_a_certificate_and_binds_only_when_the_client_asks_rfc8705_3() {
    let (tessera, ca, _dirs) = Mtls::optional_with_ca();
    let secret = tessera.server.create_client("reports", &["--scope", "read"]);
    let cert = ca.issue("reports", &Names::dns("reports.internal"));
    let with_secret = format!("grant_type=client_credentials&client_id=reports&client_secret={secret}");
    // The secret authenticates; the certificate on the connection binds nothing.
    let unbound = access_token(&tessera.post("/oauth2/token", &with_secret, Some(&cert), &[]));
    assert!(claims(&unbound).get("cnf").is_none(), "{}", claims(&unbound));
    // Once the client asks, its tokens are bound to the connection's certificate.
    tessera.cli_ok(&["client", "update", "reports", "--bind-to-certificate"]);
    support::eventually(std::time::Duration::from_secs(5), async || {
        let answer = tessera.post("/oauth2/token", &with_secret, Some(&cert), &[]);
        answer.0 == 200 && claims(answer.1["access_token"].as_str().unwrap())["cnf"]["x5t#S256"] == cert.thumbprint()
    })
    .await
    .then_some(())
    .expect("a bound token after client update --bind-to-certificate");
    // Without a certificate such a client gets no token, rather than an unbound one.
    let (status, body) = tessera.post("/oauth2/token", &with_secret, None, &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["error_description"].as_str().unwrap().contains("certificate"),
        "{body}"
    );
    // And back.
    tessera.cli_ok(&["client", "update", "reports", "--no-bind-to-certificate"]);
    assert!(
        support::eventually(std::time::Duration::from_secs(5), async || {
            tessera.post("/oauth2/token", &with_secret, None, &[]).0 == 200
        })
        .await
    );
}

#[tokio::test]
async fn a_client_created_to_bind_gets_bound_tokens_with_its_secret_too() {
    let (tessera, ca, _dirs) = Mtls::optional_with_ca();
    let secret = tessera
        .server
        .create_client("reports", &["--scope", "read", "--bind-to-certificate"]);
    let cert = ca.issue("reports", &Names::dns("reports.internal"));
    let channel = tessera.channel(Some(&cert)).await.unwrap();
    let issued = TokenServiceClient::new(channel)
        .issue_token(support::issue_request("reports", &secret))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(claims(&issued.access_token)["cnf"]["x5t#S256"], cert.thumbprint());
}

/// RFC 8705 section 3: a bound token is honoured only from the holder of
/// its certificate, Tessera's own introspection included.
#[tokio::test]
async fn a_bound_token_stands_for_its_client_only_on_a_connection_with_its_certificate() {
    let (tessera, ca, _dirs) = Mtls::optional_with_ca();
    tessera.certificate_client_with(
        "billing",
        &["--scope", "tessera:introspect"],
        &["--san-uri", BILLING_SPIFFE_ID],
    );
    let cert = ca.issue("billing", &Names::uri(BILLING_SPIFFE_ID));
    let other = ca.issue("other", &Names::uri("spiffe://example.org/ns/x/sa/y"));
    let token = access_token(&tessera.token_http("billing", Some(&cert)));
    let bearer = format!("Authorization: Bearer {token}");
    let body = format!("token={token}");
    for (what, presented) in [("no certificate", None), ("another certificate", Some(&other))] {
        let (status, answer) = tessera.post("/oauth2/introspect", &body, presented, &["-H", &bearer]);
        assert_eq!(status, 401, "{what}: {answer}");
    }
    let (status, answer) = tessera.post("/oauth2/introspect", &body, Some(&cert), &["-H", &bearer]);
    assert_eq!((status, &answer["active"]), (200, &Value::Bool(true)), "{answer}");
}

#[tokio::test]
async fn the_metadata_offers_certificates_only_where_the_listener_asks_for_them_rfc8705_3_3() {
    let (tessera, _ca, _dirs) = Mtls::optional_with_ca();
    let port = tessera.server.addr.port();
    let out = curl(&[
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        "--cacert",
        path(&tessera.pki.ca),
        &format!("https://localhost:{port}/.well-known/oauth-authorization-server"),
    ]);
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        metadata["tls_client_certificate_bound_access_tokens"], true,
        "{metadata}"
    );
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
        for method in ["tls_client_auth", "self_signed_tls_client_auth", "client_secret_basic"] {
            assert!(
                methods.as_array().unwrap().iter().any(|m| m == method),
                "{endpoint}: {methods}"
            );
        }
    }
    let plain = Server::start();
    let metadata = plain
        .http("GET", "/.well-known/oauth-authorization-server")
        .send()
        .await
        .json();
    assert_eq!(
        metadata["tls_client_certificate_bound_access_tokens"], false,
        "{metadata}"
    );
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(!methods.contains("tls_client_auth"), "{methods}");
}

#[tokio::test]
async fn a_required_listener_without_a_client_ca_refuses_connections_without_a_certificate() {
    let (tessera, certs) = Mtls::start(None, Some("required"), &[]);
    assert!(tessera.server.stdout().contains("client certificates required"));
    let cert = ClientCert::self_signed(certs.path(), "batch", &Names::dns("batch.internal"));
    tessera.certificate_client("batch", &["--pem", path(&cert.cert)]);
    access_token(&tessera.token_http("batch", Some(&cert)));
    assert!(tessera.token_grpc("batch", None).await.is_err());
    let port = tessera.server.addr.port();
    let out = curl(&[
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        "--cacert",
        path(&tessera.pki.ca),
        &format!("https://localhost:{port}/.well-known/jwks.json"),
    ]);
    assert!(
        !out.status.success(),
        "a connection without a certificate got an answer"
    );
}

#[tokio::test]
async fn a_client_created_without_a_secret_has_none_to_steal() {
    let (tessera, _certs) = Mtls::start(None, Some("optional"), &[]);
    let out = tessera.cli_ok(&["client", "create", "batch", "--scope", "read", "--no-secret", "--json"]);
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["client_secret"], Value::Null, "{created}");
    let shown: Value = serde_json::from_str(&tessera.cli_ok(&["client", "show", "batch", "--json"])).unwrap();
    assert_eq!(shown["secrets"], serde_json::json!([]), "{shown}");
    let (status, body) = tessera.post(
        "/oauth2/token",
        "grant_type=client_credentials&client_id=batch&client_secret=",
        None,
        &[],
    );
    assert_eq!(body["error"], "invalid_client", "{status} {body}");
}

#[tokio::test]
async fn malformed_registrations_are_refused_with_the_reason_and_store_nothing() {
    let (tessera, certs) = Mtls::start(None, Some("optional"), &[]);
    tessera.cli_ok(&["client", "create", "batch", "--scope", "read", "--no-secret"]);
    let cert = ClientCert::self_signed(certs.path(), "batch", &Names::dns("batch.internal"));
    let with_key = certs.path().join("with-key.pem");
    std::fs::write(&with_key, format!("{}{}", cert.cert_pem, cert.key_pem)).unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--subject-dn", "CN=a,,O=b"], "empty component"),
        (&["--subject-dn", "FOO=bar"], "unknown attribute type"),
        (&["--san-uri", "billing"], "no scheme"),
        (&["--san-dns", "*.internal"], "no wildcards"),
        (&["--pem", path(&with_key)], "private key"),
        (
            &["--pem", path(&cert.cert), "--san-dns", "x.internal"],
            "cannot be used with",
        ),
        (&[], "required"),
    ];
    for (args, reason) in cases {
        let mut full = vec!["client", "add-certificate", "batch"];
        full.extend_from_slice(args);
        let out = tessera.server.cli(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(reason), "{args:?}: {stderr}");
    }
    let out = tessera
        .server
        .cli(&["client", "add-certificate", "nobody", "--pem", path(&cert.cert)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no client \"nobody\""));
    let out = tessera
        .server
        .cli(&["client", "remove-certificate", "batch", "--pem", path(&cert.cert)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no self-signed certificate"));
    let shown: Value = serde_json::from_str(&tessera.cli_ok(&["client", "show", "batch", "--json"])).unwrap();
    assert_eq!(shown["certificates"], serde_json::json!([]), "{shown}");
    // Registered twice is refused the second time, and removal works once.
    tessera.cli_ok(&["client", "add-certificate", "batch", "--pem", path(&cert.cert)]);
    let again = tessera
        .server
        .cli(&["client", "add-certificate", "batch", "--pem", path(&cert.cert)]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already"));
    tessera.cli_ok(&["client", "remove-certificate", "batch", "--pem", path(&cert.cert)]);
    let _ = &tessera.dir;
}

// The SDK: the caller side sends its certificate and nothing else; the
// resource side (Verifier, RequireScopes) honours a bound token only from
// the holder of its certificate.

impl Mtls {
    /// The server's issuer, from its listening line.
    fn issuer(&self) -> String {
        let stdout = self.server.stdout();
        let line = stdout.lines().find(|l| l.contains("; issuer ")).unwrap();
        line.rsplit_once("; issuer ").unwrap().1.trim().to_owned()
    }

    fn sdk(&self) -> tessera_sdk::TokenClientBuilder {
        tessera_sdk::TokenClient::builder(self.server.url()).tls_ca_pem(std::fs::read(&self.pki.ca).unwrap())
    }
}

#[tokio::test]
async fn the_sdk_gets_a_bound_token_with_its_certificate_and_introspects_with_it() {
    let (tessera, ca, _dirs) = Mtls::optional_with_ca();
    tessera.certificate_client_with(
        "billing",
        &["--scope", "tessera:introspect"],
        &["--san-uri", BILLING_SPIFFE_ID],
    );
    let cert = ca.issue("billing", &Names::uri(BILLING_SPIFFE_ID));
    let client = tessera
        .sdk()
        .tls_identity(cert.cert_pem.clone(), cert.key_pem.clone())
        .tls_client_auth("billing")
        .build()
        .unwrap();
    let token = client.issue_token(&tessera_sdk::TokenRequest::new()).await.unwrap();
    assert_eq!(
        claims(token.access_token().expose())["cnf"]["x5t#S256"],
        cert.thumbprint()
    );
    // Its own introspection call carries a token of its own, bound to the
    // same certificate, on a connection that presents it.
    assert!(client.introspect(token.access_token().expose()).await.unwrap());
    // Certificate authentication without a certificate is a mistake caught at once.
    let err = tessera.sdk().tls_client_auth("billing").build().unwrap_err();
    assert!(matches!(err, tessera_sdk::Error::Config(_)), "{err:?}");
}

/// The example resource service (`examples/resource_service.rs`), run for
/// real, with `env`; answers once it accepts connections.
struct Invoices {
    child: std::process::Child,
    addr: String,
}

impl Invoices {
    fn start(env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(support::example_bin("resource_service"))
            .envs(env.iter().copied())
            .env("LISTEN", &addr)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Dropped (killed and reaped) on every path, the panic's included.
        let service = Self { child, addr };
        for _ in 0..200 {
            if std::net::TcpStream::connect(&service.addr).is_ok() {
                return service;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the example resource service did not listen on {}", service.addr);
    }
}

impl Drop for Invoices {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GetInvoice with `token`, over `channel`, with extra metadata.
async fn get_invoice(
    channel: Channel,
    token: &str,
    extra: Option<(&'static str, String)>,
) -> Result<String, tonic::Status> {
    use tessera_examples::pb;
    let mut request = tonic::Request::new(pb::GetInvoiceRequest { id: "INV-1".into() });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some((name, value)) = extra {
        request.metadata_mut().insert(name, value.parse().unwrap());
    }
    pb::invoices_client::InvoicesClient::new(channel)
        .get_invoice(request)
        .await
        .map(|answer| answer.into_inner().served_to)
}

fn assert_refused_as_invalid_token(outcome: Result<String, tonic::Status>, what: &str) {
    let status = outcome.expect_err(what);
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{what}: {status:?}");
    assert!(status.message().contains("invalid_token"), "{what}: {status:?}");
}

#[tokio::test]
async fn the_example_resource_service_honours_a_bound_token_only_from_its_certificate() {
    let (tessera, ca, _dirs) = Mtls::optional_with_ca();
    tessera.certificate_client_with(
        "billing",
        &["--scope", "invoices:read", "--audience", "https://invoices.internal"],
        &["--san-uri", BILLING_SPIFFE_ID],
    );
    let billing = ca.issue("billing", &Names::uri(BILLING_SPIFFE_ID));
    let mallory = ca.issue("mallory", &Names::uri("spiffe://example.org/ns/x/sa/mallory"));
    let token = tessera
        .sdk()
        .tls_identity(billing.cert_pem.clone(), billing.key_pem.clone())
        .tls_client_auth("billing")
        .build()
        .unwrap()
        .issue_token(&tessera_sdk::TokenRequest::new())
        .await
        .unwrap();
    let token = token.access_token().expose().to_owned();
    let (issuer, url, tessera_ca) = (tessera.issuer(), tessera.server.url(), path(&tessera.pki.ca).to_owned());
    let common = [
        ("TESSERA", url.as_str()),
        ("ISSUER", issuer.as_str()),
        ("TESSERA_CA", tessera_ca.as_str()),
    ];

    // A service that terminates TLS itself, asking callers for certificates.
    let mut env = common.to_vec();
    env.extend([
        ("TLS_CERT", path(&tessera.pki.cert)),
        ("TLS_KEY", path(&tessera.pki.key)),
        ("TLS_CLIENT_CA", path(&ca.ca)),
    ]);
    let direct = Invoices::start(&env);
    let channel = async |cert: Option<&ClientCert>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(&tessera.pki.ca).unwrap()))
            .domain_name("localhost");
        if let Some(cert) = cert {
            tls = tls.identity(cert.identity());
        }
        Channel::from_shared(format!("https://{}", direct.addr))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let served = get_invoice(channel(Some(&billing)).await, &token, None).await;
    assert_eq!(served.unwrap(), "billing");
    assert_refused_as_invalid_token(
        get_invoice(channel(Some(&mallory)).await, &token, None).await,
        "the token from a caller with another certificate",
    );
    assert_refused_as_invalid_token(
        get_invoice(channel(None).await, &token, None).await,
        "the token from a caller without a certificate",
    );

    // A service behind a sidecar that terminated the caller's TLS and
    // describes its certificate in x-forwarded-client-cert.
    let mut env = common.to_vec();
    env.push(("TRUST_FORWARDED_CLIENT_CERT", "1"));
    let behind = Invoices::start(&env);
    let plain = async || {
        Channel::from_shared(format!("http://{}", behind.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let xfcc = |cert: &ClientCert| {
        (
            "x-forwarded-client-cert",
            format!(
                "By=spiffe://example.org/ns/invoices/sa/invoices;Hash={};URI={BILLING_SPIFFE_ID}",
                cert.sha256_hex()
            ),
        )
    };
    let served = get_invoice(plain().await, &token, Some(xfcc(&billing))).await;
    assert_eq!(served.unwrap(), "billing");
    assert_refused_as_invalid_token(
        get_invoice(plain().await, &token, Some(xfcc(&mallory))).await,
        "a forwarded Hash of another certificate",
    );
    assert_refused_as_invalid_token(
        get_invoice(plain().await, &token, None).await,
        "no forwarded certificate",
    );
}

//! End to end: every malformed token request gets the RFC's status and error
//! code as JSON, never a framework's plain text, a panic or a 500.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]
mod support;

use support::Server;

async fn server_with_client() -> (Server, String) {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    (server, secret)
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_405_with_json_rfc6749_3_2() {
    let (server, secret) = server_with_client().await;
    let exchange = server
        .http(
            "GET",
            &format!("/oauth2/token?grant_type=client_credentials&client_id=svc&client_secret={secret}"),
        )
        .send()
        .await;
    exchange.assert_error(405, "invalid_request");
    assert_eq!(exchange.header("allow"), Some("POST"), "{exchange}");
    assert!(!exchange.body.contains("access_token"), "{exchange}");
}

#[tokio::test]
async fn credentials_in_the_query_string_of_a_post_are_refused_rfc6749_2_3_1() {
    let (server, secret) = server_with_client().await;
    let exchange = server
        .form(&format!("/oauth2/token?client_secret={secret}"))
        .body(b"grant_type=client_credentials&client_id=svc".to_vec())
        .send()
        .await;
    exchange.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_missing_or_wrong_content_type_is_invalid_request_as_json() {
    let (server, secret) = server_with_client().await;
    let body = format!("grant_type=client_credentials&client_id=svc&client_secret={secret}");
    for content_type in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut request = server.http("POST", "/oauth2/token").body(body.clone().into_bytes());
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        request.send().await.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn a_content_type_with_charset_is_accepted() {
    let (server, secret) = server_with_client().await;
    let exchange = server
        .http("POST", "/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded; charset=UTF-8")
        .body(format!("grant_type=client_credentials&client_id=svc&client_secret={secret}").into_bytes())
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request_rfc6749_3_2() {
    let (server, secret) = server_with_client().await;
    for repeated in [
        "grant_type=client_credentials",
        "scope=read",
        "client_id=svc",
        &format!("client_secret={secret}"),
    ] {
        let body = format!("grant_type=client_credentials&client_id=svc&client_secret={secret}&scope=read&{repeated}");
        server
            .token_form(&body)
            .send()
            .await
            .assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request() {
    let (server, secret) = server_with_client().await;
    server
        .token_form(&format!("client_id=svc&client_secret={secret}"))
        .send()
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn other_grant_types_are_unsupported_grant_type_rfc6749_5_2() {
    let (server, secret) = server_with_client().await;
    for grant in [
        "password",
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let body = format!("grant_type={grant}&client_id=svc&client_secret={secret}");
        server
            .token_form(&body)
            .send()
            .await
            .assert_error(400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn basic_plus_a_body_secret_is_two_methods_and_invalid_request_rfc6749_2_3() {
    let (server, secret) = server_with_client().await;
    let body = format!("grant_type=client_credentials&client_id=svc&client_secret={secret}");
    server
        .token_form(&body)
        .basic("svc", &secret)
        .send()
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_body_client_id_that_differs_from_basic_is_invalid_request() {
    let (server, secret) = server_with_client().await;
    let exchange = server
        .token_form("grant_type=client_credentials&client_id=other")
        .basic("svc", &secret)
        .send()
        .await;
    exchange.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn malformed_basic_headers_are_invalid_request() {
    let (server, _) = server_with_client().await;
    for header in [
        "Basic !!!not-base64!!!",
        "Basic c3ZjLW5vLWNvbG9u",
        "Basic OnNlY3JldA==",
        "Digest username=svc",
    ] {
        let exchange = server
            .token_form("grant_type=client_credentials")
            .header("authorization", header)
            .send()
            .await;
        exchange.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_invalid_request() {
    let (server, secret) = server_with_client().await;
    let exchange = server
        .token_form("grant_type=client_credentials")
        .basic("svc", &secret)
        .basic("svc", &secret)
        .send()
        .await;
    exchange.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_wrong_basic_secret_is_401_with_a_basic_challenge_rfc6749_5_2() {
    let (server, _) = server_with_client().await;
    let exchange = server
        .token_form("grant_type=client_credentials")
        .basic("svc", "wrong")
        .send()
        .await;
    exchange.assert_error(401, "invalid_client");
    // RFC 7235 §2.1: the challenge names the realm (our issuer) and carries
    // the error as auth-params, which is where Node's openid-client reads it.
    assert_eq!(
        exchange.header("www-authenticate"),
        Some(
            format!(
                r#"Basic realm="{}", error="invalid_client", error_description="client authentication failed""#,
                server.url()
            )
            .as_str()
        ),
        "{exchange}"
    );
}

#[tokio::test]
async fn unknown_client_wrong_secret_and_disabled_client_get_byte_identical_answers() {
    let (server, secret) = server_with_client().await;
    let off_secret = server.create_client("off", &["--scope", "read"]);
    assert!(server.cli(&["client", "disable", "off"]).status.success());
    let form = |id: &str, secret: &str| format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let unknown = server.token_form(&form("nobody", &secret)).send().await;
    let wrong = server.token_form(&form("svc", "not-the-secret")).send().await;
    let disabled = server.token_form(&form("off", &off_secret)).send().await;
    let case = server.token_form(&form("SVC", &secret)).send().await;
    for exchange in [&unknown, &wrong, &disabled, &case] {
        exchange.assert_error(401, "invalid_client");
        assert_eq!(exchange.body, wrong.body, "answers differ\n{exchange}\n\n{wrong}");
        assert!(
            exchange.header("www-authenticate").is_none(),
            "no challenge without Basic\n{exchange}"
        );
    }
}

#[tokio::test]
async fn scopes_beyond_the_clients_are_invalid_scope() {
    let (server, secret) = server_with_client().await;
    for scope in ["admin", "read admin", "READ", "read:all"] {
        let exchange = server
            .token_form(&format!("grant_type=client_credentials&scope={scope}"))
            .basic("svc", &secret)
            .send()
            .await;
        exchange.assert_error(400, "invalid_scope");
    }
}

/// A form POST written by hand, so the body can be larger than what it claims,
/// or larger than any buffer, without the client giving up first.
fn raw_token_post(server: &Server, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n{headers}\r\n",
        server.addr
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[track_caller]
fn assert_raw_invalid_request(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_before_parsing() {
    let (server, secret) = server_with_client().await;
    let body = format!(
        "grant_type=client_credentials&client_id=svc&client_secret={secret}&pad={}",
        "x".repeat(64 * 1024)
    );
    let request = raw_token_post(&server, &format!("Content-Length: {}\r\n", body.len()), body.as_bytes());
    assert_raw_invalid_request(&support::raw_http(server.addr, request).await);
}

#[tokio::test]
async fn a_huge_body_is_answered_without_being_read() {
    let (server, _) = server_with_client().await;
    let huge = vec![b'a'; 8 * 1024 * 1024];
    let request = raw_token_post(&server, &format!("Content-Length: {}\r\n", huge.len()), &huge);
    assert_raw_invalid_request(&support::raw_http(server.addr, request).await);
}

#[tokio::test]
async fn a_chunked_body_with_no_length_is_cut_at_the_cap() {
    let (server, _) = server_with_client().await;
    let chunk = "a".repeat(32 * 1024);
    let chunked = format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len());
    let request = raw_token_post(&server, "Transfer-Encoding: chunked\r\n", chunked.as_bytes());
    assert_raw_invalid_request(&support::raw_http(server.addr, request).await);
}

#[tokio::test]
async fn a_content_length_that_lies_short_reads_only_what_it_claims() {
    let (server, secret) = server_with_client().await;
    // The claimed length covers the grant type only; the rest is a second, garbage request.
    let body = format!("grant_type=client_credentials&client_id=svc&client_secret={secret}GARBAGE-AFTER");
    let claimed = body.len() - "GARBAGE-AFTER".len();
    let request = raw_token_post(
        &server,
        &format!("Content-Length: {claimed}\r\nConnection: close\r\n"),
        body.as_bytes(),
    );
    let answer = support::raw_http(server.addr, request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn oversized_fields_in_a_small_body_are_refused() {
    let (server, secret) = server_with_client().await;
    let long_id = "i".repeat(4 * 1024);
    server
        .token_form(&format!(
            "grant_type=client_credentials&client_id={long_id}&client_secret={secret}"
        ))
        .send()
        .await
        .assert_error(400, "invalid_request");
    let scopes = (0..1000).map(|i| format!("s{i}")).collect::<Vec<_>>().join("+");
    server
        .token_form(&format!("grant_type=client_credentials&scope={scopes}"))
        .basic("svc", &secret)
        .send()
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn bad_percent_encoding_invalid_utf8_and_control_characters_are_invalid_request() {
    let (server, secret) = server_with_client().await;
    for bad in [
        "scope=%zz",
        "scope=%",
        "scope=%ff%fe",
        "scope=a%00b",
        "client_id=svc%0A",
    ] {
        let body = format!("grant_type=client_credentials&{bad}");
        server
            .token_form(&body)
            .basic("svc", &secret)
            .send()
            .await
            .assert_error(400, "invalid_request");
    }
    let mut raw = b"grant_type=client_credentials&scope=".to_vec();
    raw.extend_from_slice(&[0xff, 0xfe]);
    server
        .token_form("")
        .body(raw)
        .basic("svc", &secret)
        .send()
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn empty_values_are_treated_as_omitted_rfc6749_3_2() {
    let (server, secret) = server_with_client().await;
    let exchange = server
        .token_form("grant_type=client_credentials&scope=&resource=")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
    assert_eq!(exchange.json()["scope"], "read", "{exchange}");
}

#[tokio::test]
async fn unknown_parameters_are_ignored_rfc6749_3_2() {
    let (server, secret) = server_with_client().await;
    let exchange = server
        .token_form("grant_type=client_credentials&foo=bar&foo=baz&state=x")
        .basic("svc", &secret)
        .send()
        .await;
    assert_eq!(exchange.status, 200, "{exchange}");
}

#[tokio::test]
async fn no_credentials_at_all_is_invalid_client() {
    let (server, _) = server_with_client().await;
    server
        .token_form("grant_type=client_credentials")
        .send()
        .await
        .assert_error(401, "invalid_client");
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let (server, _) = server_with_client().await;
    let exchange = server.http("GET", "/oauth2/authorize").send().await;
    assert_eq!(exchange.status, 404, "{exchange}");
    assert_eq!(exchange.header("content-type"), Some("application/json"), "{exchange}");
}

/// Hostile values: quotes, backslashes, non-ASCII, direction overrides,
/// markup, and length.
fn hostile_values() -> Vec<String> {
    vec![
        r#"a"b\c"#.to_owned(),
        "é§ü€ 日本".to_owned(),
        "\u{202e}evil".to_owned(),
        "<script>alert(1)</script>".to_owned(),
        "x".repeat(8 * 1024),
        "%22%5C".to_owned(),
    ]
}

fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 6749 §5.2, to the letter: every error answer built from hostile input
/// keeps `error_description` inside %x20-21 / %x23-5B / %x5D-7E, short, and
/// the whole answer a few hundred bytes (checked by `assert_error`).
#[tokio::test]
async fn error_descriptions_built_from_hostile_input_stay_in_the_rfc6749_5_2_charset() {
    let (server, secret) = server_with_client().await;
    let creds = format!("client_id=svc&client_secret={secret}");
    for value in hostile_values() {
        let v = form_encode(&value);
        let cases = [
            (format!("grant_type={v}&{creds}"), 400, "unsupported_grant_type"),
            (
                format!("grant_type=client_credentials&scope={v}&{creds}"),
                400,
                "invalid_scope",
            ),
            (
                format!("grant_type=client_credentials&resource={v}&{creds}"),
                400,
                "invalid_target",
            ),
            (
                format!("grant_type=client_credentials&client_id=svc&client_assertion_type={v}&client_assertion=x"),
                400,
                "invalid_request",
            ),
            (
                format!("grant_type=client_credentials&client_id={v}&client_secret=x"),
                401,
                "invalid_client",
            ),
        ];
        for (body, status, code) in cases {
            let status = if code == "invalid_client" && value.len() > 256 {
                400
            } else {
                status
            };
            let code = if status == 400 && code == "invalid_client" {
                "invalid_request"
            } else {
                code
            };
            server.token_form(&body).send().await.assert_error(status, code);
        }
    }
    // A scope the client may not have, well formed but long, is echoed cut short.
    let long_scope = "s".repeat(128);
    let exchange = server
        .token_form(&format!("grant_type=client_credentials&scope={long_scope}&{creds}"))
        .send()
        .await;
    exchange.assert_error(400, "invalid_scope");
    assert!(!exchange.body.contains(&long_scope), "{exchange}");
}

/// gRPC status messages follow the same rule as `error_description`.
#[tokio::test]
async fn grpc_status_messages_built_from_hostile_input_stay_in_the_same_charset() {
    let (server, secret) = server_with_client().await;
    let mut grpc = server.grpc().await;
    for value in hostile_values() {
        let mut requests = Vec::new();
        let mut request = support::issue_request("svc", &secret);
        request.grant_type = value.clone();
        requests.push(request);
        let mut request = support::issue_request("svc", &secret);
        request.scopes = vec![value.clone()];
        requests.push(request);
        let mut request = support::issue_request("svc", &secret);
        request.audiences = vec![value.clone()];
        requests.push(request);
        for request in requests {
            let shown = format!("{request:?}");
            let status = grpc.issue_token(request).await.expect_err("refused");
            support::assert_rfc6749_description(status.message(), &format!("{shown:.300}\n{status:?}"));
        }
    }
}

/// RFC 6750 §3: a Bearer caller of introspection whose token is not good
/// gets a Bearer challenge with `error="invalid_token"`.
#[tokio::test]
async fn a_bad_bearer_token_at_introspection_gets_a_bearer_invalid_token_challenge() {
    let (server, _secret) = server_with_client().await;
    let exchange = server
        .form("/oauth2/introspect")
        .header("authorization", "Bearer not-a-token")
        .body(b"token=whatever".to_vec())
        .send()
        .await;
    exchange.assert_error(401, "invalid_client");
    let challenge = exchange.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(&format!(r#"Bearer realm="{}", error="invalid_token""#, server.url())),
        "{exchange}"
    );
}

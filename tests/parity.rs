//! One list of cases through the HTTP shim and through gRPC: both faces must
//! reach the same outcome, with the status each protocol maps it to
//! (docs/ARCHITECTURE.md, "Errors"). Keeps the faces thin: a rule written in one face only
//! shows up here as a disagreement.

// A test that panics is a failed test: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]
mod support;

use support::{Server, grpc_oauth_error, issue_request};

struct Case {
    name: &'static str,
    client_id: &'static str,
    good_secret: bool,
    grant_type: &'static str,
    scopes: &'static [&'static str],
    audiences: &'static [&'static str],
    /// `None`: a token is issued.
    expect: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "success",
        client_id: "svc",
        good_secret: true,
        grant_type: "client_credentials",
        scopes: &[],
        audiences: &[],
        expect: None,
    },
    Case {
        name: "narrowed scope and audience",
        client_id: "svc",
        good_secret: true,
        grant_type: "client_credentials",
        scopes: &["read"],
        audiences: &["https://a"],
        expect: None,
    },
    Case {
        name: "wrong secret",
        client_id: "svc",
        good_secret: false,
        grant_type: "client_credentials",
        scopes: &[],
        audiences: &[],
        expect: Some("invalid_client"),
    },
    Case {
        name: "unknown client",
        client_id: "nobody",
        good_secret: true,
        grant_type: "client_credentials",
        scopes: &[],
        audiences: &[],
        expect: Some("invalid_client"),
    },
    Case {
        name: "disabled client",
        client_id: "off",
        good_secret: true,
        grant_type: "client_credentials",
        scopes: &[],
        audiences: &[],
        expect: Some("invalid_client"),
    },
    Case {
        name: "scope not allowed",
        client_id: "svc",
        good_secret: true,
        grant_type: "client_credentials",
        scopes: &["admin"],
        audiences: &[],
        expect: Some("invalid_scope"),
    },
    Case {
        name: "malformed scope",
        client_id: "svc",
        good_secret: true,
        grant_type: "client_credentials",
        scopes: &["a\"b"],
        audiences: &[],
        expect: Some("invalid_scope"),
    },
    Case {
        name: "audience not allowed",
        client_id: "svc",
        good_secret: true,
        grant_type: "client_credentials",
        scopes: &[],
        audiences: &["https://evil"],
        expect: Some("invalid_target"),
    },
    Case {
        name: "unsupported grant type",
        client_id: "svc",
        good_secret: true,
        grant_type: "password",
        scopes: &[],
        audiences: &[],
        expect: Some("unsupported_grant_type"),
    },
];

/// docs/ARCHITECTURE.md, "Errors": the HTTP status and gRPC code of each OAuth error.
fn expected_statuses(code: &str) -> (u16, tonic::Code) {
    match code {
        "invalid_client" => (401, tonic::Code::Unauthenticated),
        "invalid_scope" | "invalid_target" => (400, tonic::Code::PermissionDenied),
        "unsupported_grant_type" | "invalid_request" => (400, tonic::Code::InvalidArgument),
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test]
async fn http_and_grpc_reach_the_same_outcome_for_every_case() {
    let server = Server::start();
    let secrets = [
        (
            "svc",
            server.create_client(
                "svc",
                &[
                    "--scope",
                    "read",
                    "--scope",
                    "write",
                    "--audience",
                    "https://a",
                    "--audience",
                    "https://b",
                ],
            ),
        ),
        ("off", server.create_client("off", &["--scope", "read"])),
    ];
    assert!(server.cli(&["client", "disable", "off"]).status.success());
    let secret_for = |case: &Case| {
        let known = secrets
            .iter()
            .find(|(id, _)| *id == case.client_id)
            .map(|(_, s)| s.clone());
        match (case.good_secret, known) {
            (true, Some(secret)) => secret,
            (true, None) => secrets[0].1.clone(), // an unknown id with some real secret
            (false, _) => "definitely-not-the-secret".to_owned(),
        }
    };
    let mut grpc = server.grpc().await;
    for case in CASES {
        let secret = secret_for(case);

        let mut body = format!(
            "grant_type={}&client_id={}&client_secret={secret}",
            case.grant_type, case.client_id
        );
        if !case.scopes.is_empty() {
            body.push_str(&format!("&scope={}", case.scopes.join("+").replace('"', "%22")));
        }
        for audience in case.audiences {
            body.push_str(&format!("&resource={audience}"));
        }
        let http = server.token_form(&body).send().await;

        let mut request = issue_request(case.client_id, &secret);
        request.grant_type = case.grant_type.into();
        request.scopes = case.scopes.iter().map(|s| s.to_string()).collect();
        request.audiences = case.audiences.iter().map(|s| s.to_string()).collect();
        let grpc_outcome = grpc.issue_token(request).await;

        match (case.expect, &grpc_outcome) {
            (None, Ok(response)) => {
                assert_eq!(http.status, 200, "case {:?} over HTTP\n{http}", case.name);
                let granted: Vec<String> = http.json()["scope"]
                    .as_str()
                    .unwrap_or("")
                    .split(' ')
                    .map(str::to_owned)
                    .collect();
                assert_eq!(
                    granted,
                    response.get_ref().scopes,
                    "case {:?}: same scopes on both faces\n{http}",
                    case.name
                );
            }
            (Some(code), Err(status)) => {
                let (http_status, grpc_code) = expected_statuses(code);
                http.assert_error(http_status, code);
                assert_eq!(
                    grpc_oauth_error(status),
                    code,
                    "case {:?} over gRPC: {status:?}",
                    case.name
                );
                assert_eq!(status.code(), grpc_code, "case {:?} over gRPC: {status:?}", case.name);
            }
            (expect, outcome) => panic!(
                "case {:?}: expected {expect:?}, gRPC gave {outcome:?}\nHTTP:\n{http}",
                case.name
            ),
        }
    }
}

#[tokio::test]
async fn grpc_credentials_in_metadata_and_message_together_are_invalid_argument() {
    let server = Server::start();
    let secret = server.create_client("svc", &["--scope", "read"]);
    let mut grpc = server.grpc().await;
    let mut request = tonic::Request::new(issue_request("svc", &secret));
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("svc:{secret}"));
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    let status = grpc.issue_token(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(grpc_oauth_error(&status), "invalid_request");
}

#[tokio::test]
async fn an_oversized_grpc_message_is_refused_before_the_handler() {
    let server = Server::start();
    let mut grpc = server.grpc().await;
    let mut request = issue_request("svc", "x");
    request.scopes = vec!["s".repeat(128 * 1024)];
    let status = grpc.issue_token(request).await.unwrap_err();
    assert!(
        matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted),
        "{status:?}"
    );
}

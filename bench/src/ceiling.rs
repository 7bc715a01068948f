//! Ceiling servers: the same gRPC contract served by the same HTTP stack as
//! Tessera, doing only the unavoidable work. Tessera's throughput is reported
//! as a ratio to these, measured in the same run on the same core.
//!
//! - `bare`: answers IssueToken with a fixed token of realistic size, and
//!   IntrospectToken with a fixed active answer. The transport ceiling.
//! - `crypto`: IssueToken signs one ES256 JWT with a cached key (the signing
//!   bound for issuance); IntrospectToken verifies one (the verify bound for
//!   introspection of tokens not seen before).

use std::net::SocketAddr;

use jsonwebtoken::{Validation, decode};
use tessera_proto::pb;
use tessera_proto::pb::token_service_server::{TokenService, TokenServiceServer};
use tessera_server::keys::{KeyAlgorithm, SigningKey};
use tonic::{Request, Response, Status};

/// What a ceiling server does per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Fixed answers: transport only.
    Bare,
    /// One signature per issuance, one verification per introspection.
    Crypto,
}

struct Ceiling {
    mode: Mode,
    key: SigningKey,
    fixed_token: String,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Ceiling {
    fn sign(&self) -> Result<String, Status> {
        let now = now();
        let jti = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            tessera_server::authority::secret::random_bytes::<16>(),
        );
        // The same claims Tessera mints, so payload sizes match.
        let claims = serde_json::json!({
            "iss": "http://127.0.0.1:8080", "sub": "bench", "client_id": "bench", "aud": "http://127.0.0.1:8080",
            "scope": "bench:read", "exp": now + 3600, "iat": now, "nbf": now, "jti": jti,
        });
        self.key.sign_jwt(&claims).map_err(Status::internal)
    }
}

#[tonic::async_trait]
impl TokenService for Ceiling {
    async fn issue_token(
        &self,
        _request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let access_token = match self.mode {
            Mode::Bare => self.fixed_token.clone(),
            Mode::Crypto => self.sign()?,
        };
        Ok(Response::new(pb::IssueTokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: 3600,
            scopes: vec!["bench:read".into()],
            audiences: vec!["http://127.0.0.1:8080".into()],
        }))
    }

    async fn introspect_token(
        &self,
        request: Request<pb::IntrospectTokenRequest>,
    ) -> Result<Response<pb::IntrospectTokenResponse>, Status> {
        let active = match self.mode {
            Mode::Bare => true,
            Mode::Crypto => {
                let mut validation = Validation::new(self.key.algorithm().jwt_algorithm());
                validation.validate_aud = false;
                decode::<serde_json::Value>(&request.get_ref().token, self.key.decoding_key(), &validation).is_ok()
            }
        };
        Ok(Response::new(pb::IntrospectTokenResponse {
            active,
            scope: "bench:read".into(),
            client_id: "bench".into(),
            sub: "bench".into(),
            aud: vec!["http://127.0.0.1:8080".into()],
            iss: "http://127.0.0.1:8080".into(),
            exp: now() + 3600,
            iat: now(),
            nbf: now(),
            jti: "fixed".into(),
            token_type: "Bearer".into(),
            cnf: None,
        }))
    }

    async fn revoke_token(
        &self,
        _request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse { keys: vec![] }))
    }
}

type Shared = axum::extract::State<std::sync::Arc<Ceiling>>;

fn no_store(body: serde_json::Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert("cache-control", axum::http::HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert("pragma", axum::http::HeaderValue::from_static("no-cache"));
    response
}

/// `POST /oauth2/token`: a fixed token (bare) or one signature (crypto).
async fn http_token(axum::extract::State(ceiling): Shared, _body: axum::body::Bytes) -> axum::response::Response {
    let access_token = match ceiling.mode {
        Mode::Bare => ceiling.fixed_token.clone(),
        Mode::Crypto => ceiling.sign().unwrap_or_default(),
    };
    no_store(serde_json::json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": 3600, "scope": "bench:read",
    }))
}

/// `POST /oauth2/introspect`: a fixed answer (bare) or one verification (crypto).
async fn http_introspect(axum::extract::State(ceiling): Shared, body: axum::body::Bytes) -> axum::response::Response {
    let active = match ceiling.mode {
        Mode::Bare => true,
        Mode::Crypto => {
            let token = body
                .strip_prefix(b"token=")
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or("");
            let mut validation = Validation::new(ceiling.key.algorithm().jwt_algorithm());
            validation.validate_aud = false;
            decode::<serde_json::Value>(token, ceiling.key.decoding_key(), &validation).is_ok()
        }
    };
    no_store(serde_json::json!({
        "active": active, "scope": "bench:read", "client_id": "bench", "sub": "bench",
        "aud": "http://127.0.0.1:8080", "iss": "http://127.0.0.1:8080", "exp": now() + 3600,
        "iat": now(), "nbf": now(), "jti": "fixed", "token_type": "Bearer",
    }))
}

/// Serves a ceiling on `listen` until killed, printing the bound address;
/// over TLS with Tessera's own TLS setup (`tessera_server::tls`, client
/// certificates as `files` says) when `tls` is given, so that a mutual-TLS
/// scenario has a ceiling on the same transport.
pub async fn serve(mode: Mode, listen: SocketAddr, tls: Option<tessera_server::tls::TlsFiles>) -> Result<(), String> {
    let record = SigningKey::generate(KeyAlgorithm::Es256, now())?;
    let key = SigningKey::from_record(&record).map_err(|e| e.to_string())?;
    let mut ceiling = Ceiling {
        mode,
        key,
        fixed_token: String::new(),
    };
    ceiling.fixed_token = ceiling.sign().map_err(|e| e.to_string())?;
    let ceiling = std::sync::Arc::new(ceiling);
    let service = TokenServiceServer::from_arc(ceiling.clone());
    // The same stack as Tessera: an axum router with the tonic service
    // mounted beside the HTTP endpoints, answering as Tessera's shim does.
    let app = axum::Router::new()
        .route_service("/tessera.v1.TokenService/{*method}", service)
        .route("/oauth2/token", axum::routing::post(http_token))
        .route("/oauth2/introspect", axum::routing::post(http_introspect))
        .with_state(ceiling);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(files) = tls {
        return serve_tls(listener, app, files).await;
    }
    println!("ceiling listening on http://{addr}");
    // As Tessera does: no Nagle delay on small answers.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// The TLS accept loop: Tessera's handshake, then the same router.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    files: tessera_server::tls::TlsFiles,
) -> Result<(), String> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tls = tessera_server::tls::TlsReloader::new(files)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("ceiling listening on https://{addr}");
    loop {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let handshake = tls.handshake();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(stream) = handshake.acceptor().accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

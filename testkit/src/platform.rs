//! A stand-in platform identity issuer, run for real: its own key pairs, its
//! discovery document and JWKS served over HTTPS (a certificate from its own
//! test CA) by a small server that, like a Kubernetes API server, wants a
//! bearer token for both; and tokens shaped like a kubelet's projected
//! service-account tokens and like SPIRE's JWT-SVIDs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::{ClientKey, TestPki};

/// A running stand-in issuer. Dropping it stops the server.
pub struct PlatformIssuer {
    /// The issuer, `https://127.0.0.1:PORT`, as its tokens' `iss` says.
    pub issuer: String,
    /// The CA that issued its HTTPS certificate (`tessera trust add --ca-file`).
    pub ca_file: PathBuf,
    /// The bearer token its endpoints want, in a file (`--bearer-token-file`).
    pub token_file: PathBuf,
    state: Arc<State>,
    /// Dropped with the issuer: stops its server thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

struct State {
    /// Published keys, newest first; tokens are signed with the first.
    keys: Mutex<Vec<Arc<ClientKey>>>,
    bearer: String,
    available: AtomicBool,
    fetches: AtomicUsize,
    issuer: Mutex<String>,
    alg: String,
    /// The JWKS `use` of published keys: `sig`, or `jwt-svid` for a SPIFFE bundle.
    key_use: &'static str,
}

impl PlatformIssuer {
    /// A Kubernetes-like issuer signing RS256, as kube-apiserver does.
    pub fn kubernetes(dir: &Path) -> Self {
        Self::start(dir, "k8s", "RS256", "sig")
    }

    /// A SPIRE-like trust domain signing ES256; its JWKS is a SPIFFE bundle.
    pub fn spire(dir: &Path) -> Self {
        Self::start(dir, "spire", "ES256", "jwt-svid")
    }

    fn start(dir: &Path, name: &str, alg: &str, key_use: &'static str) -> Self {
        let pki = TestPki::write(dir, &format!("{name}-issuer"));
        let token_file = dir.join(format!("{name}-reader-token"));
        let bearer = format!("reader-token-{name}-{}", std::process::id());
        std::fs::write(&token_file, format!("{bearer}\n")).unwrap();
        let state = Arc::new(State {
            keys: Mutex::new(vec![Arc::new(ClientKey::generate(&format!("{name}-key-1"), alg))]),
            bearer,
            available: AtomicBool::new(true),
            fetches: AtomicUsize::new(0),
            issuer: Mutex::new(String::new()),
            alg: alg.to_owned(),
            key_use,
        });
        let acceptor = acceptor(&pki);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let issuer = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        *state.issuer.lock().unwrap() = issuer.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        // Its own thread and runtime, so it serves whatever runtime (or
        // none) the test runs on, and stops when the issuer is dropped.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept_loop = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let (acceptor, state) = (acceptor.clone(), serving.clone());
                        tokio::spawn(async move {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = answer(tls, &state).await;
                            }
                        });
                    }
                };
                tokio::select! {
                    () = accept_loop => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            issuer,
            ca_file: pki.ca,
            token_file,
            state,
            _stop: stop,
        }
    }

    /// Where it serves its JWKS (as a Kubernetes API server does).
    pub fn jwks_url(&self) -> String {
        format!("{}/openid/v1/jwks", self.issuer)
    }

    /// Its published key set, as JSON (a SPIFFE bundle for [`Self::spire`]).
    pub fn jwks(&self) -> String {
        self.state.jwks().to_string()
    }

    /// The `kid` tokens are signed with now.
    pub fn current_kid(&self) -> String {
        self.state.keys.lock().unwrap()[0].kid().to_owned()
    }

    /// Signs claims with its current key (`kid` in the header).
    pub fn sign(&self, claims: &Value) -> String {
        self.state.keys.lock().unwrap()[0].sign(claims)
    }

    /// The claims of a kubelet-projected service-account token for
    /// `system:serviceaccount:NAMESPACE:NAME`, living `lifetime` seconds.
    pub fn kubelet_claims(&self, namespace: &str, account: &str, audience: &str, lifetime: i64) -> Value {
        let now = now();
        json!({
            "aud": [audience],
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "jti": format!("{:x}", rand_u64()),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": "node-1", "uid": "5f1c2e4a-0b1d-4c6e-9a7f-2d3e4f5a6b7c"},
                "pod": {"name": format!("{account}-7d9f8c6b5-x2x9q"), "uid": "0c9b8a7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"},
                "serviceaccount": {"name": account, "uid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"},
                "warnafter": now + lifetime * 8 / 10
            },
            "sub": format!("system:serviceaccount:{namespace}:{account}"),
        })
    }

    /// A kubelet-projected token, signed.
    pub fn kubelet_token(&self, namespace: &str, account: &str, audience: &str) -> String {
        self.sign(&self.kubelet_claims(namespace, account, audience, 3600))
    }

    /// The claims of a JWT-SVID as SPIRE issues it (no `iss` by default).
    pub fn svid_claims(&self, spiffe_id: &str, audience: &str, lifetime: i64) -> Value {
        let now = now();
        json!({"sub": spiffe_id, "aud": [audience], "exp": now + lifetime, "iat": now})
    }

    /// A JWT-SVID, signed.
    pub fn jwt_svid(&self, spiffe_id: &str, audience: &str) -> String {
        self.sign(&self.svid_claims(spiffe_id, audience, 300))
    }

    /// Signs claims with the key that signed before the last rotation.
    pub fn sign_with_previous(&self, claims: &Value) -> String {
        self.state.keys.lock().unwrap()[1].sign(claims)
    }

    /// Rotates: a new key signs from now on, published first; the old one
    /// stays published (as kube-apiserver keeps its previous keys).
    pub fn rotate(&self) -> String {
        let mut keys = self.state.keys.lock().unwrap();
        let kid = format!("{}-rotated-{}", self.state.alg.to_lowercase(), keys.len() + 1);
        keys.insert(0, Arc::new(ClientKey::generate(&kid, &self.state.alg)));
        kid
    }

    /// Makes its endpoints answer 503 (down) or serve again.
    pub fn set_available(&self, available: bool) {
        self.state.available.store(available, Ordering::SeqCst);
    }

    /// JWKS requests answered with keys so far.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// A key that signs like the issuer's but that it never published.
    pub fn impostor_key(&self) -> ClientKey {
        ClientKey::generate(&self.current_kid(), &self.state.alg)
    }
}

impl State {
    fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .lock()
            .unwrap()
            .iter()
            .map(|key| {
                let mut jwk: Value = serde_json::from_str(key.public_jwk()).unwrap();
                jwk["kid"] = json!(key.kid());
                jwk["use"] = json!(self.key_use);
                if self.key_use == "sig" {
                    jwk["alg"] = json!(self.alg);
                }
                jwk
            })
            .collect();
        if self.key_use == "jwt-svid" {
            json!({"keys": keys, "spiffe_sequence": 1, "spiffe_refresh_hint": 300})
        } else {
            json!({"keys": keys})
        }
    }
}

fn acceptor(pki: &TestPki) -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Reads one HTTP/1.1 request and answers it, then closes.
async fn answer(mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>, state: &State) -> io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    let authorized = text.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("authorization") && value.trim() == format!("Bearer {}", state.bearer)
        })
    });
    let issuer = state.issuer.lock().unwrap().clone();
    let (status, body) = if !state.available.load(Ordering::SeqCst) {
        ("503 Service Unavailable", json!({"message": "down for the test"}))
    } else if !authorized {
        (
            "401 Unauthorized",
            json!({"kind": "Status", "message": "Unauthorized", "code": 401}),
        )
    } else if path == "/.well-known/openid-configuration" {
        (
            "200 OK",
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/openid/v1/jwks"),
                   "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                   "id_token_signing_alg_values_supported": [state.alg]}),
        )
    } else if path == "/openid/v1/jwks" {
        state.fetches.fetch_add(1, Ordering::SeqCst);
        ("200 OK", state.jwks())
    } else {
        ("404 Not Found", json!({"message": "not found"}))
    };
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(body.as_bytes()).await?;
    tls.shutdown().await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

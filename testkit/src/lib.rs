//! Tessera's testkit (unpublished): what the server's tests, the end-to-end
//! suite and the bench harness share. Real `tessera` processes on port 0
//! with a temp SQLite store ([`Server`]), the real CLI ([`cli`]), client keys
//! for `private_key_jwt` ([`ClientKey`]), a test PKI ([`TestPki`]), throwaway
//! PostgreSQL clusters ([`pg_cluster`]), a stand-in platform identity
//! issuer serving its keys over HTTPS ([`platform`]), and HTTP and gRPC clients whose
//! failures print the whole exchange ([`Exchange`]).

// Test support panics on purpose: a failed helper is a failed test.
#![allow(dead_code, clippy::unwrap_used)]

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tessera_proto::pb;
use tessera_proto::pb::token_service_client::TokenServiceClient;
use tessera_server::keys::{KeyAlgorithm, SigningKey};
use tonic::transport::Channel;

pub mod certs;
pub mod pg_cluster;
pub mod platform;
pub mod softhsm;

/// `target/<profile>`: integration tests run from `target/<profile>/deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The `tessera` binary Cargo built for this test run: the end-to-end tests
/// are tests of the `tessera-server` package, so Cargo builds its binary
/// before running them (the file `CARGO_BIN_EXE_tessera` names). No build
/// happens here. `TESSERA_BIN` overrides.
pub fn tessera_bin() -> PathBuf {
    let path = match std::env::var_os("TESSERA_BIN") {
        Some(path) => PathBuf::from(path),
        None => profile_dir().join(format!("tessera{}", std::env::consts::EXE_SUFFIX)),
    };
    assert!(
        path.exists(),
        "no tessera binary at {}: run the end-to-end tests with `cargo test`, which builds it first",
        path.display()
    );
    path
}

/// One of the SDK's examples (`examples/<name>.rs`, package
/// `tessera-examples`). Cargo builds a package's binaries for its own tests
/// only, and the examples are another package's, so the one test that runs
/// them builds them here, once per test process.
///
/// The build names the whole workspace, as the README's `cargo test
/// --workspace` does, so features resolve the same way and it reuses that
/// command's artefacts (building one package alone resolves a narrower
/// feature set and recompiles tokio, hyper and tonic).
pub fn example_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "--workspace", "--examples"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = build.current_dir(workspace).status().expect("running cargo build");
        assert!(status.success(), "building the SDK examples failed");
        profile_dir.join("examples")
    });
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A running `tessera serve`, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: String,
    pub dir: Arc<tempfile::TempDir>,
    pub store_url: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn drain(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

/// How to start a [`Server`]: on a fresh store unless [`ServerBuilder::store`]
/// names one, with extra `serve` flags and environment.
#[derive(Default)]
#[must_use]
pub struct ServerBuilder {
    store: Option<(Arc<tempfile::TempDir>, String)>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ServerBuilder {
    /// Extra `serve` flags.
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.args.extend(extra.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Extra environment (e.g. `RUST_LOG`).
    pub fn envs(mut self, env: &[(&str, &str)]) -> Self {
        self.env
            .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// An existing store (to test a restart, or a replica), with the
    /// directory that holds it.
    pub fn store(mut self, dir: Arc<tempfile::TempDir>, store_url: String) -> Self {
        self.store = Some((dir, store_url));
        self
    }

    /// Starts `tessera serve` on port 0 and waits for its listening line. It
    /// polls the store every 100 ms unless the flags set `--store-poll-ms`.
    pub fn start(self) -> Server {
        let (dir, store_url) = self.store.unwrap_or_else(|| {
            let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
            let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
            (dir, url)
        });
        let extra: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::spawn(dir, store_url, &extra, &env)
    }
}

impl Server {
    /// A server on a fresh store, with default flags.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    fn spawn(dir: Arc<tempfile::TempDir>, store_url: String, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let poll: &[&str] = if extra.contains(&"--store-poll-ms") {
            &[]
        } else {
            &["--store-poll-ms", "100"]
        };
        let mut child = Command::new(tessera_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--store", &store_url])
            .args(poll)
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .env_remove("TESSERA_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tessera serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().expect("stderr"), stderr.clone());
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let stdout_copy = stdout.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut sent = false;
            while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                stdout_copy.lock().unwrap().push_str(&line);
                if !sent && let Some(rest) = line.strip_prefix("tessera listening on ") {
                    let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(url);
                    sent = true;
                }
                line.clear();
            }
        });
        let (scheme, addr) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => {
                let (scheme, addr) = url.split_once("://").expect("a URL in the listening line");
                (scheme.to_owned(), addr.parse().expect("listening address"))
            }
            Err(_) => {
                let _ = child.kill();
                panic!("tessera did not start; stderr:\n{}", stderr.lock().unwrap());
            }
        };
        Self {
            child,
            addr,
            scheme,
            dir,
            store_url,
            stdout,
            stderr,
        }
    }

    /// `http://ADDR`, or `https://ADDR` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (at most `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Everything the server logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most `within`) until the server has logged a line holding
    /// `needle` (log lines are written off the request path), and returns
    /// everything it logged by then; panics with the log if it never does.
    pub async fn logged(&self, needle: &str, within: Duration) -> String {
        if !eventually(within, async || self.stderr().contains(needle)).await {
            panic!("no log line with {needle:?} within {within:?}:\n{}", self.stderr());
        }
        self.stderr()
    }

    /// Runs a `tessera` admin command against this server's store.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.store_url, args)
    }

    /// `tessera client create ID --scope … --json`, returning the secret.
    pub fn create_client(&self, id: &str, extra: &[&str]) -> String {
        let mut args = vec!["client", "create", id, "--json"];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "tessera {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("client create --json prints JSON");
        assert_eq!(json["client_id"], id);
        json["client_secret"].as_str().expect("client_secret").to_owned()
    }

    /// Stops the server with SIGKILL and waits for it.
    pub fn kill(mut self) -> (Arc<tempfile::TempDir>, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self.store_url.clone())
    }

    /// A raw gRPC client.
    pub async fn grpc(&self) -> TokenServiceClient<Channel> {
        let channel = Channel::from_shared(self.url())
            .expect("a valid URL")
            .connect()
            .await
            .expect("gRPC connection");
        TokenServiceClient::new(channel)
    }

    /// The value of one line of `/metrics`, named up to its value (labels
    /// included, e.g. `tessera_hashing_busy`); 0 when absent.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.http("GET", "/metrics").send().await.body;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A raw HTTP request to this server.
    pub fn http(&self, method: &str, path: &str) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: format!("{}{path}", self.url()),
            headers: vec![],
            body: vec![],
        }
    }

    /// `POST PATH` with `application/x-www-form-urlencoded`; add the body.
    pub fn form(&self, path: &str) -> HttpRequest {
        self.http("POST", path)
            .header("content-type", "application/x-www-form-urlencoded")
    }

    /// `POST /oauth2/token` with a form body.
    pub fn token_form(&self, body: &str) -> HttpRequest {
        self.form("/oauth2/token").body(body.as_bytes().to_vec())
    }

    /// A client-credentials grant with Basic authentication: the whole exchange.
    pub async fn grant(&self, id: &str, secret: &str) -> Exchange {
        self.token_form("grant_type=client_credentials")
            .basic(id, secret)
            .send()
            .await
    }

    /// The access token of a grant that must succeed.
    ///
    /// # Panics
    /// When the grant fails (the exchange is printed).
    pub async fn issued(&self, id: &str, secret: &str) -> String {
        let exchange = self.grant(id, secret).await;
        assert_eq!(exchange.status, 200, "{exchange}");
        exchange.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// `POST /oauth2/introspect` of `token` by `caller` (id, secret), Basic.
    pub async fn introspect(&self, caller: (&str, &str), token: &str) -> Exchange {
        self.form("/oauth2/introspect")
            .basic(caller.0, caller.1)
            .body(format!("token={token}").into_bytes())
            .send()
            .await
    }

    /// Whether introspection by `caller` says `token` is active.
    ///
    /// # Panics
    /// When introspection does not answer 200.
    pub async fn is_active(&self, caller: (&str, &str), token: &str) -> bool {
        let exchange = self.introspect(caller, token).await;
        assert_eq!(exchange.status, 200, "{exchange}");
        exchange.json()["active"] == true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client key pair registered through `tessera client add-key --jwk FILE`.
pub struct ClientKey {
    kid: String,
    alg: jsonwebtoken::Algorithm,
    private: jsonwebtoken::EncodingKey,
    public_jwk: String,
    private_pkcs8: Vec<u8>,
}

pub fn register_key(server: &Server, client_id: &str, kid: &str, alg: KeyAlgorithm) -> ClientKey {
    let key = ClientKey::unregistered(kid, alg);
    let path = server.dir.path().join(format!("{client_id}-{kid}.jwk"));
    std::fs::write(&path, &key.public_jwk).unwrap();
    let out = server.cli(&[
        "client",
        "add-key",
        client_id,
        "--jwk",
        path.to_str().unwrap(),
        "--kid",
        kid,
    ]);
    assert!(
        out.status.success(),
        "add-key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

impl ClientKey {
    /// A fresh key pair for the JWS algorithm `alg` (`ES256`, `EdDSA` or
    /// `RS256`), registered nowhere yet. Takes the name, not the server's
    /// enum, so the server's own unit tests can use it too.
    pub fn generate(kid: &str, alg: &str) -> Self {
        Self::unregistered(kid, KeyAlgorithm::parse(alg).unwrap())
    }

    /// A fresh key pair, registered nowhere yet.
    pub fn unregistered(kid: &str, alg: KeyAlgorithm) -> Self {
        let record = SigningKey::generate(alg, 0).unwrap();
        let public_jwk = serde_json::to_string(SigningKey::from_record(&record).unwrap().public_jwk()).unwrap();
        let private = match alg {
            KeyAlgorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_der(&record.private_pkcs8),
            KeyAlgorithm::EdDsa => jsonwebtoken::EncodingKey::from_ed_der(&record.private_pkcs8),
            // jsonwebtoken's DER constructor wants PKCS#1; PEM takes PKCS#8.
            KeyAlgorithm::Rs256 => jsonwebtoken::EncodingKey::from_rsa_pem(pkcs8_pem(&record.private_pkcs8).as_bytes())
                .expect("an RSA PKCS#8 key"),
        };
        Self {
            kid: kid.into(),
            alg: alg.jwt_algorithm(),
            private,
            public_jwk,
            private_pkcs8: record.private_pkcs8.to_vec(),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private half, to sign assertions a test builds itself.
    pub fn private_key(&self) -> &jsonwebtoken::EncodingKey {
        &self.private
    }

    /// The public key as an X.509 SubjectPublicKeyInfo PEM, as
    /// `tessera client add-key --pem` takes it (ES256 and EdDSA keys).
    pub fn public_pem(&self) -> String {
        use aws_lc_rs::encoding::AsDer as _;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
        let der: Vec<u8> = match self.alg {
            jsonwebtoken::Algorithm::ES256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.private_pkcs8)
                    .unwrap()
                    .public_key()
                    .as_der()
                    .unwrap()
                    .as_ref()
                    .to_vec()
            }
            jsonwebtoken::Algorithm::EdDSA => Ed25519KeyPair::from_pkcs8(&self.private_pkcs8)
                .unwrap()
                .public_key()
                .as_der()
                .unwrap()
                .as_ref()
                .to_vec(),
            other => panic!("public_pem: {other:?} keys are not supported here"),
        };
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }

    /// The public key as a JWK (JSON), as registered.
    pub fn public_jwk(&self) -> &str {
        &self.public_jwk
    }

    /// The private key as a PKCS#8 PEM, as a client would keep it.
    pub fn private_pem(&self) -> String {
        pkcs8_pem(&self.private_pkcs8)
    }

    /// A `private_key_jwt` assertion with these claims, `kid` in the header.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.private).unwrap()
    }
}

fn pkcs8_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// A test PKI in a directory: a CA, a server certificate for `localhost`
/// and `127.0.0.1`, and a client certificate, all issued by that CA.
pub struct TestPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Writes `NAME-ca.pem`, `NAME-cert.pem`, `NAME-key.pem`, `NAME-client.pem`, `NAME-client-key.pem`.
    pub fn write(dir: &Path, name: &str) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("Tessera test CA {name}"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (cert, key) = leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(vec!["billing.internal".into()], ExtendedKeyUsagePurpose::ClientAuth);
        let path = |suffix: &str| dir.join(format!("{name}-{suffix}.pem"));
        let pki = Self {
            ca: path("ca"),
            cert: path("cert"),
            key: path("key"),
            client_cert: path("client"),
            client_key: path("client-key"),
        };
        std::fs::write(&pki.ca, ca.pem()).unwrap();
        std::fs::write(&pki.cert, cert).unwrap();
        std::fs::write(&pki.key, key).unwrap();
        std::fs::write(&pki.client_cert, client_cert).unwrap();
        std::fs::write(&pki.client_key, client_key).unwrap();
        pki
    }
}

/// Runs curl (silent but for errors, 20 s at most) with `args`.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed (.ci/run installs it)")
}

/// A path as a command-line argument.
pub fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs `tessera serve --listen 127.0.0.1:0 --store STORE ARGS` expecting it
/// to refuse to start (within 30 s): its exit code and stderr.
///
/// # Panics
/// When it starts instead.
pub fn serve_refused(store_url: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(tessera_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--store", store_url])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tessera serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("waiting for tessera serve") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return (status.code(), stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tessera serve {args:?} started instead of refusing");
}

/// Runs `tessera ARGS` with `TESSERA_STORE` set.
pub fn cli(store_url: &str, args: &[&str]) -> Output {
    Command::new(tessera_bin())
        .args(args)
        .env("TESSERA_STORE", store_url)
        .stdin(Stdio::null())
        .output()
        .expect("running tessera")
}

/// An HTTP request under construction; `send` returns the whole exchange.
#[derive(Clone)]
pub struct HttpRequest {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    pub fn basic(self, id: &str, secret: &str) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        self.header("authorization", format!("Basic {encoded}"))
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    pub async fn send(self) -> Exchange {
        let url = self.url.clone();
        self.try_send()
            .await
            .unwrap_or_else(|e| panic!("HTTP request to {url} failed to complete: {e}"))
    }

    /// Sends it; `Err` when no complete answer came back (e.g. the server died).
    pub async fn try_send(self) -> Result<Exchange, reqwest::Error> {
        static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
        let client = CLIENT.get_or_init(|| reqwest::Client::builder().no_proxy().build().expect("reqwest client"));
        let mut request = client.request(self.method.parse().expect("method"), &self.url);
        for (name, value) in &self.headers {
            request = request.header(
                name.as_str(),
                reqwest::header::HeaderValue::from_bytes(value).expect("header"),
            );
        }
        let response = request.body(self.body.clone()).send().await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.text().await?;
        Ok(Exchange {
            request: self,
            status,
            headers,
            body,
        })
    }
}

/// One HTTP request and its response. `Display` shows both, for assertion messages.
pub struct Exchange {
    pub request: HttpRequest,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("response is not JSON ({e}):\n{self}"))
    }

    /// The `error` member of an RFC 6749 §5.2 answer.
    pub fn oauth_error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error member:\n{self}"))
            .to_owned()
    }

    /// Asserts an RFC 6749 §5.2 error answer with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status\n{self}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "content type\n{self}"
        );
        let json = self.json();
        assert_eq!(json["error"], code, "error code\n{self}");
        let description = json["error_description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "error_description\n{self}");
        assert_rfc6749_description(description, &self.to_string());
        assert!(
            self.body.len() <= MAX_ERROR_BODY,
            "an error answer of {} bytes\n{self}",
            self.body.len()
        );
    }
}

/// Longest error answer body accepted: "a few hundred bytes" whatever the
/// request carried.
pub const MAX_ERROR_BODY: usize = 400;

/// RFC 6749 §5.2: `error_description` "MUST NOT include characters outside
/// the set %x20-21 / %x23-5B / %x5D-7E". Also used for gRPC status messages.
#[track_caller]
pub fn assert_rfc6749_description(description: &str, context: &str) {
    let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E');
    if let Some(bad) = description.chars().find(|c| !allowed(*c)) {
        panic!("error_description holds {bad:?}, outside RFC 6749 section 5.2's set: {description:?}\n{context}");
    }
    assert!(
        description.len() <= 240,
        "a description of {} bytes\n{context}",
        description.len()
    );
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- request\n{} {}", self.request.method, self.request.url)?;
        for (name, value) in &self.request.headers {
            writeln!(f, "{name}: {}", String::from_utf8_lossy(value))?;
        }
        let shown = String::from_utf8_lossy(&self.request.body);
        let shown: String = shown.chars().take(2000).collect();
        writeln!(f, "\n{shown}\n--- response\n{}", self.status)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {value}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

/// Fetches the JWKS over HTTP and verifies `token` with the key its `kid` names,
/// using the algorithm of that key (never the token's header).
pub async fn verify_with_http_jwks(server: &Server, token: &str) -> serde_json::Value {
    let jwks = server.http("GET", "/.well-known/jwks.json").send().await;
    assert_eq!(jwks.status, 200, "{jwks}");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.body).expect("a JWK set");
    let header = jsonwebtoken::decode_header(token).expect("JWT header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
    let kid = header.kid.expect("kid in header");
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS:\n{jwks}"));
    let alg = jwk.common.key_algorithm.expect("alg in JWK");
    let alg: jsonwebtoken::Algorithm = alg.try_into().expect("signing algorithm");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key from JWK");
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[server.url()]);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud", "nbf"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("token does not verify against the JWKS: {e}"))
        .claims
}

/// Polls `check` until it returns true or `within` passes.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gRPC IssueToken with a client secret.
pub fn issue_request(id: &str, secret: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        grant_type: String::new(),
        client_id: id.into(),
        credential: Some(pb::issue_token_request::Credential::ClientSecret(secret.into())),
        scopes: vec![],
        audiences: vec![],
    }
}

/// The OAuth code carried in a gRPC status's `ErrorInfo`.
pub fn grpc_oauth_error(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .reason
}

/// Sends raw bytes to the server and returns everything it answers before
/// closing, writing and reading at once: a server that refuses a huge body
/// early answers while the client is still sending (as curl sees it).
pub async fn raw_http(addr: SocketAddr, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        // The server may close before taking it all; that is the behaviour under test.
        let _ = writer.write_all(&request).await;
        let _ = writer.shutdown().await;
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
    writing.abort();
    if read.is_err() {
        panic!(
            "no complete answer within 10 s; got so far:\n{}",
            String::from_utf8_lossy(&answer)
        );
    }
    String::from_utf8_lossy(&answer).into_owned()
}

//! Server processes under test, pinned to a core, and what /proc says of them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tessera_server::admin::{self, NewClient};
use tessera_server::store::{self, Store};
use tonic::metadata::{Ascii, MetadataValue};

use crate::Common;

/// A running server, killed on drop.
pub struct Spawned {
    child: Child,
    url: String,
}

impl Spawned {
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `program args…` pinned to `cpu` (when taskset exists) and waits
    /// for its "listening on http://ADDR" line.
    fn start(program: &PathBuf, args: &[&str], cpu: usize, log: Option<PathBuf>) -> Result<Self, String> {
        let mut command = if which("taskset") {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        } else {
            Command::new(program)
        };
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).map_err(|e| e.to_string())?),
            None => Stdio::null(),
        };
        let mut child = command
            .args(args)
            // Audit lines on, as in production; TESSERA_BENCH_LOG overrides, to measure their cost.
            .env(
                "RUST_LOG",
                std::env::var("TESSERA_BENCH_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                return Err(format!("{} exited before listening", program.display()));
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap_or("").to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, url })
    }

    /// A ceiling server of this binary.
    pub async fn ceiling(common: &Common, mode: crate::ceiling::Mode) -> Result<Self, String> {
        Self::ceiling_with(common, mode, &[]).await
    }

    /// A ceiling server of this binary, with extra flags (its TLS files).
    pub async fn ceiling_with(common: &Common, mode: crate::ceiling::Mode, extra: &[&str]) -> Result<Self, String> {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let mode = match mode {
            crate::ceiling::Mode::Bare => "bare",
            crate::ceiling::Mode::Crypto => "crypto",
        };
        let mut args = vec!["ceiling", "--mode", mode];
        args.extend_from_slice(extra);
        Self::start(&me, &args, common.server_cpu, None)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The issuer Tessera is started with when one is needed.
pub const BENCH_ISSUER: &str = "https://tessera.bench";

/// A store prepared once and served by fresh Tessera processes.
pub struct TesseraSetup {
    /// The throwaway PostgreSQL cluster, with `--postgres`; stopped on drop.
    postgres: Option<tessera_testkit::pg_cluster::PgCluster>,
    dir: tempfile::TempDir,
    store_url: String,
    tessera: PathBuf,
    /// Secret of client `bench` (scope bench:read).
    pub secret: String,
    /// Secret of client `introspector` (scope tessera:introspect).
    pub introspector_secret: String,
    /// Secret of the disabled client `disabled`.
    pub disabled_secret: String,
    /// Clients each used once by the cold scenario.
    pub cold: Arc<Vec<(String, String)>>,
}

impl TesseraSetup {
    pub async fn prepare(common: &Common, cold_clients: usize) -> Result<Self, String> {
        let tessera = match &common.tessera {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .with_file_name("tessera"),
        };
        if !tessera.exists() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p tessera-server` or pass --tessera",
                tessera.display()
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let postgres = if common.postgres {
            let cluster = tessera_testkit::pg_cluster::PgCluster::start_or_skip("tessera-bench --postgres")
                .ok_or("--postgres: no PostgreSQL server binaries found")?;
            Some(cluster)
        } else {
            None
        };
        let store_url = match &postgres {
            Some(cluster) => cluster.create_database("bench"),
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        let store = store::open(&store_url).await?;
        let create = |id: &str, scope: &str| NewClient {
            client_id: id.into(),
            scopes: vec![scope.into()],
            audiences: vec![],
            token_ttl: None,
            bind_to_certificate: false,
        };
        let now = tessera_server::clock::Clock::now(&tessera_server::clock::SystemClock);
        let secret = admin::create_client(store.as_ref(), create("bench", "bench:read"), now)
            .await
            .map_err(|e| e.to_string())?;
        let introspector = admin::create_client(store.as_ref(), create("introspector", "tessera:introspect"), now)
            .await
            .map_err(|e| e.to_string())?;
        let disabled = admin::create_client(store.as_ref(), create("disabled", "bench:read"), now)
            .await
            .map_err(|e| e.to_string())?;
        store
            .set_client_disabled("disabled", true)
            .await
            .map_err(|e| e.to_string())?;
        let mut cold = Vec::with_capacity(cold_clients);
        // Two at a time: hashing at the real argon2 parameters is the slow part.
        for pair in (0..cold_clients).collect::<Vec<_>>().chunks(2) {
            let mut handles = Vec::new();
            for i in pair {
                let store: Arc<dyn Store> = store.clone();
                let id = format!("cold-{i}");
                let new = create(&id, "bench:read");
                handles.push(tokio::spawn(async move {
                    admin::create_client(store.as_ref(), new, now)
                        .await
                        .map(|s| (id, s.expose().to_owned()))
                }));
            }
            for handle in handles {
                cold.push(handle.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?);
            }
        }
        Ok(Self {
            postgres,
            dir,
            store_url,
            tessera,
            secret: secret.expose().to_owned(),
            introspector_secret: introspector.expose().to_owned(),
            disabled_secret: disabled.expose().to_owned(),
            cold: Arc::new(cold),
        })
    }

    /// Starts Tessera on the prepared store. Throttling is off: the
    /// scenarios repeat failures on purpose and all come from one address.
    pub async fn start(&self, common: &Common, extra: &[&str]) -> Result<Spawned, String> {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &self.store_url,
            "--key-rotation-days",
            "0",
            "--failure-limit",
            "0",
            "--source-failure-limit",
            "0",
        ];
        if self.postgres.is_some() {
            // Required with a shared store: every replica must name one issuer.
            args.extend_from_slice(&["--issuer", BENCH_ISSUER]);
        }
        args.extend_from_slice(extra);
        let log = self.dir.path().join("tessera.log");
        Spawned::start(&self.tessera, &args, common.server_cpu, Some(log))
    }

    /// Whether Tessera runs on PostgreSQL (and is started with `--issuer`
    /// [`BENCH_ISSUER`] for it).
    pub fn on_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// The prepared store's URL.
    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    /// `Basic` credentials of client `bench`, for its own revocations.
    pub fn bench_authorization(&self) -> Result<MetadataValue<Ascii>, String> {
        basic_metadata("bench", &self.secret)
    }

    /// Which store the scenario runs on, for the report.
    pub fn store_kind(&self) -> &'static str {
        if self.postgres.is_some() {
            "PostgreSQL (throwaway cluster, fsync on)"
        } else {
            "SQLite"
        }
    }

    /// `Basic` credentials of client `introspector`, which may introspect any token.
    pub fn introspector_authorization(&self) -> Result<MetadataValue<Ascii>, String> {
        basic_metadata("introspector", &self.introspector_secret)
    }
}

/// An `Authorization: Basic` value (RFC 7617) for a client id and secret.
pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Issues `n` distinct tokens (16 callers over 4 connections) to build an
/// introspection pool.
pub async fn token_pool(server: &Spawned, client_id: &str, secret: &str, n: usize) -> Result<Vec<String>, String> {
    let clients = crate::load::connect(&server.url(), 4).await?;
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let mut client = clients[worker % clients.len()].clone();
        let request = crate::pb_request(client_id, secret);
        let count = n / 16 + usize::from(worker < n % 16);
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::with_capacity(count);
            for _ in 0..count {
                let answer = client
                    .issue_token(request.clone())
                    .await
                    .map_err(|e| format!("building the token pool: {e}"))?;
                tokens.push(answer.into_inner().access_token);
            }
            Ok::<_, String>(tokens)
        }));
    }
    let mut pool = Vec::with_capacity(n);
    for task in tasks {
        pool.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(pool)
}

/// User plus system CPU time the process has used.
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("unexpected /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    const TICKS_PER_SECOND: u64 = 100;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmRSS".to_owned())
}

/// `Basic …` metadata for a client.
pub fn basic_metadata(id: &str, secret: &str) -> Result<MetadataValue<Ascii>, String> {
    basic(id, secret).parse().map_err(|e| format!("{e}"))
}

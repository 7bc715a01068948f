//! A throwaway PostgreSQL cluster for tests: `initdb` in a temp dir, started
//! on a free loopback port, stopped and deleted on drop.
//!
//! Shared by the store's unit tests, the end-to-end tests and the bench
//! harness. PostgreSQL refuses to run as root, so as root every
//! command runs as the `postgres` user through `runuser`, in a temp dir that
//! user owns.
//!
//! Where no PostgreSQL is installed, [`PgCluster::start_or_skip`] says so
//! and the test is skipped; under CI (`CI` set) a missing PostgreSQL fails
//! the test instead, so CI never passes by skipping.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running throwaway cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    tls: bool,
}

/// What a TLS-only cluster serves with: its certificate and key (PEM), and
/// the CA whose client certificates may log in as a role of their CN.
pub struct ServerTls<'a> {
    /// The server's certificate chain file.
    pub cert: &'a Path,
    /// Its key file.
    pub key: &'a Path,
    /// The CA of client certificates (`cert` authentication).
    pub client_ca: &'a Path,
    /// The role that must log in with a client certificate.
    pub cert_role: &'a str,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Where the PostgreSQL server binaries are: `TESSERA_PG_BIN`, else the
/// newest `/usr/lib/postgresql/*/bin`, else whatever `pg_ctl` is on `PATH`.
pub fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TESSERA_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v pg_ctl"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let pg_ctl = PathBuf::from(String::from_utf8_lossy(&on_path.stdout).trim());
    pg_ctl.parent().map(Path::to_path_buf)
}

impl PgCluster {
    /// Starts a cluster, or explains why the calling test is skipped (`None`).
    ///
    /// # Panics
    /// Under CI when PostgreSQL is missing, and whenever a present
    /// PostgreSQL fails to start.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let Some(bin) = binaries() else {
            let why = "PostgreSQL binaries not found (looked at $TESSERA_PG_BIN, /usr/lib/postgresql/*/bin, PATH); \
                       install PostgreSQL (apt-get install postgresql) to run it";
            assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
            eprintln!("SKIPPED {test}: {why}");
            return None;
        };
        Some(Self::start(bin, None))
    }

    /// Starts a cluster that speaks TLS only (`ssl = on`, and a `pg_hba.conf`
    /// with `hostssl` lines only): a connection without TLS is refused, and
    /// `tls.cert_role` logs in only with a client certificate.
    ///
    /// # Panics
    /// As [`Self::start_or_skip`].
    pub fn start_tls_or_skip(test: &str, tls: &ServerTls<'_>) -> Option<Self> {
        let Some(bin) = binaries() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: PostgreSQL binaries not found"
            );
            eprintln!("SKIPPED {test}: PostgreSQL binaries not found");
            return None;
        };
        Some(Self::start(bin, Some(tls)))
    }

    fn start(bin: PathBuf, tls: Option<&ServerTls<'_>>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tessera-pg-")
            .tempdir()
            .expect("temp dir for PostgreSQL");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(dir.path()));
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_postgres,
            tls: tls.is_some(),
        };
        let data = cluster.data_dir();
        cluster.pg("initdb", |c| {
            c.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]);
        });
        if let Some(tls) = tls {
            cluster.configure_tls(tls);
        }
        // A free port: bind, note it, release it. Another process could take it
        // in between, so a failed start tries a few more.
        for attempt in 0..5 {
            cluster.port = free_port();
            if cluster.try_start() {
                return cluster;
            }
            eprintln!("PostgreSQL did not start on port {} (attempt {attempt})", cluster.port);
        }
        panic!(
            "PostgreSQL would not start; log:\n{}",
            std::fs::read_to_string(cluster.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn configure_tls(&self, tls: &ServerTls<'_>) {
        use std::os::unix::fs::PermissionsExt;
        let data = self.data_dir();
        for (from, name) in [
            (tls.cert, "server.crt"),
            (tls.key, "server.key"),
            (tls.client_ca, "client-ca.crt"),
        ] {
            let to = data.join(name);
            std::fs::copy(from, &to).expect("copy TLS file into the cluster");
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let hba = format!(
            "local all all trust\n\
             hostssl all {role} 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 trust\n",
            role = tls.cert_role
        );
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        if self.as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(&data));
        }
    }

    /// Creates a login role (a superuser, so that it can migrate a database).
    pub fn create_role(&self, role: &str) {
        let port = self.port.to_string();
        self.pg("createuser", |c| {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "--superuser", role]);
        });
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` (see [`Self::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, db: &str) -> String {
        let port = self.port.to_string();
        self.pg("createdb", |c| {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", db]);
        });
        self.url(db)
    }

    /// `pg_dump` of database `db`, as an operator would take for a backup.
    pub fn dump(&self, db: &str) -> Vec<u8> {
        let port = self.port.to_string();
        self.pg("pg_dump", |c| {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", db]);
        })
        .stdout
    }

    /// Stops the server (an outage), keeping its data.
    pub fn stop(&self) {
        let data = self.data_dir();
        self.pg("pg_ctl", |c| {
            c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
        });
    }

    /// Starts it again on the same port after [`Self::stop`].
    pub fn restart(&self) {
        assert!(self.try_start(), "PostgreSQL did not start again");
    }

    fn try_start(&self) -> bool {
        let data = self.data_dir();
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            options.push_str(
                " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=client-ca.crt",
            );
        }
        let log = self.dir.path().join("log");
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "-o", &options, "start"]);
        command.output().map(|o| o.status.success()).unwrap_or(false)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg(&self, tool: &str, args: impl FnOnce(&mut Command)) -> Output {
        let mut command = self.command(tool);
        args(&mut command);
        run(&mut command)
    }
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

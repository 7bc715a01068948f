//! A SoftHSM2 token for tests: its own configuration and token directory in a
//! temp dir, initialised with `softhsm2-util` and given an EC P-256 key pair
//! with `pkcs11-tool`, as an operator would (Debian's `softhsm2` and `opensc`).
//!
//! Where SoftHSM2 is not installed the test is skipped, saying so; under CI
//! (`CI` set) it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The token's label.
pub const TOKEN: &str = "tessera";
/// The key pair's label.
pub const KEY_LABEL: &str = "tessera-signing";
/// The user PIN.
const PIN: &str = "87654321";

/// An initialised token with one ES256 key pair.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    /// The `SOFTHSM2_CONF` file every process using the token needs in its environment.
    pub conf: PathBuf,
    /// The PKCS#11 library.
    pub module: PathBuf,
    /// A file (mode 0600) holding the user PIN.
    pub pin_file: PathBuf,
}

/// Where Debian (and others) put the SoftHSM2 PKCS#11 library.
pub fn module() -> Option<PathBuf> {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

impl SoftHsm {
    /// A fresh token, or `None` (the test skipped) without SoftHSM2.
    ///
    /// # Panics
    /// Under CI when SoftHSM2 or pkcs11-tool is missing, and when a tool fails.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let tools = Command::new("softhsm2-util").arg("--version").output().is_ok()
            && Command::new("pkcs11-tool").arg("--help").output().is_ok();
        let Some(module) = module().filter(|_| tools) else {
            let why = "SoftHSM2 or pkcs11-tool not found; install them (apt-get install softhsm2 opensc) to run it";
            assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
            eprintln!("SKIPPED {test}: {why}");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        let pin_file = dir.path().join("pin");
        write_private(&pin_file, PIN);
        let hsm = Self {
            dir,
            conf,
            module,
            pin_file,
        };
        hsm.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--so-pin",
                "12345678",
                "--pin",
                PIN,
            ],
        );
        hsm.generate_key(KEY_LABEL, "01");
        Some(hsm)
    }

    /// Generates another EC P-256 key pair on the token.
    pub fn generate_key(&self, label: &str, id_hex: &str) {
        let module = self.module.to_str().expect("UTF-8 path").to_owned();
        self.run(
            "pkcs11-tool",
            &[
                "--module",
                &module,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--label",
                label,
                "--id",
                id_hex,
            ],
        );
    }

    /// `pkcs11:token=tessera;object=LABEL`.
    pub fn uri(&self, label: &str) -> String {
        format!("pkcs11:token={TOKEN};object={label}")
    }

    /// A PIN file holding another PIN.
    pub fn wrong_pin_file(&self) -> PathBuf {
        let file = self.dir.path().join("wrong-pin");
        if !file.exists() {
            write_private(&file, "11111111");
        }
        file
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = Command::new(tool)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn write_private(path: &Path, contents: &str) {
    tessera_server::private_files::write_new(path, contents.as_bytes()).expect("write a private file");
}

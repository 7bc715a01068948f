//! TLS for the one listener: rustls (TLS 1.2 and 1.3, aws-lc), a certificate
//! and key from PEM files, optionally client certificates (a client CA,
//! required or optional; [`client_auth`] says which are accepted), reloaded
//! without a restart when the files change or on SIGHUP.
//!
//! A reload that fails (a half-written file, a key that does not match)
//! keeps the configuration in force and logs why: a renewal mistake must not
//! take the service down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

pub mod client_auth;
pub mod names;
mod peer;

pub use client_auth::ClientAuth;
use client_auth::{AnyCertificate, ChainCheck};
pub use peer::{PeerCertificate, PeerCertificateInfo};

/// Where the TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA that client certificates chain to (PEM), for `tls_client_auth`.
    pub client_ca: Option<PathBuf>,
    /// Whether client certificates are asked for, and required; `None`
    /// asks for none. [`client_auth`] has the table.
    pub client_auth: Option<ClientAuth>,
}

/// One loaded configuration: the handshake's, and how to tell afterwards
/// whether a presented certificate chains to the client CA.
#[derive(Clone)]
struct Loaded {
    config: Arc<ServerConfig>,
    chain: ChainCheck,
}

/// What a connection's handshake needs, taken from the configuration in
/// force when it was accepted.
#[derive(Clone)]
pub struct Handshake {
    loaded: Loaded,
}

impl Handshake {
    /// The acceptor for the handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.loaded.config.clone())
    }

    /// The client's certificate after a completed handshake, if it sent one.
    pub fn peer_certificate(&self, connection: &rustls::ServerConnection) -> Option<PeerCertificate> {
        let chain = connection.peer_certificates()?;
        let leaf = chain.first()?;
        PeerCertificate::read(leaf.as_ref(), self.loaded.chain.chained(chain))
    }
}

/// The TLS configuration in force, swapped whole on reload.
pub struct TlsReloader {
    files: TlsFiles,
    current: ArcSwap<Loaded>,
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {what} {path:?}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {path:?} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} {path:?} holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// A webpki verifier of chains to the client CA.
fn ca_verifier(
    ca: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(ca, "--tls-client-ca")? {
        roots
            .add(cert)
            .map_err(|e| format!("--tls-client-ca {ca:?}: unusable CA certificate: {e}"))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("--tls-client-ca {ca:?}: {e}"))
}

/// Builds the configuration from the files, checking everything.
fn load_all(files: &TlsFiles) -> Result<Loaded, String> {
    let certs = read_certs(&files.cert, "--tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("cannot read a private key from --tls-key {:?}: {e}", files.key))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?;
    let any_certificate = |mandatory| {
        Arc::new(AnyCertificate {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let (builder, chain) = match (&files.client_ca, files.client_auth) {
        (_, None) => (builder.with_no_client_auth(), ChainCheck::None),
        (Some(ca), Some(ClientAuth::Required)) => (
            builder.with_client_cert_verifier(ca_verifier(ca, provider.clone())?),
            ChainCheck::InHandshake,
        ),
        (Some(ca), Some(ClientAuth::Optional)) => (
            builder.with_client_cert_verifier(any_certificate(false)),
            ChainCheck::After(Arc::new(client_auth::CheckedChains::new(ca_verifier(
                ca,
                provider.clone(),
            )?))),
        ),
        (None, Some(mode)) => (
            builder.with_client_cert_verifier(any_certificate(mode == ClientAuth::Required)),
            ChainCheck::None,
        ),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert and --tls-key do not make a usable pair: {e}"))?;
    // gRPC needs HTTP/2; curl and older clients may speak HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        chain,
    })
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl TlsReloader {
    /// Loads the files once; a failure here is a start-up error.
    ///
    /// # Errors
    /// A message naming the file and what is wrong with it.
    pub fn new(files: TlsFiles) -> Result<Self, String> {
        let loaded = load_all(&files)?;
        let reloader = Self {
            stamps: Mutex::new(Vec::new()),
            current: ArcSwap::from_pointee(loaded),
            files,
        };
        reloader.changed();
        Ok(reloader)
    }

    /// The next connection's handshake, with the configuration in force.
    pub fn handshake(&self) -> Handshake {
        Handshake {
            loaded: Loaded::clone(&self.current.load()),
        }
    }

    fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.files.cert.as_path(), self.files.key.as_path()];
        paths.extend(self.files.client_ca.as_deref());
        paths
    }

    /// True when a file's modification time or size moved since the last look.
    fn changed(&self) -> bool {
        let now: Vec<_> = self.paths().into_iter().map(stamp).collect();
        let mut stamps = self.stamps.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = *stamps != now;
        *stamps = now;
        changed
    }

    /// Loads the files again; on failure the configuration in force stays.
    pub fn reload(&self, why: &str) {
        match load_all(&self.files) {
            Ok(loaded) => {
                self.current.store(Arc::new(loaded));
                info!(why, "TLS certificate reloaded");
            }
            Err(e) => warn!(why, error = %e, "TLS reload failed; keeping the certificate in force"),
        }
    }

    /// Reloads when the files change (checked every `every`) and on SIGHUP.
    pub fn spawn_watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let reloader = Arc::downgrade(self);
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let by_signal = match hangup.as_mut() {
                    Some(signal) => tokio::select! {
                        _ = tick.tick() => false,
                        _ = signal.recv() => true,
                    },
                    None => {
                        tick.tick().await;
                        false
                    }
                };
                #[cfg(not(unix))]
                let by_signal = {
                    tick.tick().await;
                    false
                };
                let Some(reloader) = reloader.upgrade() else {
                    return;
                };
                if by_signal {
                    reloader.changed();
                    reloader.reload("SIGHUP");
                } else if reloader.changed() {
                    reloader.reload("files changed");
                }
            }
        })
    }
}

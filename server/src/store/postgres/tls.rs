//! TLS to PostgreSQL, configured the way libpq users write it: `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` in the `postgres://` URL's query.
//! Certificates are checked with rustls (webpki).
//!
//! | `sslmode` | TLS | server certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default) | when the server offers it | no (chain, if `sslrootcert` is given) |
//! | `require` | always | no (chain, if `sslrootcert` is given, as libpq does) |
//! | `verify-ca` | always | chain to `sslrootcert` |
//! | `verify-full` | always | chain to `sslrootcert`, and the host name |
//!
//! `sslrootcert=system` trusts the system's roots. Without a check, TLS hides
//! the traffic from a passive listener but not from someone in the middle;
//! the README recommends `verify-full`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// `sslmode`, as libpq names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS always.
    Require,
    /// TLS always, the server's certificate chained to `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "disable" => Ok(Self::Disable),
            "allow" | "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            )),
        }
    }

    /// The name in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of a store URL.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `sslmode`.
    pub mode: SslMode,
    root_cert: Option<String>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

/// Splits the TLS parameters off a `postgres://` URL: the URL tokio-postgres
/// reads (without them) and the settings.
///
/// # Errors
/// A message naming the parameter that is wrong.
pub fn split_url(url: &str) -> Result<(String, TlsSettings), String> {
    let mut settings = TlsSettings {
        mode: SslMode::Prefer,
        root_cert: None,
        client_cert: None,
        client_key: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), settings));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = tessera_proto::percent::decode(value)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("the store URL's {name} is not well percent-encoded"))?;
        match name {
            "sslmode" => settings.mode = SslMode::parse(&decoded)?,
            "sslrootcert" => settings.root_cert = Some(decoded),
            "sslcert" => settings.client_cert = Some(PathBuf::from(decoded)),
            "sslkey" => settings.client_key = Some(PathBuf::from(decoded)),
            _ => kept.push(pair),
        }
    }
    if settings.client_cert.is_some() != settings.client_key.is_some() {
        return Err("sslcert and sslkey go together: give both (the client certificate and its key) or neither".into());
    }
    if matches!(settings.mode, SslMode::VerifyCa | SslMode::VerifyFull) && settings.root_cert.is_none() {
        return Err(format!(
            "sslmode={} checks the server's certificate against sslrootcert: add sslrootcert=FILE (the CA's \
             certificate, PEM) or sslrootcert=system",
            settings.mode.as_str()
        ));
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, settings))
}

impl TlsSettings {
    /// What tokio-postgres is told: whether to ask for TLS and whether to insist.
    pub fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }

    /// The connector, with the certificate checks `sslmode` asks for.
    ///
    /// # Errors
    /// When a certificate or key file cannot be read.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let chain = match &self.root_cert {
            None => None,
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots(roots)?), provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?,
            ),
        };
        let verifier = Arc::new(ServerCheck {
            chain,
            check_name: self.mode == SslMode::VerifyFull,
            algorithms,
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("sslcert {}: {e}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("sslcert and sslkey do not make a usable pair: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots(&self, root_cert: &str) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        if root_cert == "system" {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        } else {
            let certs = CertificateDer::pem_file_iter(root_cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {root_cert}: {e}"))?;
            for cert in certs {
                roots.add(cert).map_err(|e| format!("sslrootcert {root_cert}: {e}"))?;
            }
        }
        if roots.is_empty() {
            return Err(format!("sslrootcert {root_cert} holds no CA certificate"));
        }
        Ok(roots)
    }

    /// What a connection failure means, naming the check that failed, when
    /// it is about TLS; `None` otherwise.
    pub fn explain(&self, error: &(dyn std::error::Error + 'static), host: &str) -> Option<String> {
        let mode = self.mode.as_str();
        let mut source = Some(error);
        while let Some(e) = source {
            let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
                e.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            });
            if let Some(rustls::Error::InvalidCertificate(why)) = rustls_error {
                return Some(match why {
                    CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                        "the PostgreSQL server's certificate is not signed by the CA in sslrootcert (sslmode={mode}): \
                         wrong CA, or sslrootcert names another one"
                    ),
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                        "the PostgreSQL server's certificate does not name the host {host:?} (sslmode=verify-full \
                         checks the host name): connect by a name the certificate holds"
                    ),
                    CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                        "the PostgreSQL server's certificate has expired".to_owned()
                    }
                    other => format!("the PostgreSQL server's certificate was refused (sslmode={mode}): {other:?}"),
                });
            }
            if let Some(other) = rustls_error {
                return Some(format!(
                    "TLS with the PostgreSQL server failed (sslmode={mode}): {other}"
                ));
            }
            if e.to_string().contains("server does not support TLS") {
                return Some(format!(
                    "the PostgreSQL server does not offer TLS, and sslmode={mode} requires it: turn ssl on at the \
                     server, or (on a network you trust) use sslmode=prefer"
                ));
            }
            if let Some(db) = e.downcast_ref::<tokio_postgres::error::DbError>()
                && db.message().contains("no encryption")
            {
                return Some(format!(
                    "PostgreSQL refused a connection without TLS ({}): the server requires TLS; set sslmode=require \
                     or, better, sslmode=verify-full with sslrootcert",
                    db.message()
                ));
            }
            source = e.source();
        }
        None
    }
}

/// What `sslmode` checks of the server's certificate (the table in the
/// module docs): the chain to `sslrootcert` when one is given, the host name
/// only for `verify-full`. The handshake's signature is verified against the
/// certificate presented in every mode, so the server holds its key.
#[derive(Debug)]
struct ServerCheck {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_off_the_url_and_the_rest_kept() {
        let (url, tls) =
            split_url("postgres://u:p@db:5432/t?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem")
                .unwrap();
        assert_eq!(url, "postgres://u:p@db:5432/t?application_name=x");
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            split_url("postgres://db/t").unwrap().1.mode,
            SslMode::Prefer,
            "libpq's default"
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused_saying_why() {
        let err = split_url("postgres://db/t?sslmode=verify-ca").unwrap_err();
        assert!(err.contains("sslrootcert"), "{err}");
        let err = split_url("postgres://db/t?sslmode=sometimes").unwrap_err();
        assert!(err.contains("verify-full"), "{err}");
        let err = split_url("postgres://db/t?sslmode=require&sslcert=/c.pem").unwrap_err();
        assert!(err.contains("sslkey"), "{err}");
    }
}

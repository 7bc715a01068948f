//! Fetching a trusted issuer's keys over HTTPS: from its JWKS URL, or from
//! the `jwks_uri` its OpenID discovery document names.
//!
//! Only `https://` is fetched, with rustls: the system's roots, or only the
//! certificates of the trust's `--ca-file` (a Kubernetes API server's CA).
//! Redirects are not followed (a redirect is a failed fetch), and a body
//! over [`MAX_JWKS_BYTES`] is refused. A bearer token, read fresh from its file before each fetch
//! (the kubelet rotates it), is sent only to the URL the operator
//! configured or to the issuer's own origin: never to a `jwks_uri` on
//! another host that a discovery document names.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio_rustls::TlsConnector;

use super::jwks::{MAX_JWKS_BYTES, VerifyingKey, parse_jwks};
use crate::store::{JwksSource, TrustedIssuerRecord};

/// An HTTPS client for one trusted issuer: one HTTP/1.1 request per
/// connection, which is all a fetch every few minutes needs.
pub(super) struct Fetcher {
    tls: TlsConnector,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl Fetcher {
    /// A client trusting the record's CA certificates, or the system's roots.
    ///
    /// # Errors
    /// When the CA file's text holds no certificate, or TLS cannot be set up.
    pub(super) fn new(record: &TrustedIssuerRecord, timeout: Duration) -> Result<Self, String> {
        let roots = roots(record.ca_pem.as_deref())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
        })
    }

    /// The issuer's current keys.
    ///
    /// # Errors
    /// What failed, for the log: discovery, the fetch, or the key set.
    pub(super) async fn keys(&self, record: &TrustedIssuerRecord) -> Result<Vec<VerifyingKey>, String> {
        let bearer = bearer_token(record).await?;
        let (url, send_bearer) = match &record.jwks {
            JwksSource::Url(url) => (url.clone(), true),
            JwksSource::Discovery => {
                let url = self.discover(record, bearer.as_deref()).await?;
                let same_origin = origin(&url) == origin(&record.issuer);
                (url, same_origin)
            }
            JwksSource::Inline(jwks) => return parse_jwks(jwks),
        };
        let body = self.get(&url, bearer.as_deref().filter(|_| send_bearer)).await?;
        parse_jwks(&body).map_err(|e| format!("{url}: {e}"))
    }

    /// The `jwks_uri` of `ISSUER/.well-known/openid-configuration`.
    async fn discover(&self, record: &TrustedIssuerRecord, bearer: Option<&str>) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            record.issuer.trim_end_matches('/')
        );
        let body = self.get(&url, bearer).await?;
        let document: Discovery =
            serde_json::from_str(&body).map_err(|e| format!("{url}: no jwks_uri in the discovery document: {e}"))?;
        if !document.jwks_uri.starts_with("https://") {
            return Err(format!("{url}: jwks_uri {:?} is not https", document.jwks_uri));
        }
        Ok(document.jwks_uri)
    }

    /// GET `url` over HTTPS, within the timeout.
    async fn get(&self, url: &str, bearer: Option<&str>) -> Result<String, String> {
        tokio::time::timeout(self.timeout, self.get_unbounded(url, bearer))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", self.timeout.as_secs())))
            .map_err(|e| format!("{url}: {e}"))
    }

    async fn get_unbounded(&self, url: &str, bearer: Option<&str>) -> Result<String, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err("only https:// is fetched".into());
        }
        let host = uri
            .host()
            .ok_or("the URL names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(443);
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("host {host:?}: {e}"))?;
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        let driver = tokio::spawn(connection);
        let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
        let mut request = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(header::HOST, authority)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("tessera/", env!("CARGO_PKG_VERSION")));
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed (at most {MAX_JWKS_BYTES} bytes): {e}"))?
            .to_bytes();
        driver.abort();
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8".into())
    }
}

/// The root store: the given PEM certificates only, or the system's.
fn roots(ca_pem: Option<&str>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("the CA file is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA file holds an unusable certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the CA file holds no certificate".into());
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    Ok(roots)
}

/// The bearer token from the record's file, read now.
async fn bearer_token(record: &TrustedIssuerRecord) -> Result<Option<String>, String> {
    let Some(path) = &record.bearer_token_file else {
        return Ok(None);
    };
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("cannot read the bearer token file {path}: {e}"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("the bearer token file {path} is empty"));
    }
    Ok(Some(token.to_owned()))
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        assert_eq!(
            origin("https://kubernetes.default.svc/openid/v1/jwks"),
            "https://kubernetes.default.svc"
        );
        assert_eq!(origin("https://127.0.0.1:8443"), "https://127.0.0.1:8443");
        assert_eq!(origin("https://a.example:1/x?y"), "https://a.example:1");
        assert_ne!(origin("https://a.example.evil/"), origin("https://a.example"));
    }
}

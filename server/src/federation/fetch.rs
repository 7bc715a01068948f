//! Fetching a trusted issuer's keys over HTTPS: from its JWKS URL, or from
//! the `jwks_uri` its OpenID discovery document names.
//!
//! Only `https://` is fetched, with rustls: the system's roots, or only the
//! certificates of the trust's `--ca-file` (a Kubernetes API server's CA).
//! Redirects are not followed, and a body over [`MAX_JWKS_BYTES`] is
//! refused. A bearer token, read fresh from its file before each fetch
//! (the kubelet rotates it), is sent only to the URL the operator
//! configured or to the issuer's own origin: never to a `jwks_uri` on
//! another host that a discovery document names.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use super::jwks::{MAX_JWKS_BYTES, VerifyingKey, parse_jwks};
use crate::store::{JwksSource, TrustedIssuerRecord};

/// An HTTPS client for one trusted issuer.
pub(super) struct Fetcher {
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl Fetcher {
    /// A client trusting the record's CA certificates, or the system's roots.
    ///
    /// # Errors
    /// When the CA file's text holds no certificate, or the client cannot be built.
    pub(super) fn new(record: &TrustedIssuerRecord, timeout: Duration) -> Result<Self, String> {
        let roots = roots(record.ca_pem.as_deref())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTPS client: {e}"))?;
        Ok(Self { client })
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

    async fn get(&self, url: &str, bearer: Option<&str>) -> Result<String, String> {
        let mut request = self.client.get(url).header(ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let mut response = request.send().await.map_err(|e| format!("{url}: {}", describe(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url}: answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {}", describe(&e)))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("{url}: the answer is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| format!("{url}: the answer is not UTF-8"))
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

/// An error with its causes: reqwest's own message hides the TLS reason.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

//! Trusted issuers and the platform identities bound to clients: what
//! `tessera trust …` and `tessera client add-federated` change.

use super::AdminError;
use crate::authority::is_valid_audience;
use crate::clock::UnixTime;
use crate::federation::parse_jwks;
use crate::store::{FederatedIdentityRecord, JwksSource, Store, StoreError, TrustedIssuerRecord};

/// Longest issuer or subject accepted.
const MAX_NAME_LEN: usize = 512;
/// Longest `--max-lifetime`: a year, what Kubernetes' extended tokens live.
pub const MAX_TRUST_LIFETIME_SECS: u32 = 366 * 86_400;

/// An issuer to trust, as given on the command line.
#[derive(Debug, Clone)]
pub struct NewTrust {
    /// `https://…` as its tokens' `iss` says, or `spiffe://TRUST_DOMAIN`.
    pub issuer: String,
    /// Where its keys come from; an inline key set must hold a usable key.
    pub jwks: JwksSource,
    /// Extra audiences its tokens may carry.
    pub audiences: Vec<String>,
    /// Longest token lifetime accepted, in seconds.
    pub max_lifetime_secs: u32,
    /// PEM CA certificates for the key URL's TLS.
    pub ca_pem: Option<String>,
    /// Absolute path of a bearer token file the server reads before each fetch.
    pub bearer_token_file: Option<String>,
}

/// Validates and stores a trusted issuer. `own_issuer`, when known, is the
/// server's issuer, which can never be trusted.
///
/// # Errors
/// A message saying what to fix.
pub async fn add_trusted_issuer(
    store: &dyn Store,
    trust: NewTrust,
    own_issuer: Option<&str>,
    now: UnixTime,
) -> Result<TrustedIssuerRecord, AdminError> {
    check_issuer(&trust.issuer)?;
    let same = |own: &str| own.trim_end_matches('/') == trust.issuer.trim_end_matches('/');
    if own_issuer.is_some_and(same) {
        return Err(AdminError::OwnIssuer(trust.issuer));
    }
    check_source(&trust)?;
    if let Some(bad) = trust.audiences.iter().find(|a| !is_valid_audience(a)) {
        return Err(AdminError::InvalidAudience(bad.clone()));
    }
    if trust.max_lifetime_secs == 0 || trust.max_lifetime_secs > MAX_TRUST_LIFETIME_SECS {
        return Err(AdminError::InvalidJwks(format!(
            "the longest token lifetime must be 1 to {MAX_TRUST_LIFETIME_SECS} seconds"
        )));
    }
    let record = TrustedIssuerRecord {
        issuer: trust.issuer,
        jwks: trust.jwks,
        audiences: trust.audiences,
        max_lifetime_secs: trust.max_lifetime_secs,
        ca_pem: trust.ca_pem,
        bearer_token_file: trust.bearer_token_file,
        created_at: now,
    };
    match store.add_trusted_issuer(record.clone()).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => return Err(AdminError::IssuerTrusted(record.issuer)),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::ISSUER_TRUSTED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), issuer = %record.issuer, jwks = record.jwks.kind());
    Ok(record)
}

/// Stops trusting an issuer.
///
/// # Errors
/// When it was not trusted, or the store failed.
pub async fn remove_trusted_issuer(store: &dyn Store, issuer: &str) -> Result<(), AdminError> {
    if !store.remove_trusted_issuer(issuer).await? {
        return Err(AdminError::UnknownIssuer(issuer.to_owned()));
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::ISSUER_UNTRUSTED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), issuer = %issuer);
    Ok(())
}

/// Binds a trusted issuer's subject to a client.
///
/// # Errors
/// When the issuer is not trusted, the subject is malformed or taken, or
/// the client does not exist.
pub async fn add_federated_identity(
    store: &dyn Store,
    client_id: &str,
    issuer: &str,
    subject: &str,
    now: UnixTime,
) -> Result<(), AdminError> {
    let trusted = store.trusted_issuers().await?;
    if !trusted.iter().any(|t| t.issuer == issuer) {
        return Err(AdminError::UnknownIssuer(issuer.to_owned()));
    }
    check_subject(issuer, subject)?;
    let identity = FederatedIdentityRecord {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        created_at: now,
    };
    match store.add_federated_identity(client_id, identity).await {
        Ok(true) => {}
        Ok(false) => return Err(AdminError::UnknownClient(client_id.to_owned())),
        Err(StoreError::AlreadyExists(_)) => {
            return Err(AdminError::IdentityTaken {
                issuer: issuer.to_owned(),
                subject: subject.to_owned(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::FEDERATED_IDENTITY_ADDED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id, issuer = %issuer, subject = %subject);
    Ok(())
}

/// Unbinds a subject from a client.
///
/// # Errors
/// When the client has no such binding, or the store failed.
pub async fn remove_federated_identity(
    store: &dyn Store,
    client_id: &str,
    issuer: &str,
    subject: &str,
) -> Result<(), AdminError> {
    if !store.remove_federated_identity(client_id, issuer, subject).await? {
        return Err(AdminError::UnknownIdentity {
            client_id: client_id.to_owned(),
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
        });
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::FEDERATED_IDENTITY_REMOVED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id, issuer = %issuer, subject = %subject);
    Ok(())
}

fn check_issuer(issuer: &str) -> Result<(), AdminError> {
    let invalid = |why: &str| AdminError::InvalidIssuer(format!("issuer {issuer:?} {why}"));
    if issuer.len() > MAX_NAME_LEN || issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(&format!(
            "must be at most {MAX_NAME_LEN} characters without spaces"
        )));
    }
    if issuer.starts_with("spiffe://") {
        return match crate::authority::spiffe_trust_domain(issuer) {
            Some(domain) if domain == issuer => Ok(()),
            _ => Err(invalid(
                "is not a SPIFFE trust domain: use spiffe://TRUST_DOMAIN (lowercase letters, digits, '-', '.', '_'; no path)",
            )),
        };
    }
    let host = issuer.strip_prefix("https://").unwrap_or("");
    if host.is_empty() || host.starts_with('/') {
        return Err(invalid(
            "is neither an https:// URL (as its tokens' iss claim says) nor a SPIFFE trust domain (spiffe://TRUST_DOMAIN)",
        ));
    }
    Ok(())
}

fn check_source(trust: &NewTrust) -> Result<(), AdminError> {
    let fetched = match &trust.jwks {
        JwksSource::Inline(text) => {
            parse_jwks(text).map_err(|e| AdminError::InvalidJwks(format!("the key set: {e}")))?;
            false
        }
        JwksSource::Url(url) => {
            if !url.starts_with("https://") || url.len() <= "https://".len() {
                return Err(AdminError::InvalidJwks(format!(
                    "JWKS URL {url:?} is not https: keys fetched in the clear could be replaced on the way"
                )));
            }
            true
        }
        JwksSource::Discovery => {
            if trust.issuer.starts_with("spiffe://") {
                return Err(AdminError::InvalidJwks(
                    "a SPIFFE trust domain has no OpenID discovery document: give its bundle (a JWKS) as a file or URL"
                        .into(),
                ));
            }
            true
        }
    };
    if !fetched && (trust.ca_pem.is_some() || trust.bearer_token_file.is_some()) {
        return Err(AdminError::InvalidJwks(
            "a CA file or bearer token file serves keys fetched from a URL, not keys given in a file".into(),
        ));
    }
    if let Some(pem) = &trust.ca_pem {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .filter(Result::is_ok)
            .count();
        if certificates == 0 {
            return Err(AdminError::InvalidJwks("the CA file holds no PEM certificate".into()));
        }
    }
    if let Some(path) = &trust.bearer_token_file
        && !std::path::Path::new(path).is_absolute()
    {
        return Err(AdminError::InvalidJwks(format!(
            "the bearer token file {path:?} must be an absolute path: the server reads it, from its own working directory"
        )));
    }
    Ok(())
}

fn check_subject(issuer: &str, subject: &str) -> Result<(), AdminError> {
    if subject.is_empty() || subject.len() > MAX_NAME_LEN || subject.chars().any(char::is_control) {
        return Err(AdminError::InvalidSubject(format!(
            "subject {subject:?} must be 1 to {MAX_NAME_LEN} characters without control characters"
        )));
    }
    if issuer.starts_with("spiffe://") && crate::authority::spiffe_trust_domain(subject) != Some(issuer) {
        return Err(AdminError::InvalidSubject(format!(
            "subject {subject:?} is not a SPIFFE ID of trust domain {issuer}: use {issuer}/PATH"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_urls_or_spiffe_trust_domains() {
        assert!(check_issuer("https://kubernetes.default.svc.cluster.local").is_ok());
        assert!(check_issuer("https://token.actions.githubusercontent.com").is_ok());
        assert!(check_issuer("spiffe://example.org").is_ok());
        for bad in [
            "http://k8s",
            "https://",
            "spiffe://example.org/ns/x",
            "spiffe://",
            "k8s",
            "https://a b",
        ] {
            assert!(check_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_spiffe_subject_must_lie_in_its_trust_domain() {
        assert!(check_subject("spiffe://example.org", "spiffe://example.org/ns/payments/sa/billing").is_ok());
        assert!(check_subject("spiffe://example.org", "spiffe://other.org/ns/payments").is_err());
        assert!(check_subject("https://k8s", "system:serviceaccount:payments:billing").is_ok());
        assert!(check_subject("https://k8s", "").is_err());
        assert!(check_subject("https://k8s", "a\nb").is_err());
    }
}

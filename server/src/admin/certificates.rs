//! Registering the TLS client certificates that authenticate as a client
//! (RFC 8705 section 2), and changing a client's settings.

use rustls_pki_types::pem::{PemObject, SectionKind};
use tessera_proto::confirmation::certificate_thumbprint;

use super::{AdminError, check_audiences, check_scopes, check_token_ttl, first_of_each};
use crate::clock::UnixTime;
use crate::store::{CertificateMatch, ClientCertificateRecord, ClientUpdate, Store, StoreError};
use crate::tls::names::canonical_dn;

/// Longest name registered.
const MAX_NAME_LEN: usize = 1024;

/// A certificate registration as an operator writes it.
#[derive(Debug, Clone)]
pub enum CertificateSpec {
    /// `--san-uri URI`: a certificate from the client CA with this URI SAN.
    SanUri(String),
    /// `--san-dns NAME`: a certificate from the client CA with this DNS SAN.
    SanDns(String),
    /// `--subject-dn DN`: a certificate from the client CA with this subject (RFC 4514).
    SubjectDn(String),
    /// `--pem FILE`'s contents: this one certificate, CA or none.
    Pem(String),
    /// A certificate's SHA-256 thumbprint (base64url), as a client lists it:
    /// what `tessera export` writes for a certificate registered with `--pem`.
    Thumbprint(String),
}

impl CertificateSpec {
    /// Checks the registration and puts it in the form it is matched in.
    ///
    /// # Errors
    /// [`AdminError::InvalidCertificate`], saying what is wrong.
    pub fn to_match(&self) -> Result<CertificateMatch, AdminError> {
        let invalid = |why: String| AdminError::InvalidCertificate(why);
        let check_name = |kind: &str, name: &str| {
            if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(|c| c.is_control() || c == ' ') {
                return Err(invalid(format!(
                    "{kind} {name:?} must be 1 to {MAX_NAME_LEN} characters without spaces or control characters"
                )));
            }
            Ok(())
        };
        match self {
            Self::SanUri(uri) => {
                check_name("URI", uri)?;
                let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
                    !scheme.is_empty()
                        && !rest.is_empty()
                        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                });
                if !scheme_ok {
                    return Err(invalid(format!(
                        "URI {uri:?} has no scheme: write it in full, e.g. spiffe://example.org/ns/payments/sa/billing"
                    )));
                }
                Ok(CertificateMatch::SanUri(uri.clone()))
            }
            Self::SanDns(name) => {
                check_name("DNS name", name)?;
                let valid = name
                    .split('.')
                    .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                if !valid {
                    return Err(invalid(format!(
                        "DNS name {name:?} is not a host name (letters, digits and '-' in dot-separated labels; no wildcards: a name is matched exactly)"
                    )));
                }
                Ok(CertificateMatch::SanDns(name.to_ascii_lowercase()))
            }
            Self::SubjectDn(dn) => canonical_dn(dn).map(CertificateMatch::SubjectDn).map_err(|why| {
                invalid(format!(
                    "subject DN {dn:?}: {why}; write it as openssl x509 -noout -subject -nameopt RFC2253 prints it"
                ))
            }),
            Self::Pem(pem) => Ok(CertificateMatch::Thumbprint(certificate_thumbprint(&one_certificate(
                pem,
            )?))),
            Self::Thumbprint(x5t) => {
                // base64url without padding of 32 bytes: 43 characters.
                let decoded = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, x5t);
                if decoded.map(|d| d.len()) != Ok(32) {
                    return Err(invalid(format!(
                        "thumbprint {x5t:?} is not a SHA-256 thumbprint (43 characters of unpadded base64url)"
                    )));
                }
                Ok(CertificateMatch::Thumbprint(x5t.clone()))
            }
        }
    }
}

/// The DER of the one certificate in a PEM text, refusing anything else in it.
fn one_certificate(pem: &str) -> Result<Vec<u8>, AdminError> {
    let invalid = |why: &str| AdminError::InvalidCertificate(why.to_owned());
    let mut certificates = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        match section {
            Ok((SectionKind::Certificate, der)) => certificates.push(der),
            Ok((SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey, _)) => {
                return Err(invalid(
                    "the file holds a private key: register the certificate alone, and keep the key with the client",
                ));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(AdminError::InvalidCertificate(format!(
                    "the file is not valid PEM: {e}"
                )));
            }
        }
    }
    let [der] = <[Vec<u8>; 1]>::try_from(certificates).map_err(|found| {
        AdminError::InvalidCertificate(format!(
            "the file must hold exactly one CERTIFICATE block (the client's own), not {}",
            found.len()
        ))
    })?;
    if x509_parser::parse_x509_certificate(&der).is_err() {
        return Err(invalid("the CERTIFICATE block is not an X.509 certificate"));
    }
    Ok(der)
}

/// Registers a certificate for a client; returns the registration as stored.
///
/// # Errors
/// When the registration is malformed or present already, or the client does not exist.
pub async fn add_client_certificate(
    store: &dyn Store,
    client_id: &str,
    spec: &CertificateSpec,
    now: UnixTime,
) -> Result<CertificateMatch, AdminError> {
    let matcher = spec.to_match()?;
    let record = ClientCertificateRecord {
        matcher: matcher.clone(),
        created_at: now,
    };
    match store.add_client_certificate(client_id, record).await {
        Ok(true) => {}
        Ok(false) => return Err(AdminError::UnknownClient(client_id.to_owned())),
        Err(StoreError::AlreadyExists(_)) => {
            return Err(AdminError::CertificateRegistered {
                client_id: client_id.to_owned(),
                registration: matcher.to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_CERTIFICATE_ADDED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id, kind = matcher.kind(), value = %matcher.value());
    Ok(matcher)
}

/// Removes a client's certificate registration.
///
/// # Errors
/// When the client has no such registration, or the store failed.
pub async fn remove_client_certificate(
    store: &dyn Store,
    client_id: &str,
    spec: &CertificateSpec,
) -> Result<CertificateMatch, AdminError> {
    let matcher = spec.to_match()?;
    if !store.remove_client_certificate(client_id, &matcher).await? {
        return Err(AdminError::UnknownCertificate {
            client_id: client_id.to_owned(),
            registration: matcher.to_string(),
        });
    }
    tracing::info!(target: "tessera::audit", event = crate::audit::CLIENT_CERTIFICATE_REMOVED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(), client_id = %client_id, kind = matcher.kind(), value = %matcher.value());
    Ok(matcher)
}

/// Changes a client's settings, checked as at creation.
///
/// # Errors
/// When a setting is invalid, nothing is to change, or the client does not exist.
pub async fn update_client(store: &dyn Store, client_id: &str, mut update: ClientUpdate) -> Result<(), AdminError> {
    if update == ClientUpdate::default() {
        return Err(AdminError::EmptyUpdate);
    }
    if let Some(scopes) = update.scopes.take() {
        check_scopes(&scopes)?;
        update.scopes = Some(first_of_each(scopes));
    }
    if let Some(audiences) = update.audiences.take() {
        check_audiences(&audiences)?;
        update.audiences = Some(first_of_each(audiences));
    }
    if let Some(ttl) = update.token_ttl {
        check_token_ttl(ttl)?;
    }
    if !store.update_client(client_id, update.clone()).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    tracing::info!(
        target: "tessera::audit",
        event = crate::audit::CLIENT_UPDATED, actor = %crate::audit::actor(), request_id = %crate::request_id::RequestId::current(),
        client_id = %client_id,
        scopes = update.scopes.map(|s| s.join(" ")),
        audiences = update.audiences.map(|a| a.join(" ")),
        token_ttl = update.token_ttl.map(|t| t.map_or("server default".to_owned(), |t| t.to_string())),
        bind_to_certificate = update.bind_to_certificate,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_dns_names_lowercased() {
        assert_eq!(
            CertificateSpec::SanDns("Billing.Internal".into()).to_match().ok(),
            Some(CertificateMatch::SanDns("billing.internal".into()))
        );
        for bad in ["", "*.internal", "a..b", "has space"] {
            assert!(CertificateSpec::SanDns(bad.into()).to_match().is_err(), "{bad:?}");
        }
        for bad in ["", "billing", ":x", "spiffe:"] {
            assert!(CertificateSpec::SanUri(bad.into()).to_match().is_err(), "{bad:?}");
        }
        assert!(
            CertificateSpec::SanUri("spiffe://example.org/ns/a/sa/b".into())
                .to_match()
                .is_ok()
        );
    }

    #[test]
    fn a_pem_registers_its_certificates_thumbprint_and_nothing_else() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["self.test".into()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let spec = CertificateSpec::Pem(cert.pem());
        assert_eq!(
            spec.to_match().ok(),
            Some(CertificateMatch::Thumbprint(certificate_thumbprint(cert.der())))
        );
        let with_key = CertificateSpec::Pem(format!("{}{}", cert.pem(), key.serialize_pem()));
        assert!(matches!(with_key.to_match(), Err(AdminError::InvalidCertificate(m)) if m.contains("private key")));
        let two = CertificateSpec::Pem(format!("{}{}", cert.pem(), cert.pem()));
        assert!(two.to_match().is_err());
        assert!(CertificateSpec::Pem("not pem".into()).to_match().is_err());
    }
}

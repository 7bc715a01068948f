//! Client certificates on the listener: whether it asks for one, which it
//! accepts in the handshake, and which count as chained to the client CA.
//!
//! | `--tls-client-ca` | `--tls-client-auth` | handshake | `chained` |
//! |---|---|---|---|
//! | none | none | no certificate asked for | — |
//! | given | `required` (its default) | a certificate chaining to the CA is required, as before | always |
//! | given | `optional` | any certificate, or none | checked after the handshake (answers kept a while: a resumed session skips the handshake's own checks) |
//! | none | `optional` / `required` | any certificate / some certificate | never |
//!
//! "Any certificate" still means a proven one: rustls checks the client's
//! handshake signature with the certificate's key, so the client holds the
//! private key of what it presented. What such a handshake does *not*
//! check — chain, validity dates, key usage, revocation — is left to
//! Tessera's own check: a certificate that does not chain to the CA can only
//! authenticate by its registered thumbprint (RFC 8705 section 2.2), and
//! every certificate's dates are checked when it is used.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

/// Whether a TLS listener requires client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Asked for, not required: certificate and secret clients side by side.
    Optional,
    /// A connection without a client certificate fails its handshake.
    Required,
}

/// Accepts any client certificate whose handshake signature verifies,
/// leaving the decision to Tessera (see the module docs).
#[derive(Debug)]
pub(super) struct AnyCertificate {
    pub(super) mandatory: bool,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    /// No CA names: some TLS stacks (Go's) send no certificate when none
    /// matches the names, and a self-signed one never does.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

/// How the certificates of one configuration are judged after the handshake.
#[derive(Clone)]
pub(super) enum ChainCheck {
    /// No client CA: nothing chains.
    None,
    /// The handshake required a chain to the CA: whatever got through chains.
    InHandshake,
    /// The handshake took any certificate: check the chain with this verifier.
    After(Arc<CheckedChains>),
}

impl ChainCheck {
    /// Whether `chain` (leaf first) leads to the client CA now.
    pub(super) fn chained(&self, chain: &[CertificateDer<'static>]) -> bool {
        match self {
            Self::None => false,
            Self::InHandshake => !chain.is_empty(),
            Self::After(checked) => checked.chained(chain),
        }
    }
}

/// Chains checked after the handshake, and what the check said.
///
/// A resumed TLS session skips the handshake's certificate checks (the
/// session remembers the client's chain), and a client that opens many
/// connections resumes most of them: checking its chain again on each
/// would cost a signature verification per connection that the handshake
/// itself no longer pays. So the answer is kept, by the SHA-256 of the
/// whole chain, for [`CHECKED_CHAIN_LIFETIME`]; the certificate's own dates
/// are checked at each use anyway. The memory belongs to one loaded
/// configuration: a reloaded client CA starts with none.
pub(super) struct CheckedChains {
    verifier: Arc<dyn ClientCertVerifier>,
    answers: dashmap::DashMap<[u8; 32], (bool, std::time::Instant)>,
}

/// How long a chain check's answer is reused.
const CHECKED_CHAIN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);
/// Answers kept at most; past it, the memory starts again.
const MAX_CHECKED_CHAINS: usize = 10_000;

impl CheckedChains {
    pub(super) fn new(verifier: Arc<dyn ClientCertVerifier>) -> Self {
        Self {
            verifier,
            answers: dashmap::DashMap::new(),
        }
    }

    fn chained(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for cert in chain {
            // Length-prefixed, so that no two chains hash alike by splitting differently.
            digest.update(&(cert.len() as u64).to_be_bytes());
            digest.update(cert.as_ref());
        }
        let Ok(key) = <[u8; 32]>::try_from(digest.finish().as_ref()) else {
            return false;
        };
        if let Some(answer) = self.answers.get(&key)
            && answer.1.elapsed() < CHECKED_CHAIN_LIFETIME
        {
            return answer.0;
        }
        let chained = self
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_ok();
        if self.answers.len() >= MAX_CHECKED_CHAINS {
            self.answers.clear();
        }
        self.answers.insert(key, (chained, std::time::Instant::now()));
        chained
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rustls::server::WebPkiClientVerifier;

    use super::*;

    /// Counts the chain checks it delegates to webpki.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn ClientCertVerifier>,
        calls: AtomicUsize,
    }

    impl ClientCertVerifier for Counting {
        fn root_hint_subjects(&self) -> &[DistinguishedName] {
            self.inner.root_hint_subjects()
        }
        fn verify_client_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            now: UnixTime,
        ) -> Result<ClientCertVerified, rustls::Error> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.verify_client_cert(end_entity, intermediates, now)
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    }

    fn client_certificate(issuer: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["client.test".into()]).expect("params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = match issuer {
            Some(issuer) => params.signed_by(&key, issuer),
            None => params.self_signed(&key),
        };
        cert.expect("certificate").der().clone()
    }

    #[test]
    fn a_chain_is_checked_once_and_its_answer_reused() {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key")).expect("CA");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("verifier");
        let counting = Arc::new(Counting {
            inner: webpki,
            calls: AtomicUsize::new(0),
        });
        let checked = CheckedChains::new(counting.clone());
        let chained = client_certificate(Some(&ca));
        let stranger = client_certificate(None);
        assert!(checked.chained(std::slice::from_ref(&chained)));
        assert!(checked.chained(std::slice::from_ref(&chained)));
        assert!(!checked.chained(std::slice::from_ref(&stranger)));
        assert!(!checked.chained(std::slice::from_ref(&stranger)));
        assert!(!checked.chained(&[]));
        assert_eq!(
            counting.calls.load(Ordering::Relaxed),
            2,
            "one check per distinct chain"
        );
    }
}

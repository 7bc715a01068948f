//! Client certificates on the listener: whether it asks for one, which it
//! accepts in the handshake, and which count as chained to the client CA.
//!
//! | `--tls-client-ca` | `--tls-client-auth` | handshake | `chained` |
//! |---|---|---|---|
//! | none | none | no certificate asked for | — |
//! | given | `required` (its default) | a certificate chaining to the CA is required, as before | always |
//! | given | `optional` | any certificate, or none | checked after the handshake |
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
    After(Arc<dyn ClientCertVerifier>),
}

impl ChainCheck {
    /// Whether `chain` (leaf first) leads to the client CA now.
    pub(super) fn chained(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        match self {
            Self::None => false,
            Self::InHandshake => true,
            Self::After(verifier) => verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .is_ok(),
        }
    }
}

//! What a client's certificate says, read once per connection: its
//! thumbprint, its names, its validity, and whether it chains to the
//! listener's client CA. Every request on the connection carries it, and
//! certificate authentication (RFC 8705 section 2) and token binding
//! (section 3) read it without parsing anything again.

use std::sync::Arc;

use tessera_proto::confirmation::certificate_thumbprint;
use x509_parser::extensions::GeneralName;

use super::names::certificate_dn;

/// The leaf certificate a client presented in the TLS handshake, and what
/// was learnt from it. Cloning is shallow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(Arc<PeerCertificateInfo>);

/// The facts of one presented certificate.
#[derive(Debug, PartialEq, Eq)]
pub struct PeerCertificateInfo {
    /// `x5t#S256`: base64url SHA-256 of the DER.
    pub thumbprint: String,
    /// Whether the chain the client sent leads to the listener's client CA
    /// (`--tls-client-ca`), checked by webpki in the handshake. False for a
    /// self-signed certificate, and whenever no client CA is configured.
    pub chained: bool,
    /// URI subject alternative names (a SPIFFE ID is one).
    pub san_uris: Vec<String>,
    /// DNS subject alternative names.
    pub san_dns: Vec<String>,
    /// The subject DN in canonical RFC 4514 form; `None` when it has a value
    /// that is not a string.
    pub subject_dn: Option<String>,
    /// `notBefore` and `notAfter`, seconds since the Unix epoch.
    pub not_before: i64,
    /// See `not_before`.
    pub not_after: i64,
}

impl PeerCertificate {
    /// Reads a DER certificate; `None` when it does not parse as X.509 (the
    /// handshake's signature check parsed it already, so this does not happen
    /// with a certificate a handshake accepted).
    pub fn read(der: &[u8], chained: bool) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut san_uris = Vec::new();
        let mut san_dns = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => san_uris.push((*uri).to_owned()),
                    GeneralName::DNSName(dns) => san_dns.push((*dns).to_owned()),
                    _ => {}
                }
            }
        }
        Some(Self(Arc::new(PeerCertificateInfo {
            thumbprint: certificate_thumbprint(der),
            chained,
            san_uris,
            san_dns,
            subject_dn: certificate_dn(cert.subject()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })))
    }

    /// The facts.
    pub fn info(&self) -> &PeerCertificateInfo {
        &self.0
    }

    /// `x5t#S256` of the certificate.
    pub fn thumbprint(&self) -> &str {
        &self.0.thumbprint
    }

    /// Whether `now` (seconds since the Unix epoch) lies within the
    /// certificate's validity. Checked at each use, not only in the
    /// handshake: a kept-alive connection can outlive its certificate.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.0.not_before <= now && now <= self.0.not_after
    }
}

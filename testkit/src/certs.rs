//! Client certificates for RFC 8705 tests: a client CA that issues them
//! with the names a test needs (URI and DNS SANs, a subject DN, dates in
//! the past), and self-signed ones. Every file is written to a test's
//! directory, for the real `tessera` process and curl to read.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// The names and dates of a client certificate.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// URI subject alternative names.
    pub uris: Vec<String>,
    /// DNS subject alternative names.
    pub dns: Vec<String>,
    /// Subject attributes, first to last as written in the certificate
    /// (`[("C", "US"), ("O", "Example"), ("CN", "billing")]`).
    pub subject: Vec<(&'static str, String)>,
    /// Valid in 2020 only, so expired now.
    pub expired: bool,
}

impl Names {
    /// A certificate with this URI SAN.
    pub fn uri(uri: &str) -> Self {
        Self {
            uris: vec![uri.into()],
            ..Self::default()
        }
    }

    /// A certificate with this DNS SAN.
    pub fn dns(name: &str) -> Self {
        Self {
            dns: vec![name.into()],
            ..Self::default()
        }
    }

    fn params(&self) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        for (kind, value) in &self.subject {
            let kind = match *kind {
                "CN" => DnType::CommonName,
                "O" => DnType::OrganizationName,
                "OU" => DnType::OrganizationalUnitName,
                "C" => DnType::CountryName,
                "L" => DnType::LocalityName,
                "ST" => DnType::StateOrProvinceName,
                other => panic!("no DnType for {other}"),
            };
            params.distinguished_name.push(kind, value.as_str());
        }
        for uri in &self.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into().expect("an IA5 URI")));
        }
        for name in &self.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.as_str().try_into().expect("an IA5 name")));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if self.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        params
    }
}

/// A client certificate and its key, in memory and on disk.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The certificate (PEM) file.
    pub cert: PathBuf,
    /// The private key (PEM) file.
    pub key: PathBuf,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The key, PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl ClientCert {
    fn write(dir: &Path, name: &str, cert_pem: String, key_pem: String, der: Vec<u8>) -> Self {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, &cert_pem).expect("write certificate");
        std::fs::write(&key, &key_pem).expect("write key");
        Self {
            cert,
            key,
            cert_pem,
            key_pem,
            der,
        }
    }

    /// A self-signed certificate (RFC 8705 `self_signed_tls_client_auth`).
    pub fn self_signed(dir: &Path, name: &str, names: &Names) -> Self {
        let key = KeyPair::generate().expect("key");
        let cert = names.params().self_signed(&key).expect("self-signed certificate");
        Self::write(dir, name, cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    /// `x5t#S256` of the certificate.
    pub fn thumbprint(&self) -> String {
        tessera_proto::confirmation::certificate_thumbprint(&self.der)
    }

    /// The certificate's SHA-256 in hex, as Envoy writes `Hash=`.
    pub fn sha256_hex(&self) -> String {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The certificate and key as a tonic client identity.
    pub fn identity(&self) -> tonic::transport::Identity {
        tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// A CA for client certificates, written to `NAME-ca.pem`.
pub struct ClientCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    /// The CA certificate (PEM) file: what `--tls-client-ca` names.
    pub ca: PathBuf,
}

impl ClientCa {
    /// A fresh CA in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Tessera test client CA {name}"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let ca = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca, issuer.pem()).expect("write CA");
        Self {
            issuer,
            dir: dir.to_owned(),
            ca,
        }
    }

    /// Issues a client certificate, written as `NAME.pem` and `NAME-key.pem`.
    pub fn issue(&self, name: &str, names: &Names) -> ClientCert {
        let key = KeyPair::generate().expect("key");
        let cert = names.params().signed_by(&key, &self.issuer).expect("certificate");
        ClientCert::write(&self.dir, name, cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

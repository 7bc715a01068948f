//! `tls_client_auth` and `self_signed_tls_client_auth` (RFC 8705 section 2):
//! a client proves itself with the certificate of its TLS connection and
//! names itself with `client_id` alone.
//!
//! The handshake proved that the client holds the certificate's private key
//! (rustls checks its signature); whether the certificate chains to the
//! listener's client CA was decided then too (`tls::client_auth`). Here,
//! per request: the client exists and is enabled; the certificate is within
//! its validity dates now; and one of the client's registrations matches it:
//!
//! | registered as | matches a certificate that | RFC 8705 |
//! |---|---|---|
//! | `--san-uri URI` | chains to the client CA and has that URI SAN, exactly | 2.1.2 `tls_client_auth_san_uri` |
//! | `--san-dns NAME` | chains to the client CA and has that DNS SAN (ASCII case aside) | 2.1.2 `tls_client_auth_san_dns` |
//! | `--subject-dn DN` | chains to the client CA and has that subject, RFC 4514 form | 2.1.2 `tls_client_auth_subject_dn` |
//! | `--pem CERT` | is that very certificate (SHA-256 of its DER), CA or none | 2.2 |
//!
//! Every failure is `invalid_client` after the refusal floor; the reason
//! goes to the audit log only. Nothing here is throttled: a wrong
//! certificate costs a few comparisons, and no one else's failures can lock
//! a client out.

use std::sync::Arc;

use subtle::ConstantTimeEq as _;

use super::truncate;
use crate::audit;
use crate::authority::{AuthError, Authority, Challenge};
use crate::request_id::RequestId;
use crate::store::{CertificateMatch, ClientRecord};
use crate::tls::{PeerCertificate, PeerCertificateInfo};

impl Authority {
    /// Authenticates `client_id` by the connection's certificate.
    pub(super) async fn authenticate_certificate(
        &self,
        client_id: &str,
        certificate: &PeerCertificate,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let refuse = |reason: &'static str| {
            tracing::warn!(
                target: "tessera::audit",
                event = audit::CLIENT_CERTIFICATE_REFUSED,
                request_id = %RequestId::current(),
                client_id = %truncate(client_id),
                x5t = certificate.thumbprint(),
                reason,
            );
            AuthError::InvalidClient {
                challenge: Challenge::None,
            }
        };
        let Some(client) = self.client(client_id).await?.filter(|c| !c.disabled) else {
            return Err(refuse("no such client, or disabled"));
        };
        if !certificate.is_valid_at(self.clock.now()) {
            return Err(refuse("the certificate is expired or not yet valid"));
        }
        let info = certificate.info();
        if client.certificates.iter().any(|c| matches(&c.matcher, info)) {
            return Ok(client);
        }
        Err(refuse(if client.certificates.is_empty() {
            "the client has no registered certificate"
        } else if info.chained {
            "no registered certificate matches"
        } else {
            "the certificate does not chain to the client CA and is not registered by thumbprint"
        }))
    }
}

/// Whether a registration matches a presented certificate (the table in the
/// module docs).
pub(crate) fn matches(registered: &CertificateMatch, presented: &PeerCertificateInfo) -> bool {
    match registered {
        CertificateMatch::SanUri(uri) => presented.chained && presented.san_uris.iter().any(|u| u == uri),
        CertificateMatch::SanDns(name) => {
            presented.chained && presented.san_dns.iter().any(|d| d.eq_ignore_ascii_case(name))
        }
        CertificateMatch::SubjectDn(dn) => presented.chained && presented.subject_dn.as_deref() == Some(dn.as_str()),
        CertificateMatch::Thumbprint(thumbprint) => {
            bool::from(thumbprint.as_bytes().ct_eq(presented.thumbprint.as_bytes()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented(chained: bool) -> PeerCertificateInfo {
        PeerCertificateInfo {
            thumbprint: "T".into(),
            chained,
            san_uris: vec!["spiffe://example.org/ns/payments/sa/billing".into()],
            san_dns: vec!["billing.internal".into()],
            subject_dn: Some("CN=billing,O=Example".into()),
            not_before: 0,
            not_after: 10,
        }
    }

    #[test]
    fn names_match_only_certificates_chained_to_the_client_ca_rfc8705_2_1() {
        let names = [
            CertificateMatch::SanUri("spiffe://example.org/ns/payments/sa/billing".into()),
            CertificateMatch::SanDns("Billing.Internal".into()),
            CertificateMatch::SubjectDn("CN=billing,O=Example".into()),
        ];
        for name in &names {
            assert!(matches(name, &presented(true)), "{name}");
            assert!(!matches(name, &presented(false)), "{name}");
        }
    }

    #[test]
    fn a_thumbprint_matches_its_certificate_chained_or_not_rfc8705_2_2() {
        let thumbprint = CertificateMatch::Thumbprint("T".into());
        assert!(matches(&thumbprint, &presented(false)));
        assert!(matches(&thumbprint, &presented(true)));
        assert!(!matches(&CertificateMatch::Thumbprint("U".into()), &presented(false)));
    }

    #[test]
    fn names_match_exactly_not_by_prefix() {
        for name in [
            CertificateMatch::SanUri("spiffe://example.org/ns/payments".into()),
            CertificateMatch::SanDns("billing".into()),
            CertificateMatch::SubjectDn("CN=billing".into()),
        ] {
            assert!(!matches(&name, &presented(true)), "{name}");
        }
    }
}

//! The authorization server metadata document (RFC 8414), built by the core
//! from what it supports, so that it cannot claim a method or algorithm the
//! core does not implement.

use serde_json::{Value, json};
use tessera_proto::oauth::{CLIENT_ASSERTION_TYPES, CLIENT_CREDENTIALS};

use super::Authority;
use crate::keys::KeyAlgorithm;

/// The client authentication methods the core accepts at every endpoint,
/// as registered names (RFC 8414 section 2 takes values from the OAuth
/// token endpoint authentication methods registry). A bearer token is also
/// accepted from introspection and revocation callers, but "bearer" is no
/// registered value.
pub const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "private_key_jwt"];

/// The methods of RFC 8705 section 2, offered when the listener asks for
/// client certificates.
pub const CERTIFICATE_AUTH_METHODS: [&str; 2] = ["tls_client_auth", "self_signed_tls_client_auth"];

/// Where a face serves each endpoint, relative to the issuer.
#[derive(Debug, Clone, Copy)]
pub struct EndpointPaths {
    /// The token endpoint.
    pub token: &'static str,
    /// RFC 7662 introspection.
    pub introspection: &'static str,
    /// RFC 7009 revocation.
    pub revocation: &'static str,
    /// The JWK set.
    pub jwks: &'static str,
}

impl Authority {
    /// The RFC 8414 section 2 metadata document, for endpoints at `paths`.
    pub fn metadata(&self, paths: &EndpointPaths) -> Value {
        let issuer = self.issuer().trim_end_matches('/');
        let algorithms: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.jws_name()).collect();
        let certificates = self.config.client_certificates;
        let mut methods = AUTH_METHODS.to_vec();
        if certificates {
            methods.extend(CERTIFICATE_AUTH_METHODS);
        }
        json!({
            "issuer": self.issuer(),
            "token_endpoint": format!("{issuer}{}", paths.token),
            "jwks_uri": format!("{issuer}{}", paths.jwks),
            "grant_types_supported": [CLIENT_CREDENTIALS],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": algorithms,
            // Not registered by RFC 8414: the client_assertion_type values
            // accepted with private_key_jwt (RFC 7523), so that a platform
            // team can see that SPIFFE JWT-SVIDs and trusted issuers' tokens
            // are (draft-ietf-oauth-spiffe-client-auth).
            "client_assertion_types_supported": CLIENT_ASSERTION_TYPES,
            "introspection_endpoint": format!("{issuer}{}", paths.introspection),
            "introspection_endpoint_auth_methods_supported": methods,
            "revocation_endpoint": format!("{issuer}{}", paths.revocation),
            "revocation_endpoint_auth_methods_supported": methods,
            // RFC 8705 section 3.3: tokens can be bound to client
            // certificates, on a listener that asks for them.
            "tls_client_certificate_bound_access_tokens": certificates,
            // RFC 8414 makes this member required; with no authorization endpoint there are none.
            "response_types_supported": [],
        })
    }
}

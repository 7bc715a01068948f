//! What a face hands the core: a token request and the credentials it
//! presented, face-agnostic; and what the core hands back.

use std::fmt;
use std::net::IpAddr;

use super::secret::ClientSecret;

/// A parsed `Authorization` header (or gRPC `authorization` metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Basic` client credentials, already base64- and form-decoded (RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        client_id: String,
        /// The client secret.
        secret: ClientSecret,
    },
    /// A `Bearer` access token.
    Bearer(AccessToken),
}

/// Everything a request offered to say who the client is, before the core
/// decides which of it counts. Collected as is, so that ambiguity (two
/// methods, mismatching ids) is judged in one place.
#[derive(Debug, Default, Clone)]
pub struct PresentedCredentials {
    /// The `Authorization` header, if any.
    pub authorization: Option<Authorization>,
    /// `client_id` from the body or message.
    pub client_id: Option<String>,
    /// `client_secret` from the body or message (`client_secret_post`).
    pub client_secret: Option<ClientSecret>,
    /// `client_assertion_type` (RFC 7521 §4.2).
    pub client_assertion_type: Option<String>,
    /// `client_assertion` (RFC 7521 §4.2).
    pub client_assertion: Option<String>,
    /// The leaf certificate the client presented in the TLS handshake: a
    /// credential of its own with `client_id` and nothing else
    /// (`tls_client_auth`, RFC 8705 section 2), and what a token is bound to
    /// (section 3).
    pub client_certificate: Option<crate::tls::PeerCertificate>,
    /// The peer's address, for failure accounting. Forwarding headers are
    /// not trusted for this (docs/THREATS.md, row A-15).
    pub source: Option<IpAddr>,
}

/// A token request, face-agnostic.
#[derive(Debug, Default, Clone)]
pub struct TokenRequest {
    /// `grant_type`; `None` when the request had none.
    pub grant_type: Option<String>,
    /// How the client authenticates.
    pub credentials: PresentedCredentials,
    /// Requested scopes, one token each; empty asks for the client's defaults.
    pub scopes: Vec<String>,
    /// Requested audiences (RFC 8707 resources); empty asks for the client's defaults.
    pub audiences: Vec<String>,
}

/// An access token. `Debug` is redacted: a token is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a presented token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The compact JWT. Call only to send it to its owner or to verify it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the compact JWT.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// A freshly minted token and what it grants.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The client it was issued to (`sub` and `client_id`).
    pub client_id: String,
    /// The signed JWT.
    pub access_token: AccessToken,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Its audiences (`aud`).
    pub audiences: Vec<String>,
    /// Its `jti`.
    pub jti: String,
    /// Whether it is bound to the client's certificate (`cnf`, RFC 8705 section 3).
    pub certificate_bound: bool,
}

/// An `Authorization: Bearer` credential, for callers of introspection and revocation.
pub fn bearer(token: impl Into<String>) -> PresentedCredentials {
    PresentedCredentials {
        authorization: Some(Authorization::Bearer(AccessToken::new(token))),
        ..Default::default()
    }
}

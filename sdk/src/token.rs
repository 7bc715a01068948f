//! Tokens: what a client asks for, and what Tessera issues.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An access token: what Tessera issued and what a [`crate::TokenSource`]
/// hands out. Cheap to clone (shared); `Debug` is redacted, since whoever
/// holds a bearer token can use it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(pub(crate) Arc<str>);

impl AccessToken {
    /// The compact JWT, for an `authorization: Bearer` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// What to ask for. Empty scopes or audiences ask for the client's defaults.
///
/// ```
/// use tessera_sdk::TokenRequest;
/// let request = TokenRequest::new().scope("invoices:read").audience("https://invoices.internal");
/// # let _ = request;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    pub(crate) scopes: Vec<String>,
    pub(crate) audiences: Vec<String>,
}

impl TokenRequest {
    /// A request for the client's default scopes and audiences.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Adds an audience (an RFC 8707 resource).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }
}

/// A token Tessera issued, with what it grants.
#[derive(Debug, Clone)]
pub struct Token {
    pub(crate) access_token: AccessToken,
    pub(crate) expires_in: Duration,
    pub(crate) received_at: Instant,
    pub(crate) scopes: Vec<String>,
    pub(crate) audiences: Vec<String>,
}

impl Token {
    /// A token received now, valid for `expires_in`: for [`FetchToken`](crate::FetchToken)
    /// implementations other than [`TokenClient`](crate::TokenClient).
    pub fn new(access_token: impl Into<String>, expires_in: Duration) -> Self {
        Self {
            access_token: AccessToken(Arc::from(access_token.into())),
            expires_in,
            received_at: Instant::now(),
            scopes: Vec::new(),
            audiences: Vec::new(),
        }
    }

    /// The token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// Its lifetime as the server stated it.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// When it expires by the local monotonic clock: receipt time plus
    /// `expires_in`, which is immune to clock skew between hosts.
    pub fn expires_at(&self) -> Instant {
        self.received_at + self.expires_in
    }

    /// Granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The audiences it is valid for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_in_debug() {
        assert!(!format!("{:?}", AccessToken("eyJ.secret.sig".into())).contains("eyJ"));
    }
}

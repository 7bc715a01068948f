//! The OAuth 2.0 vocabulary of Tessera, shared by server and SDK.

use std::fmt;

/// The only grant Tessera serves (RFC 6749 section 4.4).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// RFC 7523 section 2.2: a client authenticates with a JWT it signed
/// (`private_key_jwt`).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// draft-ietf-oauth-spiffe-client-auth: a client authenticates with its
/// JWT-SVID, a token its SPIFFE trust domain issued (`sub` its SPIFFE ID).
/// A platform's other identity tokens (Kubernetes, any OIDC issuer) travel
/// as [`JWT_BEARER_ASSERTION`], told apart from `private_key_jwt` by `iss`.
pub const JWT_SPIFFE_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";

/// Every `client_assertion_type` Tessera accepts.
pub const CLIENT_ASSERTION_TYPES: [&str; 2] = [JWT_BEARER_ASSERTION, JWT_SPIFFE_ASSERTION];

/// The scope that lets a client introspect any token (RFC 7662).
pub const INTROSPECT_SCOPE: &str = "tessera:introspect";

/// The scope that lets a client revoke any token, not only its own (RFC 7009).
pub const REVOKE_SCOPE: &str = "tessera:revoke";

/// Domain of the `google.rpc.ErrorInfo` attached to every gRPC error; its
/// `reason` is the [`ErrorCode`].
pub const ERROR_DOMAIN: &str = "tessera";

/// The `typ` header of an access token (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Whether a JWS `typ` header names an access token: `at+jwt`, or the same
/// media type written in full, `application/at+jwt` (RFC 7515 section 4.1.9),
/// in any case.
pub fn is_access_token_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt"))
}

/// An OAuth `error` code Tessera answers with (RFC 6749 section 5.2, RFC 8707,
/// RFC 8628), in its HTTP JSON body and as the gRPC `ErrorInfo` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: a parameter missing, repeated, malformed or too long.
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `unauthorized_client`: the client may not do this.
    UnauthorizedClient,
    /// `unsupported_grant_type`: a grant other than `client_credentials`.
    UnsupportedGrantType,
    /// `invalid_scope`: a scope malformed or not allowed.
    InvalidScope,
    /// `invalid_target`: an audience (resource) malformed or not allowed (RFC 8707).
    InvalidTarget,
    /// `slow_down`: too many failures; retry later (RFC 8628's code, widely understood).
    SlowDown,
    /// `temporarily_unavailable`: Tessera cannot answer now; retry.
    TemporarilyUnavailable,
    /// `server_error`: a failure inside Tessera.
    ServerError,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [ErrorCode; 9] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::InvalidTarget,
        Self::SlowDown,
        Self::TemporarilyUnavailable,
        Self::ServerError,
    ];

    /// The code as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::SlowDown => "slow_down",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }

    /// The code named by `text`, if Tessera answers with it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// Whether the same request may succeed later unchanged.
    pub const fn is_retryable(self) -> bool {
        matches!(self, Self::SlowDown | Self::TemporarilyUnavailable | Self::ServerError)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_from_its_wire_form() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("access_denied"), None);
    }

    #[test]
    fn both_spellings_of_the_access_token_type_are_accepted_rfc9068_2_1() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            assert!(is_access_token_typ(Some(typ)), "{typ}");
        }
        for typ in [None, Some("JWT"), Some("at+jwt "), Some("")] {
            assert!(!is_access_token_typ(typ), "{typ:?}");
        }
    }
}

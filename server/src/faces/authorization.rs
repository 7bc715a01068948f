//! Parsing of the `Authorization` header (HTTP) and `authorization` metadata
//! (gRPC), shared by both faces.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::form;
use crate::authority::{AccessToken, AuthError, Authorization, ClientSecret};

/// Parses every `Authorization` value the request carried.
///
/// # Errors
/// `invalid_request` for two headers, an unknown scheme, or malformed Basic
/// credentials (not base64, not UTF-8, no colon, empty client id).
pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<Authorization>, AuthError> {
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::invalid_request(
            "more than one Authorization header; send exactly one",
        ));
    }
    let value = std::str::from_utf8(value)
        .map_err(|_| AuthError::invalid_request("the Authorization header must be ASCII"))?
        .trim();
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        return parse_basic(credentials).map(Some);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        if credentials.is_empty() {
            return Err(AuthError::invalid_request(
                "the Bearer Authorization header carries no token",
            ));
        }
        return Ok(Some(Authorization::Bearer(AccessToken::new(credentials))));
    }
    Err(AuthError::invalid_request(
        "unsupported Authorization scheme; use Basic client credentials",
    ))
}

/// RFC 7617 Basic with RFC 6749 §2.3.1's twist: id and secret are each
/// form-urlencoded before being joined with `:` and base64-encoded.
fn parse_basic(encoded: &str) -> Result<Authorization, AuthError> {
    let malformed = |why: &str| AuthError::invalid_request(format!("malformed Basic credentials: {why}"));
    let decoded = STANDARD.decode(encoded).map_err(|_| malformed("not base64"))?;
    let (id, secret) = match decoded.iter().position(|b| *b == b':') {
        Some(at) => (&decoded[..at], &decoded[at + 1..]),
        None => return Err(malformed("no ':' between client id and secret")),
    };
    let client_id = form::decode(id).map_err(|_| malformed("the client id is not form-urlencoded UTF-8"))?;
    let secret = form::decode(secret).map_err(|_| malformed("the secret is not form-urlencoded UTF-8"))?;
    if client_id.is_empty() {
        return Err(malformed("empty client id"));
    }
    Ok(Authorization::Basic {
        client_id,
        secret: ClientSecret::new(secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(raw)).into_bytes()
    }

    #[test]
    fn basic_credentials_are_form_decoded_rfc6749_2_3_1() {
        let header = basic("my%3Aclient:s%2Bcret+x");
        let Some(Authorization::Basic { client_id, secret }) = parse([header.as_slice()]).unwrap() else {
            panic!("not Basic");
        };
        assert_eq!(client_id, "my:client");
        assert_eq!(secret.expose(), "s+cret x");
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let header = format!("bAsIc {}", STANDARD.encode("a:b"));
        assert!(matches!(
            parse([header.as_bytes()]).unwrap(),
            Some(Authorization::Basic { .. })
        ));
    }

    #[test]
    fn malformed_basic_headers_are_invalid_request() {
        let cases: Vec<Vec<u8>> = vec![
            b"Basic !!!notbase64".to_vec(),
            basic("no-colon-here"),
            basic(":secret-without-id"),
            b"Digest abc".to_vec(),
            b"Basic".to_vec(),
        ];
        for case in cases {
            let err = parse([case.as_slice()]).unwrap_err();
            assert_eq!(
                err.oauth_code(),
                "invalid_request",
                "{:?}",
                String::from_utf8_lossy(&case)
            );
        }
    }

    #[test]
    fn two_authorization_headers_are_invalid_request() {
        let a = basic("a:b");
        let err = parse([a.as_slice(), a.as_slice()]).unwrap_err();
        assert_eq!(err.oauth_code(), "invalid_request");
    }

    #[test]
    fn no_header_is_no_credentials() {
        assert_eq!(parse(std::iter::empty()).unwrap(), None);
    }
}

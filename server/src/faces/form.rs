//! A strict `application/x-www-form-urlencoded` parser.
//!
//! Lenient parsers decode a stray `%` as itself, replace invalid UTF-8, and
//! silently keep the last of a repeated key. An OAuth server must do none of
//! that (RFC 6749 §3.2: parameters MUST NOT be included more than once), so
//! this parser refuses malformed input and keeps every pair for the caller to
//! judge.

use crate::authority::AuthError;

/// The decoded pairs of a form body, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FormBody {
    pairs: Vec<(String, String)>,
}

/// Most pairs one form may have; beyond this the body is refused unread.
const MAX_PAIRS: usize = 256;

impl FormBody {
    /// Parses a body or query string.
    ///
    /// # Errors
    /// `invalid_request` for bad percent-encoding, invalid UTF-8, control
    /// characters, or too many pairs.
    pub fn parse(input: &[u8]) -> Result<Self, AuthError> {
        let mut pairs = Vec::new();
        for piece in input.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            if pairs.len() == MAX_PAIRS {
                return Err(AuthError::invalid_request(format!("more than {MAX_PAIRS} parameters")));
            }
            let (name, value) = match piece.iter().position(|b| *b == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &b""[..]),
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self { pairs })
    }

    /// The one value of `name`; `None` when absent or empty (RFC 6749 §3.2:
    /// empty parameters are treated as omitted).
    ///
    /// # Errors
    /// `invalid_request` when `name` appears more than once.
    pub fn single(&self, name: &str) -> Result<Option<&str>, AuthError> {
        let mut values = self.pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(AuthError::invalid_request(format!(
                "parameter {name} is repeated; send it once (RFC 6749 section 3.2)"
            )));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// Every non-empty value of a parameter that may repeat (e.g. RFC 8707 `resource`).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// True when `name` appears at all, even empty.
    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must
/// be UTF-8 without control characters.
pub fn decode(component: &[u8]) -> Result<String, AuthError> {
    let mut bytes = Vec::with_capacity(component.len());
    let mut rest = component;
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'+' => {
                bytes.push(b' ');
                rest = tail;
            }
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match tail {
                    [h, l, after @ ..] if hex(*h).is_some() && hex(*l).is_some() => {
                        bytes.push((hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0)) as u8);
                        rest = after;
                    }
                    _ => {
                        return Err(AuthError::invalid_request(
                            "malformed percent-encoding in the request body",
                        ));
                    }
                }
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| AuthError::invalid_request("request parameters must be UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(AuthError::invalid_request(
            "request parameters must not contain control characters",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let form = FormBody::parse(b"scope=a+b%20c&client_id=svc%3A1").unwrap();
        assert_eq!(form.single("scope").unwrap(), Some("a b c"));
        assert_eq!(form.single("client_id").unwrap(), Some("svc:1"));
    }

    #[test]
    fn repeated_parameter_is_invalid_request_rfc6749_3_2() {
        let form = FormBody::parse(b"grant_type=client_credentials&grant_type=password").unwrap();
        let err = form.single("grant_type").unwrap_err();
        assert_eq!(err.oauth_code(), "invalid_request");
    }

    #[test]
    fn empty_values_are_treated_as_omitted_rfc6749_3_2() {
        let form = FormBody::parse(b"scope=&client_secret=").unwrap();
        assert_eq!(form.single("scope").unwrap(), None);
        assert_eq!(form.single("client_secret").unwrap(), None);
    }

    #[test]
    fn malformed_percent_encoding_is_refused() {
        for body in [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=100%"] {
            assert!(FormBody::parse(body).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn invalid_utf8_and_control_characters_are_refused() {
        assert!(FormBody::parse(b"a=%ff%fe").is_err());
        assert!(FormBody::parse(b"a=x%00y").is_err());
        assert!(FormBody::parse(b"a=x%0Ay").is_err());
        assert!(FormBody::parse(b"a=\xff").is_err());
    }

    #[test]
    fn repeatable_parameters_keep_every_value() {
        let form = FormBody::parse(b"resource=a&resource=b&resource=").unwrap();
        assert_eq!(form.all("resource").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn too_many_pairs_are_refused() {
        let body = "a=1&".repeat(MAX_PAIRS + 1);
        assert!(FormBody::parse(body.as_bytes()).is_err());
    }
}

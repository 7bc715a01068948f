//! The credentials a client proves itself with: a client secret, a key
//! that signs `private_key_jwt` assertions (RFC 7523), the identity token
//! its platform writes to a file (a Kubernetes projected service-account
//! token, a SPIFFE JWT-SVID), or its TLS client certificate (RFC 8705).

use std::fmt;
use std::path::PathBuf;

use crate::Error;
use crate::keys::AssertionAlgorithm;

/// A client secret. `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The secret is overwritten when its last holder drops it, so that it does
/// not linger in freed memory (a core dump, a swapped page).
impl Drop for ClientSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// How a [`crate::TokenClient`] proves who it is.
pub(crate) enum Credentials {
    Secret {
        client_id: String,
        secret: ClientSecret,
    },
    /// `private_key_jwt` (RFC 7523 §2.2): a fresh signed assertion per call.
    Assertion {
        client_id: String,
        key: AssertionKey,
        audience: String,
    },
    /// The platform's identity token, read from `path` before every
    /// request: the platform rotates the file (the kubelet at 80% of the
    /// token's life), and a token read once would expire.
    PlatformToken {
        client_id: String,
        path: PathBuf,
        assertion_type: &'static str,
    },
    /// `tls_client_auth` / `self_signed_tls_client_auth` (RFC 8705 section
    /// 2): the TLS client certificate of the connection is the credential;
    /// the request names the client and carries nothing else.
    Certificate {
        client_id: String,
    },
}

/// Reads a platform token file. The file is small (a JWT) and on a local
/// or in-memory file system (a projected volume), so it is read in place.
pub(crate) fn read_token_file(path: &std::path::Path) -> Result<String, Error> {
    let failed = |reason: String| Error::TokenFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(failed("the file is empty".into()));
    }
    Ok(token.to_owned())
}

/// A client's private key for `private_key_jwt`, with the `kid` it was
/// registered under (`tessera client add-key ID --pem PUBLIC.pem --kid KID`).
/// `Debug` shows the `kid` and algorithm only.
#[derive(Clone)]
pub struct AssertionKey {
    key: jsonwebtoken::EncodingKey,
    algorithm: AssertionAlgorithm,
    kid: String,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl AssertionKey {
    /// Reads a PEM private key.
    ///
    /// # Errors
    /// [`Error::Config`] when the PEM is not a private key of that algorithm.
    pub fn from_pem(algorithm: AssertionAlgorithm, kid: impl Into<String>, pem: &[u8]) -> Result<Self, Error> {
        let key = match algorithm {
            AssertionAlgorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_pem(pem),
            AssertionAlgorithm::EdDsa => jsonwebtoken::EncodingKey::from_ed_pem(pem),
            AssertionAlgorithm::Rs256 => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| Error::Config("the assertion key is not a PEM private key of the given algorithm"))?;
        Ok(Self {
            key,
            algorithm,
            kid: kid.into(),
        })
    }

    fn jwt_algorithm(&self) -> jsonwebtoken::Algorithm {
        self.algorithm.jwt()
    }

    /// A single-use assertion for `client_id`, addressed to `audience`,
    /// valid for one minute.
    pub(crate) fn sign(&self, client_id: &str, audience: &str) -> Result<String, Error> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            iat: u64,
            exp: u64,
            jti: String,
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Error::Config("the system clock is before 1970"))?
            .as_secs();
        let mut nonce = [0u8; 16];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Config("no randomness for the assertion id"))?;
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: audience,
            iat: now,
            exp: now + 60,
            jti: nonce.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let mut header = jsonwebtoken::Header::new(self.jwt_algorithm());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| Error::Config("signing the assertion failed"))
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
pub(crate) fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Standard base64 with padding, for a Basic header.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        assert!(!format!("{:?}", ClientSecret::new("hunter2")).contains("hunter2"));
    }

    #[test]
    fn basic_credentials_are_form_encoded_then_base64_rfc6749_2_3_1() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(base64_encode(b"svc:s3cret"), "c3ZjOnMzY3JldA==");
    }
}

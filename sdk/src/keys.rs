//! The SDK's own key types: the algorithms Tessera signs with, and its
//! published public keys. Nothing of `jsonwebtoken` or of the generated gRPC
//! types appears in the SDK's API, so either can change underneath.

use tessera_proto::pb;

/// A JWS algorithm Tessera signs tokens with, and a client may sign its
/// `private_key_jwt` assertions with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256 (private keys: a `-----BEGIN PRIVATE KEY-----`
    /// or `EC PRIVATE KEY` PEM).
    Es256,
    /// Ed25519 (private keys: a `-----BEGIN PRIVATE KEY-----` PEM).
    EdDsa,
    /// RSA PKCS#1 v1.5 with SHA-256, 2048 bits or more.
    Rs256,
}

/// The algorithm of an [`crate::AssertionKey`]: the same set.
pub type AssertionAlgorithm = KeyAlgorithm;

impl KeyAlgorithm {
    /// Every algorithm, the default allow-list of a [`crate::Verifier`].
    pub const ALL: [KeyAlgorithm; 3] = [Self::Es256, Self::EdDsa, Self::Rs256];

    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// One of Tessera's published public keys (a JWK, RFC 7517), as fetched
/// with [`crate::TokenClient::jwks`] or shipped with a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublicJwk {
    /// `kid`: the key id tokens name.
    pub kid: String,
    /// `kty`: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// `alg`: `ES256`, `EdDSA` or `RS256`.
    pub alg: String,
    /// `crv`, for EC and OKP keys.
    pub crv: String,
    /// `x`, base64url, for EC and OKP keys.
    pub x: String,
    /// `y`, base64url, for EC keys.
    pub y: String,
    /// `n`, base64url, for RSA keys.
    pub n: String,
    /// `e`, base64url, for RSA keys.
    pub e: String,
}

impl PublicJwk {
    /// An EC P-256 public key for ES256, from its coordinates (base64url).
    pub fn es256(kid: impl Into<String>, x: impl Into<String>, y: impl Into<String>) -> Self {
        Self {
            kid: kid.into(),
            kty: "EC".into(),
            alg: "ES256".into(),
            crv: "P-256".into(),
            x: x.into(),
            y: y.into(),
            ..Self::default()
        }
    }

    /// The algorithm this key verifies, if it is one the SDK knows.
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        match (self.kty.as_str(), self.alg.as_str()) {
            ("EC", "ES256") => Some(KeyAlgorithm::Es256),
            ("OKP", "EdDSA") => Some(KeyAlgorithm::EdDsa),
            ("RSA", "RS256") => Some(KeyAlgorithm::Rs256),
            _ => None,
        }
    }
}

impl From<pb::JsonWebKey> for PublicJwk {
    fn from(key: pb::JsonWebKey) -> Self {
        Self {
            kid: key.kid,
            kty: key.kty,
            alg: key.alg,
            crv: key.crv,
            x: key.x,
            y: key.y,
            n: key.n,
            e: key.e,
        }
    }
}

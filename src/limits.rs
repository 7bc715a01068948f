//! Size limits, defined once: the server enforces them on requests and on
//! registrations, and the SDK checks what it sends against them.

/// Longest client id, in bytes, in a request or a registration.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Longest client secret read from a request, in bytes.
pub const MAX_SECRET_LEN: usize = 512;

/// Most scopes in a request or a registration.
pub const MAX_SCOPES: usize = 64;

/// Longest scope token, in bytes.
pub const MAX_SCOPE_LEN: usize = 128;

/// Most audiences in a request or a registration.
pub const MAX_AUDIENCES: usize = 16;

/// Longest audience, in bytes.
pub const MAX_AUDIENCE_LEN: usize = 512;

/// Longest token read for introspection or revocation; longer is inactive.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Longest client assertion read; longer is refused before parsing.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// Smallest RSA modulus, in bits, for Tessera's signing keys and for the
/// keys clients register.
pub const MIN_RSA_BITS: usize = 2048;

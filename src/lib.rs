//! Tessera's contract: what the server promises and the SDK relies on.
//!
//! - [`pb`]: `tessera.v1.TokenService` as generated Rust code; the `.proto`
//!   files in `proto/` are the source of truth.
//! - [`oauth`]: the OAuth 2.0 vocabulary both sides speak: error codes, the
//!   grant and assertion-type identifiers, Tessera's own scopes, the gRPC
//!   error domain.
//! - [`claims`]: the one access-token claims type, with the checks every
//!   verifier applies (`typ`, times).
//! - [`confirmation`]: the `cnf` claim of certificate-bound tokens (RFC 8705)
//!   and the thumbprint rule server and SDK share.
//! - [`limits`]: the size limits of requests and registrations, defined once.
#![deny(missing_docs)]

pub mod claims;
pub mod confirmation;
pub mod limits;
pub mod oauth;
pub mod percent;

/// The generated messages, client and server of package `tessera.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("tessera.v1");
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tessera_descriptor.bin"));

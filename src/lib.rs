//! Tessera's gRPC contract, `tessera.v1.TokenService`, as generated Rust code.
//!
//! Both the server and the SDK build on these types; the `.proto` files in
//! `proto/` are the source of truth.

/// The generated messages, client and server of package `tessera.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("tessera.v1");
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tessera_descriptor.bin"));

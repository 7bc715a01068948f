//! The examples are `cargo run -p tessera-examples --example NAME`: see
//! `issue_token.rs`, `caller_service.rs` and `resource_service.rs`. What
//! they share is here: the example resource service's contract.
#![deny(missing_docs)]

/// `example.v1.Invoices`, the resource service the examples protect with
/// Tessera tokens: generated client and server.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("example.v1");
}

//! Tessera's token server: an OAuth 2.0 client-credentials authority that
//! issues RFC 9068 JWT access tokens over gRPC (`tessera.v1.TokenService`)
//! and a standard HTTP shim, from one listener.
//!
//! The binary `tessera` is a thin shell over [`cli::main`]; the real entry
//! point is [`server::run`], which tests drive with a port-0 listener.

#![deny(missing_docs)]

pub mod admin;
pub mod audit;
pub mod authority;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod faces;
pub mod federation;
pub mod health;
pub mod keys;
pub mod logging;
pub mod malloc;
pub mod metrics;
pub mod private_files;
pub mod request_id;
pub mod server;
pub mod store;
pub mod tls;

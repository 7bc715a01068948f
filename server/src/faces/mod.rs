//! The faces: thin translations between wire protocols and the authority.
//! A face parses, calls the core, renders; it decides nothing about grants,
//! scopes, secrets or lifetimes.

pub mod admin_grpc;
pub mod admin_http;
pub mod authorization;
pub mod form;
pub mod grpc;
pub mod http;
pub mod ops;
pub mod respond;

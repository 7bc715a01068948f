//! Nothing to link: the examples are `cargo run -p tessera-examples --example NAME`.
//! See `issue_token.rs`, `caller_service.rs` and `resource_service.rs`.

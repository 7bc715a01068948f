//! The end-to-end tests' support is the testkit (`testkit/`), shared with
//! the server's unit tests and the bench harness.
#![allow(unused_imports)]

pub use tessera_testkit::*;

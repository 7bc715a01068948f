//! Client for Tessera, an OAuth 2.0 client-credentials token service.
//!
//! - [`TokenClient`] asks Tessera for access tokens over gRPC
//!   (`tessera.v1.TokenService`) and fetches the keys that verify them. Errors
//!   are typed: a refusal carries the OAuth 2.0 error code the server sent.
//! - [`TokenSource`] keeps a token cached and refreshed ahead of expiry: the
//!   call to make before every outgoing request.
//! - [`AuthLayer`] stamps that token on every call of a tonic channel.
//! - [`AdminClient`] manages clients, signing keys and trusted issuers
//!   through the admin API (`tessera.admin.v1.AdminService`).
//!
//! A client proves itself with a secret ([`TokenClientBuilder::client_secret`]),
//! a key of its own ([`TokenClientBuilder::private_key_jwt`]), or, with no
//! secret at all, the identity token its platform writes to a file: a
//! Kubernetes projected service-account token
//! ([`TokenClientBuilder::federated_token_file`]) or a SPIFFE JWT-SVID
//! ([`TokenClientBuilder::spiffe_token_file`]).
//!
//! ```no_run
//! use tessera_sdk::{TokenClient, TokenRequest};
//!
//! # async fn example() -> Result<(), tessera_sdk::Error> {
//! let client = TokenClient::builder("http://127.0.0.1:8080")
//!     .client_secret("billing", "the-secret-from-tessera-client-create")
//!     .build()?;
//! let token = client.issue_token(&TokenRequest::new().scope("invoices:read")).await?;
//! println!("valid for {:?}", token.expires_in());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod admin_client;
mod binding;
pub mod cache;
mod client;
mod credentials;
mod error;
mod keys;
pub mod layer;
pub mod require;
mod token;
pub mod verifier;

pub use admin_client::AdminClient;
pub use binding::CallerCertificate;
pub use cache::{CachePolicy, FetchToken, TokenSource};
pub use client::{TokenClient, TokenClientBuilder};
pub use credentials::{AssertionKey, ClientSecret};
pub use error::{Delivery, Error};
pub use keys::{AssertionAlgorithm, KeyAlgorithm, PublicJwk};
pub use layer::{AuthLayer, AuthService};
pub use require::{RequireScopes, RequireScopesService};
pub use tessera_proto;
pub use token::{AccessToken, Token, TokenRequest};
pub use verifier::{Claims, Verifier, VerifierBuilder, VerifyError};

/// The admin API's messages (`tessera.admin.v1`), which [`AdminClient`]
/// sends and returns, and the scopes and audience an admin token needs.
pub mod admin {
    pub use tessera_proto::admin::v1::*;
    pub use tessera_proto::admin::{ADMIN_READ_SCOPE, ADMIN_SCOPE, admin_audience};
}

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

/// `tessera.admin.v1.AdminService`: clients, signing keys and trusted
/// issuers, managed on a running server. The messages are also the JSON
/// bodies of the HTTP form under `/admin/v1/`.
pub mod admin {
    /// The generated messages, client and server of package `tessera.admin.v1`.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("tessera.admin.v1");
    }

    /// The scope that allows every admin call.
    pub const ADMIN_SCOPE: &str = "tessera:admin";
    /// The scope that allows the admin API's reads (Get and List) only.
    pub const ADMIN_READ_SCOPE: &str = "tessera:admin:read";

    /// The audience an admin token must carry: the issuer followed by `/admin`.
    pub fn admin_audience(issuer: &str) -> String {
        format!("{}/admin", issuer.trim_end_matches('/'))
    }

    /// `StringList` (present or absent, in proto) as a JSON array or null.
    pub(crate) mod string_list {
        use super::v1::StringList;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub fn serialize<S: Serializer>(list: &Option<StringList>, serializer: S) -> Result<S::Ok, S::Error> {
            list.as_ref().map(|l| &l.values).serialize(serializer)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<StringList>, D::Error> {
            Ok(Option::<Vec<String>>::deserialize(deserializer)?.map(|values| StringList { values }))
        }
    }
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tessera_descriptor.bin"));

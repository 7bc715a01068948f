//! Compiles the contract in `proto/` with tonic's code generator. The `.proto`
//! files are parsed by `protox`, in pure Rust, so no system `protoc` is needed.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/tessera/v1/token.proto", "proto/tessera/admin/v1/admin.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // The descriptor set is also exported for gRPC reflection.
    std::fs::write(
        out_dir.join("tessera_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `connect` helper: it would need tonic's transport feature, which
        // the contract crate does not take (callers bring their own channel).
        .build_transport(false)
        // The admin messages are also the JSON bodies of /admin/v1/ (the
        // proto field names as keys): a missing field takes its default, an
        // unknown one is refused rather than silently ignored.
        .type_attribute(
            ".tessera.admin.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        )
        // A list that may be absent (leave as is) or empty (clear) is a
        // StringList in proto; in JSON it is a plain array or null.
        .field_attribute(
            ".tessera.admin.v1.UpdateClientRequest.scopes",
            "#[serde(with = \"crate::admin::string_list\")]",
        )
        .field_attribute(
            ".tessera.admin.v1.UpdateClientRequest.audiences",
            "#[serde(with = \"crate::admin::string_list\")]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}

//! Compiles `proto/invoices.proto` (a resource
//! service protected by Tessera tokens) with protox, so no `protoc` is needed.
//! Only the examples include the generated code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/invoices.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}

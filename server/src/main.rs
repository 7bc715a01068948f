//! The `tessera` binary. Everything happens in the library: see `tessera_server::cli`.

fn main() -> std::process::ExitCode {
    // First, before any thread starts: see `malloc.rs` for why.
    tessera_server::malloc::cap_arenas();
    tessera_server::cli::main()
}

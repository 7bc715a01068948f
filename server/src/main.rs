//! The `tessera` binary. Everything happens in the library: see `tessera_server::cli`.

fn main() -> std::process::ExitCode {
    tessera_server::cli::main()
}

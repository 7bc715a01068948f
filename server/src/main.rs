//! The `tessera` binary. Everything happens in the library: see `tessera_server::cli`.

/// mimalloc, not glibc's malloc: under a steady mixed load glibc's per-thread
/// arenas kept growing after warm-up (+5 %/h over a 10-minute soak, all of it
/// in arena tops; see BENCHMARKS.md, "Soak"). The library leaves the choice to
/// whoever embeds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera_server::cli::main()
}

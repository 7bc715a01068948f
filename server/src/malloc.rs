//! How many malloc arenas glibc may create: one per core, not eight per core.
//!
//! glibc gives threads that contend for its allocator arenas of their own, up
//! to eight per core. Under a steady mixed load (issuing, introspecting,
//! revoking, refusing wrong secrets) the top of one of those per-thread
//! arenas kept creeping up after warm-up: +5 %/h of resident memory over a
//! 10-minute soak, all of it in arena tops, none in the main heap or any file
//! mapping (BENCHMARKS.md, "Soak"). With the arenas capped at one per core
//! a one-hour soak measured +0.8 %/h. mimalloc, tried instead, held about
//! as flat, but took 46 % more memory with 10,000 clients registered and
//! 1,000 of them authenticated.

/// Caps glibc's malloc arenas at the number of cores this process may run on,
/// unless the operator chose a cap (`MALLOC_ARENA_MAX`, or `GLIBC_TUNABLES`
/// naming `glibc.malloc.arena_max`). Call it first in `main`, before any
/// thread starts. Elsewhere than glibc on Linux it does nothing.
pub fn cap_arenas() {
    let operator_chose = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc.arena_max"));
    if operator_chose {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    set_arena_max(i32::try_from(cores).unwrap_or(i32::MAX));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(arenas: i32) {
    // SAFETY: mallopt only sets one of glibc's allocator tunables; M_ARENA_MAX
    // accepts any positive count, and `arenas` is at least 1. It returns 0 on
    // failure, which leaves glibc's default in force: nothing to undo.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) {}

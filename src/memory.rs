//! Heap the daemon freed goes back to the system.
//!
//! glibc's malloc keeps what a thread frees in that thread's arena and hands
//! the kernel back only an arena's top. After a burst (every IMAP watcher
//! setting up at start or after a server restart: TLS handshakes, LIST and
//! SELECT answers) the freed chunks lie between live ones and stay
//! resident: 20 MiB of a 91 MiB RSS with 1,000 seeds idle (benchmark 1,
//! docs/scale.md). `malloc_trim` returns every whole free page of every
//! arena; glibc never does that on its own schedule, so the daemon does.
//!
//! Each arena also keeps its own free chunks and fragments, and glibc gives
//! each new thread an arena of its own at its first allocation, up to eight
//! per core. The daemon's allocations are small and short and mostly
//! served from per-thread caches, so two arenas are enough
//! ([`limit_arenas`]).

use std::time::Duration;

/// How often the daemon gives freed pages back. A trim walks the arenas'
/// free lists, taking each arena's lock in turn, and makes a syscall per
/// free run of pages: about 20 ms to return 31 MiB in 4,000 pieces (the
/// case of `tests/memory_trim.rs`, release build), so it runs on the
/// blocking pool.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

/// The most arenas glibc may make. With 1,000 seeds idle (benchmark 1,
/// docs/scale.md) the default held 46.9 MiB of anonymous memory, 2 arenas
/// 45.1 and 1 arena 44.9; two keep the runtime's worker threads from
/// queueing on one lock when their caches run dry.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 2;

/// Caps the number of malloc arenas at two, unless the operator set
/// glibc's own knob (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in
/// `GLIBC_TUNABLES`), which then stands. Call before the runtime starts its
/// threads: glibc fixes the limit once eight arenas exist. A no-op where
/// the allocator is not glibc's.
pub fn limit_arenas() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("glibc.malloc.arena_max")
    {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a malloc parameter; M_ARENA_MAX takes
        // any positive count and bounds the arenas made from now on.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Gives the heap's whole free pages back to the system; whether any were.
/// A no-op (false) where the allocator is not glibc's.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim has no preconditions; it locks each arena
        // itself and only releases pages no allocation uses.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

//! Heap the daemon freed goes back to the system.
//!
//! glibc's malloc keeps what a thread frees in that thread's arena and hands
//! the kernel back only an arena's top. After a burst (every IMAP watcher
//! setting up at start or after a server restart: TLS handshakes, LIST and
//! SELECT answers) the freed chunks lie between live ones and stay
//! resident: 20 MiB of a 91 MiB RSS with 1,000 seeds idle (benchmark 1,
//! docs/scale.md). `malloc_trim` returns every whole free page of every
//! arena; glibc never does that on its own schedule, so the daemon does.

use std::time::Duration;

/// How often the daemon gives freed pages back. A trim walks the arenas'
/// free lists, taking each arena's lock in turn, and makes a syscall per
/// free run of pages: about 20 ms to return 31 MiB in 4,000 pieces (the
/// case of `tests/memory_trim.rs`, release build), so it runs on the
/// blocking pool.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

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

//! glibc's allocator, tuned for a daemon that builds and runs GStreamer pipelines segment after segment.
//!
//! - Threads that allocate at the same time get arenas of their own, up to eight per core, and memory freed in
//!   one arena is not reused by the others: each transcode runs GStreamer's streaming threads, so resident
//!   memory crept up arena by arena. Two arenas are enough for a box's handful of busy threads.
//! - Free memory inside an arena is kept resident until the arena's top is free; video frames of a megabyte
//!   and more, allocated and freed every segment, leave it fragmented. After each segment the free pages
//!   are given back (`malloc_trim`: a median of 0.14 ms, 1.4 ms at the 90th percentile, per segment of
//!   about 2 s in `tests/hostile.rs`).
//!
//! `tests/hostile.rs` measures the result (resident memory over a long hostile stream); BENCHMARKS.md has
//! the figures. An operator's `MALLOC_ARENA_MAX` wins. Elsewhere than Linux with glibc these do nothing.

/// Sets the allocator's parameters; called first thing in `main`, before any other thread exists.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a glibc allocator parameter, and no other thread exists yet.
        unsafe {
            nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
        }
    }
}

/// Gives the free pages of every arena back to the system.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe (it takes each arena's lock) and only releases free memory.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

//! How the daemon uses glibc's allocator, so that an idle daemon stays small.
//!
//! A build allocates large, short-lived buffers (file writes, layer streams, HTTP/2 windows). By
//! default glibc raises its mmap threshold each time such a buffer is freed, so later ones come
//! from the heap arenas, where the few small allocations that outlive a build pin the pages
//! around them: measured after `bench/compare.sh`'s workloads run by hand, 18 MB of anonymous
//! memory stayed resident with the default, 3 MB with a fixed threshold.

/// Requests above this size are mapped on their own and unmapped when freed.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: nix::libc::c_int = 128 * 1024;

/// Fixes the mmap threshold (which also stops glibc from adjusting its trim threshold). Call
/// before the runtime starts its threads.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Gives freed heap memory back to the system (glibc keeps it in its arenas otherwise).
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases unused heap memory; it has no preconditions.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

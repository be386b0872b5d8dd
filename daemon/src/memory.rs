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

/// One heap for every thread. glibc gives threads up to eight arenas per core, and each kept
/// growing over thousands of builds around the few blocks that outlive a build: measured over
/// 3,000 sequential builds (`bench/load.sh`), the arenas' size went from 28 to 60 MB and resident
/// anonymous memory to 20 MiB; with one arena its size stayed at 20 MB and memory ended at 15.6
/// MiB, with the builds as fast. Every allocation now takes its lock, the thread caches being
/// off too ([`restart_without_thread_caches`]): measured on 2 cores (`load-bench 20 600`, three
/// runs each, alternated), 20 concurrent builds took 0.9 s and a sequential one 48 ms, against
/// 1.0 s and 51 ms with the thread caches; not measured on a many-core node.
#[cfg(target_env = "gnu")]
const ARENAS: nix::libc::c_int = 1;

/// The glibc tunable naming how many freed blocks of each size a thread keeps for itself.
#[cfg(target_env = "gnu")]
const THREAD_CACHE_TUNABLE: &str = "glibc.malloc.tcache_count";

/// Restarts nodekitd with glibc's per-thread caches turned off, unless they already are or the
/// operator set `glibc.malloc.tcache_count` in `GLIBC_TUNABLES` themselves. Each thread's cache
/// keeps up to 7 freed blocks of each of 64 sizes out of the heap for as long as the thread lives,
/// and malloc_trim cannot give back the pages they sit on: measured over 3,000 sequential builds
/// after 100 concurrent ones (`bench/load.sh 100 3000`, the cache index's page cache at 1 MiB),
/// anonymous memory grew from 9.0 to 12.5 MiB with them and stayed between 5.3 and 5.8 MiB
/// without, the builds as fast. glibc reads its tunables only when a program starts, hence the
/// restart (same PID, same arguments). Call first thing in `main`, before any thread exists.
pub fn restart_without_thread_caches() {
    #[cfg(target_env = "gnu")]
    {
        use std::os::unix::process::CommandExt;
        let current = std::env::var_os("GLIBC_TUNABLES");
        let Some(tunables) = tunables_without_thread_caches(current.as_deref()) else {
            return;
        };
        let error = match std::env::current_exe() {
            Ok(exe) => std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("GLIBC_TUNABLES", &tunables)
                .exec(),
            Err(error) => error,
        };
        eprintln!("nodekitd: could not restart with GLIBC_TUNABLES={tunables} ({error}); going on with glibc's per-thread caches");
    }
}

/// `GLIBC_TUNABLES` with the thread caches off added to `current`, or `None` when `current`
/// already sets their size (or is not UTF-8, which glibc would not parse either).
#[cfg(target_env = "gnu")]
fn tunables_without_thread_caches(current: Option<&std::ffi::OsStr>) -> Option<String> {
    let off = format!("{THREAD_CACHE_TUNABLE}=0");
    match current.map(|value| value.to_str()) {
        None | Some(Some("")) => Some(off),
        Some(None) => None,
        Some(Some(value)) if value.contains(THREAD_CACHE_TUNABLE) => None,
        Some(Some(value)) => Some(format!("{value}:{off}")),
    }
}

/// Fixes the mmap threshold (which also stops glibc from adjusting its trim threshold) and the
/// number of arenas. Call before the runtime starts its threads.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, ARENAS);
    }
}

/// How long after a piece of work the trim waits, so that what it leaves (a response being sent,
/// a history record being written) is freed first.
const TRIM_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

static WORK_ENDED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Marks the end of work that allocates a lot (a build, a prune, a GC run): [`trim_when_idle`]
/// gives its freed memory back shortly after.
pub fn work_ended() {
    WORK_ENDED.notify_one();
}

/// Gives freed memory back a moment after each [`work_ended`], unless `busy` (builds running:
/// the last one to end trims at once, then again after this). Without it glibc keeps what a
/// prune or a GC run freed: measured after 1,000 builds and a prune, 3.5 MB of the daemon's
/// 9 MB of anonymous memory.
pub async fn trim_when_idle(busy: impl Fn() -> bool) {
    loop {
        WORK_ENDED.notified().await;
        tokio::time::sleep(TRIM_DELAY).await;
        if !busy() {
            release_free_memory();
        }
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

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn thread_caches_are_turned_off_alongside_other_tunables() {
        let off = "glibc.malloc.tcache_count=0";
        assert_eq!(tunables_without_thread_caches(None).as_deref(), Some(off));
        assert_eq!(
            tunables_without_thread_caches(Some(OsStr::new(""))).as_deref(),
            Some(off)
        );
        assert_eq!(
            tunables_without_thread_caches(Some(OsStr::new("glibc.malloc.check=0"))).as_deref(),
            Some("glibc.malloc.check=0:glibc.malloc.tcache_count=0")
        );
    }

    #[test]
    fn a_thread_cache_size_already_set_is_kept_so_nodekitd_restarts_once() {
        for set in ["glibc.malloc.tcache_count=0", "glibc.malloc.tcache_count=7"] {
            assert_eq!(tunables_without_thread_caches(Some(OsStr::new(set))), None);
        }
    }
}

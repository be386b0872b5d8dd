//! Load, as users bring it: a real nodekitd process over tcp, many builds from as many client
//! sessions at once (uncached, sharing steps, cached, with local contexts), then many one after
//! the other; all succeed, shared steps run once, and the daemon's file descriptors, tokio
//! tasks and mounts come back to where they were. `bench/load.sh` runs the long version and
//! prints the figures.

use std::time::Duration;

use nodekit_test_support::{
    concurrent_builds, daemon_containers, metric, nodekitd_binary, sequential_builds,
    DaemonProcess, Figures, Listen, LoadBuilds, TestDaemon, TestEnv,
};

const CONCURRENT: usize = 20;
const SEQUENTIAL: usize = 50;
/// Descriptors and tasks a daemon may hold beyond its baseline once settled: pooled
/// connections to containerd, a connection or two of ours not yet closed.
const FD_SLACK: usize = 8;
const TASK_SLACK: u64 = 8;
const EXECUTED: &str = "nodekit_steps_total{op=\"exec\",outcome=\"executed\"}";

#[tokio::test]
async fn many_builds_at_once_and_in_a_row_leave_the_daemon_as_they_found_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let process = DaemonProcess::start(&nodekitd_binary(), &root, Listen::TcpWithDebug).await;
    let debug = process.debug_addr.unwrap();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("file"), "context").unwrap();
    let marker = format!("{:016x}", rand::random::<u64>());
    let builds = LoadBuilds::new(&marker, context.path());
    builds.warm_up(&process.addr).await.unwrap();
    let baseline = settled(&process, None).await;
    let executed = metric(debug, EXECUTED).unwrap_or(0.0);

    let failed = concurrent_builds(&process.addr, &builds, CONCURRENT).await;
    assert!(failed.is_empty(), "concurrent builds failed: {failed:#?}");
    let executed_now = metric(debug, EXECUTED).unwrap_or(0.0) - executed;
    assert_eq!(
        executed_now as usize,
        LoadBuilds::steps_executed(CONCURRENT),
        "each distinct step runs once, however many builds share it"
    );

    let builds = LoadBuilds::new(&format!("{marker}-seq"), context.path());
    let failed = sequential_builds(&process.addr, &builds, SEQUENTIAL, |_| {}).await;
    assert!(failed.is_empty(), "sequential builds failed: {failed:#?}");
    let after = settled(&process, Some(&baseline)).await;
    eprintln!("load: baseline {baseline}; settled after the builds {after}");
    assert!(
        back_to(&baseline, &after),
        "from {baseline} to {after} after the builds"
    );
    let worker = TestEnv::get().worker("load").await;
    assert_eq!(
        daemon_containers(&worker, dir.path()).await,
        Vec::<String>::new()
    );

    TestDaemon::attach(&process.addr, &root).prune_all().await;
    process.terminate();
}

/// Whether `now` is within the slack of `baseline`: memory aside (it is reported, not judged).
fn back_to(baseline: &Figures, now: &Figures) -> bool {
    now.fds <= baseline.fds + FD_SLACK
        && now.tasks.unwrap_or(u64::MAX) <= baseline.tasks.unwrap_or(0) + TASK_SLACK
        && now.mounts <= baseline.mounts
}

/// The figures once they stop falling (closed connections and ended tasks take a moment), or
/// once back to `baseline`; at most 20 s.
async fn settled(process: &DaemonProcess, baseline: Option<&Figures>) -> Figures {
    let mut last = process.figures();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = process.figures();
        let steady = now.fds == last.fds && now.tasks == last.tasks && now.mounts == last.mounts;
        if baseline.map_or(steady, |b| back_to(b, &now)) {
            return now;
        }
        last = now;
    }
    last
}

/// nodekitd restarts itself once, first thing, with glibc's per-thread caches off (they pinned
/// memory over long runs, daemon/src/memory.rs): the process that serves is the one started
/// (same PID, same name, so an operator's `pgrep -x nodekitd` and a kill by PID still find it)
/// and carries the tunable.
#[tokio::test]
async fn nodekitd_serves_with_glibc_thread_caches_off_under_its_own_name_and_pid() {
    let dir = tempfile::tempdir().unwrap();
    let process = DaemonProcess::start(&nodekitd_binary(), dir.path(), Listen::Unix).await;
    let environ = std::fs::read(format!("/proc/{}/environ", process.pid())).unwrap();
    let tunables: Vec<&[u8]> = environ
        .split(|b| *b == 0)
        .filter(|v| v.starts_with(b"GLIBC_TUNABLES="))
        .collect();
    assert_eq!(
        tunables,
        vec![b"GLIBC_TUNABLES=glibc.malloc.tcache_count=0".as_slice()]
    );
    let name = std::fs::read_to_string(format!("/proc/{}/comm", process.pid())).unwrap();
    assert_eq!(name.trim_end(), "nodekitd");
    process.terminate();
}

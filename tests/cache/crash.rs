//! `kill -9` in the middle of a build: after a restart the index and containerd agree (every
//! record's snapshot and lease exist, every cache lease belongs to a record) and builds go on.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use nodekit_test_support::{ctr, leases_labelled, nodekitd_binary, DaemonProcess, Listen, TestEnv};

use crate::common::{build_dockerfile, context, unique};

#[tokio::test]
async fn kill_9_mid_build_leaves_a_consistent_index_and_no_orphans() {
    let root = tempfile::tempdir().expect("a root");
    let process = DaemonProcess::start(&nodekitd_binary(), root.path(), Listen::Unix).await;
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE > /one\nRUN sleep 0.3 && date > /two\nRUN sleep 0.3 && date > /three\nRUN sleep 5 && date > /four\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    let nonce = unique();
    let args = [("NONCE", nonce.as_str())];
    let daemon = nodekit_test_support::TestDaemon::attach(&process.addr, root.path());
    let build = build_dockerfile(&daemon, dir.path(), &args, None);
    let killed = async {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        process.kill_9();
    };
    let (interrupted, ()) = tokio::join!(build, killed);
    assert!(interrupted.result.is_err(), "the build was cut short");

    let process = DaemonProcess::start(&nodekitd_binary(), root.path(), Listen::Unix).await;
    let rebuilt = build_dockerfile(&daemon, dir.path(), &args, None).await;
    rebuilt
        .result
        .as_ref()
        .expect("the build after the restart");
    assert!(
        rebuilt.steps().iter().any(|s| s.cached),
        "steps finished before the kill are cached: {:?}",
        rebuilt.ran()
    );
    process.terminate();
    assert_consistent(root.path()).await;
    // The killed run's host mounts were undone by the restart, the restarted run's by its stop.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root_text = root.path().display().to_string();
    let left: Vec<&str> = mountinfo
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|p| p.starts_with(&root_text))
        })
        .collect();
    assert!(
        left.is_empty(),
        "mounts left under the daemon's root: {left:#?}"
    );
}

/// Every record names a snapshot and a lease containerd has; every cache lease of this
/// daemon is a record's; no step lease of it is left.
async fn assert_consistent(root: &Path) {
    let store = cachestore::Store::open(root.join("cache/index.redb")).expect("the index opens");
    let records = store.records().expect("records");
    assert!(!records.is_empty());
    let owner = format!(
        "nodekitd-{}",
        std::fs::read_to_string(root.join("worker-id"))
            .expect("worker id")
            .trim()
    );
    let env = TestEnv::get();
    let cache_leases = leases_labelled(nodekitd::worker::cache_leases::CACHE_OWNER_LABEL, &owner);
    let recorded: HashSet<String> = records.iter().map(|r| r.lease.clone()).collect();
    assert_eq!(
        cache_leases, recorded,
        "cache leases are exactly the records'"
    );
    for record in &records {
        let info = ctr(env, &["snapshots", "info", &record.snapshot]);
        assert!(
            info.status.success(),
            "record {} names a lost snapshot {}",
            record.key,
            record.snapshot
        );
    }
    let step_leases = leases_labelled(nodekitd::worker::leases::OWNER_LABEL, &owner);
    assert!(step_leases.is_empty(), "step leases left: {step_leases:?}");
    let filter = format!(
        "labels.\"{}\"=={owner}",
        nodekitd::worker::leases::OWNER_LABEL
    );
    let containers = ctr(env, &["containers", "ls", "-q", &filter]);
    let containers = String::from_utf8_lossy(&containers.stdout)
        .trim()
        .to_string();
    assert!(containers.is_empty(), "step containers left: {containers}");
}

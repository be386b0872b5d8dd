//! `kill -9` in the middle of a build: after a restart the index and containerd agree (every
//! record's snapshot and lease exist, every cache lease belongs to a record) and builds go on.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use nodekit_test_support::{ctr_in, leases_labelled_in, TestEnv};

use crate::common::{build_dockerfile, context, unique};

#[tokio::test]
async fn kill_9_mid_build_leaves_a_consistent_index_and_no_orphans() {
    let root = tempfile::tempdir().expect("a root");
    let process = crate::process::start(root.path()).await;
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

    let process = crate::process::start(root.path()).await;
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
    let records = assert_consistent(root.path(), &TestEnv::get().namespace);
    assert!(records > 0, "the steps before the kill were recorded");
    // The killed run's host mounts were undone by the restart, the restarted run's by its stop.
    assert_no_mounts_under(root.path());
    release_cache_leases(root.path(), &TestEnv::get().namespace);
}

/// Releases the cache leases of the daemon of `root` (in `namespace`): its root goes with the
/// test, and they would keep their snapshots in the shared containerd for good.
pub fn release_cache_leases(root: &Path, namespace: &str) {
    let cache_label = nodekitd::worker::cache_leases::CACHE_OWNER_LABEL;
    for lease in leases_labelled_in(namespace, cache_label, &owner(root)) {
        let removed = ctr_in(TestEnv::get(), namespace, &["leases", "rm", &lease]);
        assert!(removed.status.success(), "removing lease {lease}");
    }
}

/// The owner label value of the daemon of `root` (its worker id).
pub fn owner(root: &Path) -> String {
    let id = std::fs::read_to_string(root.join("worker-id")).expect("worker id");
    format!("nodekitd-{}", id.trim())
}

/// No mount point under `root` (the daemon's root, its local-mount-source-root with it).
pub fn assert_no_mounts_under(root: &Path) {
    let left = nodekit_test_support::mountinfo_under(root);
    assert!(
        left.is_empty(),
        "mounts left under the daemon's root: {left:#?}"
    );
}

/// Every record names a snapshot and a lease containerd has (in `namespace`); every cache lease
/// of this daemon is a record's; no step lease or container of it is left. The number of records.
pub fn assert_consistent(root: &Path, namespace: &str) -> usize {
    let store = cachestore::Store::open(root.join("cache/index.redb")).expect("the index opens");
    let records = store.records().expect("records");
    let owner = owner(root);
    let env = TestEnv::get();
    let cache_label = nodekitd::worker::cache_leases::CACHE_OWNER_LABEL;
    let cache_leases = leases_labelled_in(namespace, cache_label, &owner);
    let recorded: HashSet<String> = records.iter().map(|r| r.lease.clone()).collect();
    assert_eq!(
        cache_leases, recorded,
        "cache leases are exactly the records'"
    );
    for record in &records {
        let info = ctr_in(env, namespace, &["snapshots", "info", &record.snapshot]);
        assert!(
            info.status.success(),
            "record {} names a lost snapshot {}",
            record.key,
            record.snapshot
        );
    }
    let step_label = nodekitd::worker::leases::OWNER_LABEL;
    let step_leases = leases_labelled_in(namespace, step_label, &owner);
    assert!(step_leases.is_empty(), "step leases left: {step_leases:?}");
    let filter = format!("labels.\"{step_label}\"=={owner}");
    let containers = ctr_in(env, namespace, &["containers", "ls", "-q", &filter]);
    let containers = String::from_utf8_lossy(&containers.stdout)
        .trim()
        .to_string();
    assert!(containers.is_empty(), "step containers left: {containers}");
    records.len()
}

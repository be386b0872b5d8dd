//! `kill -9` of nodekitd at a random moment during concurrent builds, again and again on the
//! same root: after each restart nothing of the killed run is left in containerd (no lease,
//! container, task or uncommitted snapshot of it, no committed snapshot nothing holds) nor on
//! the host (no mount under its root, no step directory), the next build succeeds, and once
//! stopped every record of the index resolves (its snapshot and lease exist) and every cache
//! lease is a record's.
//!
//! `NODEKIT_KILL9_ITERATIONS` kills (3 by default, a few seconds each); `bench/kill9.sh 50` runs
//! the long version. In a containerd namespace of its own, so that what it counts is its own.

use std::path::Path;
use std::time::{Duration, Instant};

use nodekit_test_support::{
    number_from_env, DaemonProcess, Inventory, ScratchNamespace, TestDaemon, TestEnv,
};

use crate::common::{build_dockerfile, context, unique, Built};
use crate::crash::{assert_consistent, assert_no_mounts_under};

/// Builds in flight when the daemon is killed: they share cached steps, run uncached ones (a
/// nonce of their own), sync a context, use a cache mount and export an image.
fn dockerfiles(base: &str) -> [String; 3] {
    [
        format!(
            "FROM {base}\nRUN echo shared > /shared\nARG NONCE\nRUN echo $NONCE > /nonce\nRUN sleep 0.4 && date > /late\n"
        ),
        format!(
            "FROM {base}\nRUN echo shared > /shared\nARG NONCE\nCOPY data.txt /data.txt\nRUN --mount=type=cache,target=/var/cache/k9 sh -c 'echo $NONCE >> /var/cache/k9/log; sleep 0.6; cat /data.txt > /copied'\n"
        ),
        format!(
            "FROM {base}\nRUN sleep 0.3 && echo fixed > /fixed\nARG NONCE\nRUN echo $NONCE > /nonce && sleep 1\nRUN date > /last\n"
        ),
    ]
}

fn iterations() -> usize {
    number_from_env("NODEKIT_KILL9_ITERATIONS", 3)
}

#[tokio::test]
async fn kill_9_at_random_moments_during_concurrent_builds_leaves_nothing_behind() {
    let env = TestEnv::get();
    let namespace = ScratchNamespace::new("kill9");
    let worker = env
        .worker_in("kill9", &namespace.name, Default::default())
        .await;
    let root = tempfile::tempdir().expect("a root");
    let contexts: Vec<tempfile::TempDir> = dockerfiles(&env.registry_image)
        .iter()
        .map(|dockerfile| context(dockerfile, &[("data.txt", &"x".repeat(1 << 20))]))
        .collect();
    let started = Instant::now();
    let mut process = crate::process::start_in(root.path(), &namespace.name).await;
    for iteration in 1..=iterations() {
        let delay = Duration::from_millis(100 + rand::random::<u64>() % 1900);
        let finished = builds_killed_after(process, root.path(), &contexts, delay).await;
        process = crate::process::start_in(root.path(), &namespace.name).await;
        Inventory::wait_clean(&worker).await;
        assert_no_mounts_under(root.path());
        assert_no_step_dirs(root.path());
        let next = build(&process.addr, root.path(), &contexts[2]).await;
        next.result
            .as_ref()
            .unwrap_or_else(|e| panic!("iteration {iteration}: the build after the restart: {e}"));
        process.terminate();
        let records = assert_consistent(root.path(), &namespace.name);
        assert_no_mounts_under(root.path());
        eprintln!(
            "kill9 iteration {iteration}: killed after {delay:?} ({finished} of 3 builds had finished), {records} records, {:?} in all",
            started.elapsed()
        );
        process = crate::process::start_in(root.path(), &namespace.name).await;
    }
    process.terminate();
}

/// Starts every context's build on `process`, kills it with SIGKILL after `delay`, and waits
/// for the builds to end: how many had succeeded.
async fn builds_killed_after(
    process: DaemonProcess,
    root: &Path,
    contexts: &[tempfile::TempDir],
    delay: Duration,
) -> usize {
    let addr = process.addr.clone();
    let builds = futures::future::join_all(contexts.iter().map(|dir| build(&addr, root, dir)));
    let killed = async {
        tokio::time::sleep(delay).await;
        process.kill_9();
    };
    let (built, ()) = tokio::join!(builds, killed);
    built.iter().filter(|b| b.result.is_ok()).count()
}

/// The Dockerfile in `dir` built by the daemon at `addr` with a fresh nonce, its result exported
/// as an image.
async fn build(addr: &str, root: &Path, dir: &tempfile::TempDir) -> Built {
    let daemon = TestDaemon::attach(addr, root);
    let nonce = unique();
    let args = [("NONCE", nonce.as_str())];
    build_dockerfile(
        &daemon,
        dir.path(),
        &args,
        Some("nodekit.test/kill9:latest"),
    )
    .await
}

/// No step's private directory (named as its container, `nodekit-…`) is left under the
/// local-mount-source-root of the daemon of `root`.
fn assert_no_step_dirs(root: &Path) {
    let dir = nodekitd::config::default_mount_source_root(root);
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("the local-mount-source-root")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("nodekit-"))
        .collect();
    assert!(left.is_empty(), "step directories left: {left:?}");
}

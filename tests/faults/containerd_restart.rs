//! containerd stopped and started again under a running nodekitd: during a RUN step, and while
//! nodekitd is idle. The build that meets the outage fails naming containerd and its socket;
//! nodekitd reconnects by itself, and the next builds (cached and not) succeed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nodekit_test_support::{wait_serving, PrivateContainerd, TestDaemon, TestEnv};

use crate::common::{build_dockerfile, context, unique};
use crate::{build_recording, daemon_on};

/// The builds that must work after an outage: a fully cached rebuild of `cached_id`, and a
/// new RUN step.
async fn builds_succeed_again(daemon: &TestDaemon, cached_id: &str) {
    wait_serving(&daemon.addr).await;
    let cached = build_recording(daemon, cached_id).await;
    cached
        .result
        .as_ref()
        .expect("a cached rebuild after the outage");
    assert_eq!(cached.ran(), Vec::<String>::new(), "every step cached");
    let fresh = build_recording(daemon, &unique()).await;
    fresh.result.as_ref().expect("a new RUN after the outage");
    assert_eq!(fresh.ran().len(), 1, "{:?}", fresh.ran());
}

/// The error of a build that met containerd's outage names containerd and where it was
/// looked for, not only the transport's words.
fn assert_names_containerd(error: &str, containerd: &PrivateContainerd) {
    let socket = containerd.socket.display().to_string();
    assert!(
        error.contains("containerd") && error.contains(&socket),
        "the error names containerd at {socket}: {error}"
    );
}

/// Waits until a step's task runs in `containerd`.
async fn task_running(containerd: &Arc<PrivateContainerd>) {
    for _ in 0..400 {
        let listed = containerd.clone();
        let tasks = tokio::task::spawn_blocking(move || listed.ids("tasks"))
            .await
            .unwrap();
        if !tasks.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no step started in the private containerd");
}

/// Waits (up to 10 s) until containerd holds no container of nodekit's (a step's container
/// is deleted even when containerd went away while it ran).
async fn no_containers_left(containerd: &Arc<PrivateContainerd>) {
    let mut left = Vec::new();
    for _ in 0..100 {
        let listed = containerd.clone();
        left = tokio::task::spawn_blocking(move || listed.ids("containers"))
            .await
            .unwrap();
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("containers left in containerd: {left:?}");
}

/// A fresh directory for a daemon's root.
fn daemon_dir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("nodekit-{test}-"))
        .tempdir()
        .expect("a daemon directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_restarted_during_a_run_fails_that_build_and_the_next_ones_succeed() {
    let containerd = Arc::new(PrivateContainerd::start("restart-run"));
    let dir = daemon_dir("faults-restart-run");
    let daemon = daemon_on("faults-restart-run", &containerd, dir.path().to_path_buf()).await;
    let cached_id = unique();
    let first = build_recording(&daemon, &cached_id).await;
    first.result.as_ref().expect("a build before the outage");

    let sleeper = context(
        &format!(
            "FROM {}\nARG ID\nRUN echo $ID; sleep 60\n",
            TestEnv::get().local_image
        ),
        &[],
    );
    let started = Instant::now();
    let restarted = containerd.clone();
    let outage = async move {
        task_running(&restarted).await;
        tokio::task::spawn_blocking(move || restarted.restart())
            .await
            .unwrap();
    };
    let id = unique();
    let args = [("ID", id.as_str())];
    let (built, ()) = tokio::join!(
        build_dockerfile(&daemon, sleeper.path(), &args, None),
        outage
    );
    let error = built
        .result
        .expect_err("the build met containerd's restart");
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the build failed at once, not after its 60 s sleep: {:?}",
        started.elapsed()
    );
    assert_names_containerd(&error, &containerd);
    eprintln!("the build that met the restart: {error}");

    builds_succeed_again(&daemon, &cached_id).await;
    no_containers_left(&containerd).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_down_while_idle_fails_builds_clearly_until_it_is_back() {
    let containerd = Arc::new(PrivateContainerd::start("restart-idle"));
    let dir = daemon_dir("faults-restart-idle");
    let daemon = daemon_on("faults-restart-idle", &containerd, dir.path().to_path_buf()).await;
    let cached_id = unique();
    let first = build_recording(&daemon, &cached_id).await;
    first.result.as_ref().expect("a build before the outage");

    let stopped = containerd.clone();
    tokio::task::spawn_blocking(move || stopped.stop_daemon())
        .await
        .unwrap();
    let started = Instant::now();
    let refused = build_recording(&daemon, &unique()).await;
    let error = refused.result.expect_err("no containerd, no build");
    assert_names_containerd(&error, &containerd);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a build without containerd fails within seconds: {:?}",
        started.elapsed()
    );
    eprintln!("the build while containerd was down: {error}");

    let restarted = containerd.clone();
    tokio::task::spawn_blocking(move || restarted.start_again())
        .await
        .unwrap();
    builds_succeed_again(&daemon, &cached_id).await;
    daemon.stop().await;
}

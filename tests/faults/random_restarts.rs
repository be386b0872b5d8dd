//! containerd restarted at random moments while builds run, many times over: each build ends
//! (succeeds, or fails naming containerd), nodekitd serves on without a restart, and after each
//! round the next builds succeed and no container of nodekit's is left. The normal suite runs
//! a few rounds; `NODEKIT_FAULTS_RESTARTS=N` (bench/faults.sh) runs N.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nodekit_test_support::{number_from_env, PrivateContainerd, TestDaemon, TestEnv};

use crate::common::{build_dockerfile, context, unique, Built};
use crate::containerd_restart::{
    assert_names_containerd, builds_succeed_again, daemon_dir, no_containers_left,
};
use crate::{build_recording, daemon_on};

/// Rounds in the normal suite.
const DEFAULT_ROUNDS: usize = 3;
/// Builds running at once in each round.
const CONCURRENT_BUILDS: usize = 3;
/// The restart comes at a random moment within this long after the builds start.
const RESTART_WITHIN_MS: u64 = 1500;

fn rounds() -> usize {
    number_from_env("NODEKIT_FAULTS_RESTARTS", DEFAULT_ROUNDS)
}

/// How the builds of all rounds ended.
#[derive(Debug, Default)]
struct Tally {
    succeeded: usize,
    failed: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_restarted_at_random_moments_during_builds() {
    let test = "restart-random";
    let containerd = Arc::new(PrivateContainerd::start(test));
    let dir = daemon_dir(test);
    let daemon = daemon_on(test, &containerd, dir.path().to_path_buf()).await;
    let cached_id = unique();
    let first = build_recording(&daemon, &cached_id).await;
    first.result.as_ref().expect("a build before the restarts");
    let started = Instant::now();
    let mut tally = Tally::default();
    for round in 0..rounds() {
        let builds = futures::future::join_all((0..CONCURRENT_BUILDS).map(|n| {
            let id = format!("{round}-{n}-{}", unique());
            one_build(&daemon, id, n, cached_id.clone())
        }));
        let restart = restart_after(&containerd, rand::random::<u64>() % RESTART_WITHIN_MS);
        let (ended, ()) = tokio::join!(builds, restart);
        for built in ended {
            match built.result {
                Ok(_) => tally.succeeded += 1,
                Err(error) => {
                    assert_names_containerd(&error, &containerd);
                    tally.failed += 1;
                }
            }
        }
        builds_succeed_again(&daemon, &cached_id).await;
        no_containers_left(&containerd).await;
    }
    eprintln!(
        "{} rounds of {CONCURRENT_BUILDS} builds with a containerd restart each in {:?}: {tally:?}",
        rounds(),
        started.elapsed()
    );
    daemon.stop().await;
}

/// One of a round's builds, by its number: a cached one, a step that runs a while, or one
/// that writes a layer into the image store.
async fn one_build(daemon: &TestDaemon, id: String, n: usize, cached_id: String) -> Built {
    let base = &TestEnv::get().local_image;
    match n % 3 {
        0 => build_recording(daemon, &cached_id).await,
        1 => {
            let dir = context(
                &format!("FROM {base}\nARG ID\nRUN echo $ID; sleep 1\n"),
                &[],
            );
            build_dockerfile(daemon, dir.path(), &[("ID", &id)], None).await
        }
        _ => {
            let dockerfile = format!("FROM {base}\nARG ID\nRUN echo $ID > /id\n");
            let dir = context(&dockerfile, &[]);
            let image = format!("nodekit.test/faults-random:{n}");
            build_dockerfile(daemon, dir.path(), &[("ID", &id)], Some(&image)).await
        }
    }
}

async fn restart_after(containerd: &Arc<PrivateContainerd>, delay_ms: u64) {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    let restarted = containerd.clone();
    tokio::task::spawn_blocking(move || restarted.restart())
        .await
        .unwrap();
}

//! A full disk: nodekitd's root and containerd's on a small filesystem of the test's own that a
//! build fills up. The builds that meet it fail naming the disk and "no space left on device";
//! the daemon goes on serving, its cache index stays whole (a restart opens it and the earlier
//! records still hit), and once the space is freed builds succeed without restarting anything.

use nodekit_test_support::{LoopFs, PrivateContainerd, TestDaemon, TestEnv};

use crate::common::{build_dockerfile, context, unique, Built};
use crate::{build_recording, daemon_on};

/// The filesystem's size: room for containerd, the base image and the index, little more.
const DISK_MIB: u64 = 256;
/// What the filler writes: more than the disk holds.
const FILLER_MIB: u64 = 2 * DISK_MIB;

const TEST: &str = "faults-full-disk";

/// A Dockerfile whose one RUN is `command` (after echoing the ID build arg).
async fn run_step(daemon: &TestDaemon, command: &str, image: Option<&str>) -> Built {
    let dockerfile = format!(
        "FROM {}\nARG ID\nRUN echo $ID; {command}\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    build_dockerfile(daemon, dir.path(), &[("ID", &unique())], image).await
}

/// Removes the build cache's records whose description matches `pattern` (a regex).
async fn prune_matching(daemon: &TestDaemon, pattern: &str) -> usize {
    let filter = vec![format!("description~={pattern}")];
    daemon.prune_matching(filter).await
}

fn assert_says_disk_full(built: &Built, what: &str) -> String {
    let error = built.result.clone().expect_err(what);
    assert!(
        error.to_lowercase().contains("no space left on device"),
        "{what}: the error says the disk is full: {error}"
    );
    for misleading in ["went away", "broken pipe"] {
        assert!(!error.contains(misleading), "{what}: {error}");
    }
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_build_clearly_and_builds_succeed_once_space_is_freed() {
    let disk = LoopFs::new("full", DISK_MIB);
    let containerd = PrivateContainerd::start_in(&disk.mount_point.join("containerd"));
    let root = disk.mount_point.join("nodekitd");
    let daemon = daemon_on(TEST, &containerd, root.clone()).await;
    let cached_id = unique();
    let first = build_recording(&daemon, &cached_id).await;
    first
        .result
        .as_ref()
        .expect("a build before the disk fills");

    // The step itself ends well (dd's failure is ignored) with the disk full; writing its layer
    // into containerd's content store for the image then cannot.
    let fill = format!("dd if=/dev/zero of=/big bs=1M count={FILLER_MIB} || true");
    let filled = run_step(&daemon, &fill, Some("nodekit.test/faults-full:1")).await;
    let error = assert_says_disk_full(&filled, "exporting onto a full disk");
    eprintln!("exporting onto the full disk: {error}");
    assert!(disk.available() < 4 << 20, "the disk is full");

    // A step whose own write fails: its error names the full filesystem.
    let failed = run_step(&daemon, "dd if=/dev/zero of=/more bs=1M count=16", None).await;
    let error = assert_says_disk_full(&failed, "a RUN on a full disk");
    let mount_point = disk.mount_point.display().to_string();
    assert!(error.contains(&mount_point), "names {mount_point}: {error}");
    eprintln!("a RUN on the full disk: {error}");

    // Not a block left, nodekitd's own root included (a runaway file beside it): a new step
    // and a cached one both fail saying so; deleting the file is all it takes to go on.
    let filler = disk.fill("filler");
    let new_step = build_recording(&daemon, &unique()).await;
    assert_says_disk_full(&new_step, "a new step with no block left");
    let cached_step = build_recording(&daemon, &cached_id).await;
    assert_says_disk_full(&cached_step, "a cached step with no block left");
    std::fs::remove_file(&filler).unwrap();
    let after_delete = build_recording(&daemon, &cached_id).await;
    after_delete
        .result
        .as_ref()
        .expect("a cached build once the file is deleted");

    // Space freed (the filler's record pruned): builds work again, nothing restarted.
    assert_eq!(
        prune_matching(&daemon, "of=/big").await,
        1,
        "the filler's record"
    );
    assert!(
        disk.available() > 100 << 20,
        "the filler's snapshot is gone"
    );
    let cached = build_recording(&daemon, &cached_id).await;
    cached
        .result
        .as_ref()
        .expect("a cached build after freeing space");
    assert_eq!(
        cached.ran(),
        Vec::<String>::new(),
        "the earlier record hits"
    );
    let fresh = run_step(
        &daemon,
        "echo fresh > /fresh",
        Some("nodekit.test/faults-full:2"),
    )
    .await;
    fresh
        .result
        .as_ref()
        .expect("a new RUN and export after freeing space");
    let recorded_id = unique();
    let recorded = build_recording(&daemon, &recorded_id).await;
    recorded
        .result
        .as_ref()
        .expect("a new step after freeing space");
    daemon.stop().await;

    // The index survived the full disk: a restarted daemon opens it and its records hit.
    let daemon = daemon_on(TEST, &containerd, root).await;
    let after_restart = build_recording(&daemon, &cached_id).await;
    after_restart
        .result
        .as_ref()
        .expect("a cached build after a restart");
    assert_eq!(
        after_restart.ran(),
        Vec::<String>::new(),
        "cached across the restart"
    );
    // ...and it kept recording after the disk was full.
    let recorded_again = build_recording(&daemon, &recorded_id).await;
    recorded_again
        .result
        .as_ref()
        .expect("a rebuild after a restart");
    assert_eq!(
        recorded_again.ran(),
        Vec::<String>::new(),
        "a record made after the full disk hits"
    );
    daemon.stop().await;
}

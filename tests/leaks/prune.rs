//! `prune --all` leaves no lease, snapshot or blob of nodekit's in containerd beyond exported
//! images: cache records, cache mounts and kept local sources all go.

use std::collections::BTreeMap;

use nodekit::build::{build, BuildRequest};
use nodekit::session::SessionServices;
use nodekit_test_support::{ctr, leases_labelled, Inventory, TestDaemon, TestEnv};

const IMAGE: &str = "nodekit.test/leaks-prune:1";

#[tokio::test]
async fn prune_all_leaves_nothing_but_exported_images() {
    let _alone = crate::ALONE.lock().await;
    let env = TestEnv::get();
    let daemon = TestDaemon::start("leaks-prune").await;
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nCOPY f.txt /f.txt\nRUN --mount=type=cache,target=/c echo cached > /c/x && cp /f.txt /g.txt\n",
        env.local_image
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.path().join("f.txt"), rand::random::<u64>().to_string()).unwrap();
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        services: SessionServices {
            locals: BTreeMap::from([
                ("context".to_string(), dir.path().to_path_buf()),
                ("dockerfile".to_string(), dir.path().to_path_buf()),
            ]),
            ..Default::default()
        },
        exporters: vec![(
            "image".into(),
            BTreeMap::from([("name".to_string(), IMAGE.to_string())]),
        )],
        ..Default::default()
    };
    build(daemon.channel().await, request, |_| {})
        .await
        .unwrap();
    let owner = owner_of(&daemon);
    assert!(!cache_leases_of(&owner).is_empty(), "the build was cached");

    let removed = daemon.prune_all().await;
    assert!(
        removed >= 2,
        "the COPY and RUN records were pruned: {removed}"
    );
    assert_eq!(cache_leases_of(&owner), Vec::<String>::new());
    let snapshots = String::from_utf8_lossy(&ctr(env, &["snapshots", "ls"]).stdout).into_owned();
    assert!(
        !snapshots.contains("nodekit-cache-"),
        "cache mounts are gone:\n{snapshots}"
    );
    // As upstream's, the prune returns once containerd has collected what it let go.
    let worker = env.worker("leaks-prune").await;
    let left = Inventory::take(&worker).await;
    assert!(
        left.orphan_snapshots.is_empty() && left.uncommitted_snapshots.is_empty(),
        "snapshots left when the prune returned: {left:?}"
    );
    Inventory::wait_clean(&worker).await;
    crate::delete_image(&worker, IMAGE).await;
    Inventory::wait_clean(&worker).await;
    daemon.stop().await;
}

/// The label value of the daemon's leases (its worker ID, kept under its root).
fn owner_of(daemon: &TestDaemon) -> String {
    let id = std::fs::read_to_string(daemon.root.join("root/worker-id")).expect("worker id");
    format!("nodekitd-{}", id.trim())
}

fn cache_leases_of(owner: &str) -> Vec<String> {
    let label = nodekitd::worker::cache_leases::CACHE_OWNER_LABEL;
    leases_labelled(label, owner).into_iter().collect()
}

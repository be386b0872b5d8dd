//! A client that goes away in the middle of a RUN cancels its build: the step's task is killed
//! and no task, container, lease or snapshot of the build is left in containerd.
//! Alone in its binary, so no other test's objects are in flight while it looks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit::build::{build, BuildRequest};
use nodekit_test_support::{Inventory, TestDaemon, TestEnv};

#[tokio::test]
async fn disconnecting_mid_run_leaves_nothing_behind() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("cancel").await;
    let state = nodekit_llb_builder::image(&env.local_image)
        .run(["sh", "-c", "echo sleeping; sleep 600"])
        .root();
    let request = BuildRequest {
        definition: Some(nodekit_llb_builder::marshal(&state).unwrap()),
        ..Default::default()
    };
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let channel = daemon.channel().await;
    let client = tokio::spawn(async move {
        build(channel, request, |update| {
            if update.logs.iter().any(|l| l.msg.starts_with(b"sleeping")) {
                let _ = started_tx.send(());
            }
        })
        .await
    });
    tokio::time::timeout(std::time::Duration::from_secs(60), started.recv())
        .await
        .expect("the step starts within a minute");
    client.abort();

    let worker = env.worker("cancel").await;
    Inventory::wait_clean(&worker).await;
    // The daemon still serves.
    nodekit::connect::channel(&daemon.addr).await.unwrap();
    daemon.stop().await;
}

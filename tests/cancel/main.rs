//! A client that goes away in the middle of a RUN cancels its build: the step's task is killed,
//! no task, container, lease or snapshot of the build is left in containerd, and the build's
//! history record says it was cancelled. A daemon stopped right after such a disconnect, or
//! with a build still running when its grace period ends, tears the step down before it stops
//! and keeps the record. A client that goes away during its context sync or its export leaves
//! nothing either (phases.rs).
//! Alone in its binary, so no other test's objects are in flight while it looks; its tests take
//! turns for the same reason.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod phases;

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use nodekit::build::{build, BuildRequest};
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::{
    BuildHistoryEventType, BuildHistoryRecord, BuildHistoryRequest,
};
use nodekit_test_support::{daemon_containers, Inventory, TestDaemon, TestEnv};
use nodekitd::worker::Worker;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// Held by each test for its whole run: a test's leak checks must not see another's step.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Client = JoinHandle<anyhow::Result<std::collections::BTreeMap<String, String>>>;

/// Starts build `build_ref`, one RUN step that says "sleeping" and sleeps for ten minutes, and
/// waits until the step said it.
async fn start_sleeping_build(daemon: &TestDaemon, build_ref: &str) -> Client {
    let env = TestEnv::get();
    let state = nodekit_llb_builder::image(&env.local_image)
        .run(["sh", "-c", "echo sleeping; sleep 600"])
        .root();
    let request = BuildRequest {
        definition: Some(nodekit_llb_builder::marshal(&state).unwrap()),
        build_ref: build_ref.into(),
        ..Default::default()
    };
    let (started_tx, started) = tokio::sync::mpsc::unbounded_channel();
    let channel = daemon.channel().await;
    let client = tokio::spawn(async move {
        build(channel, request, |update| {
            if update.logs.iter().any(|l| l.msg.starts_with(b"sleeping")) {
                let _ = started_tx.send(());
            }
        })
        .await
    });
    wait_started(started).await;
    client
}

async fn wait_started(mut started: UnboundedReceiver<()>) {
    tokio::time::timeout(Duration::from_secs(60), started.recv())
        .await
        .expect("the step starts within a minute");
}

/// The record of `build_ref` once it is complete, as `buildctl debug histories` sees it
/// (waiting up to 30 s for it to complete).
async fn completed_record(daemon: &TestDaemon, build_ref: &str) -> BuildHistoryRecord {
    let listen = BuildHistoryRequest {
        r#ref: build_ref.into(),
        ..Default::default()
    };
    let mut events = ControlClient::new(daemon.channel().await)
        .listen_build_history(listen)
        .await
        .unwrap()
        .into_inner();
    let complete = async {
        while let Some(event) = events.next().await {
            let event = event.unwrap();
            if event.r#type == BuildHistoryEventType::Complete as i32 {
                return event.record.unwrap();
            }
        }
        panic!("the history stream of {build_ref} ended without its completion");
    };
    tokio::time::timeout(Duration::from_secs(30), complete)
        .await
        .unwrap_or_else(|_| panic!("the record of {build_ref} is still not complete"))
}

/// A record of a cancelled build: gRPC's Cancelled, with the progress it had made.
fn assert_cancelled(record: &BuildHistoryRecord, message: &str) {
    let error = record
        .error
        .as_ref()
        .expect("a cancelled build has an error");
    assert_eq!(error.code, tonic::Code::Cancelled as i32, "{record:?}");
    assert_eq!(error.message, message, "{record:?}");
    assert!(record.completed_at.is_some(), "{record:?}");
    // The image and the RUN step.
    assert_eq!(record.num_total_steps, 2, "{record:?}");
    assert!(
        record.logs.as_ref().is_some_and(|l| l.size > 0),
        "{record:?}"
    );
}

/// Right after the daemon of `dir` stopped, none of its step containers is left (a task goes
/// before its container): one left now would stay, runc's shim with it, until its next start.
/// Only that daemon's are looked at, by their owner label, so no other build in flight on the
/// same containerd counts.
async fn assert_no_step_left(worker: &Worker, dir: &Path) {
    let left = daemon_containers(worker, dir).await;
    assert!(left.is_empty(), "the stopped daemon left steps: {left:?}");
}

#[tokio::test]
async fn disconnecting_mid_run_leaves_nothing_behind_and_a_cancelled_record() {
    let _turn = TURN.lock().await;
    let env = TestEnv::get();
    let daemon = TestDaemon::start("cancel").await;
    let client = start_sleeping_build(&daemon, "cancel-disconnect").await;
    client.abort();

    // Not "running" until the daemon restarts: complete, as upstream records it.
    let record = completed_record(&daemon, "cancel-disconnect").await;
    assert_cancelled(&record, "context canceled");
    let worker = env.worker("cancel").await;
    Inventory::wait_clean(&worker).await;
    // The daemon still serves.
    nodekit::connect::channel(&daemon.addr).await.unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn a_daemon_stopped_right_after_a_disconnect_tears_the_step_down_and_keeps_the_record() {
    let _turn = TURN.lock().await;
    let env = TestEnv::get();
    let daemon = TestDaemon::start("cancel-stop").await;
    let dir = daemon.root.clone();
    let client = start_sleeping_build(&daemon, "cancel-then-stop").await;
    client.abort();
    // Nothing waited for: the step's teardown and the record's write are still in flight.
    daemon.stop().await;

    let worker = env.worker("cancel-stop").await;
    assert_no_step_left(&worker, &dir).await;
    Inventory::wait_clean(&worker).await;
    let daemon = TestDaemon::start_in("cancel-stop", dir).await;
    let record = completed_record(&daemon, "cancel-then-stop").await;
    assert_cancelled(&record, "context canceled");
    daemon.stop().await;
}

#[tokio::test]
async fn a_build_still_running_when_the_grace_period_ends_is_cancelled_and_torn_down() {
    let _turn = TURN.lock().await;
    let env = TestEnv::get();
    let grace = |config: &mut nodekitd::config::Config| {
        config.shutdown_grace = Duration::from_secs(1);
    };
    let daemon = TestDaemon::start_with("cancel-grace", grace).await;
    let dir = daemon.root.clone();
    // Its client stays: the listeners' closing alone would not end it.
    let client = start_sleeping_build(&daemon, "cancel-at-shutdown").await;
    daemon.stop().await;

    let worker = env.worker("cancel-grace").await;
    assert_no_step_left(&worker, &dir).await;
    let error = client.await.unwrap().expect_err("the build was cancelled");
    assert!(format!("{error:#}").contains("cancelled"), "{error:#}");
    Inventory::wait_clean(&worker).await;
    let daemon = TestDaemon::start_in("cancel-grace", dir).await;
    let record = completed_record(&daemon, "cancel-at-shutdown").await;
    assert_cancelled(&record, "build cancelled");
    daemon.stop().await;
}

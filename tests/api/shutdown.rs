//! Graceful shutdown: once SIGTERM (here, its in-process equivalent) arrives, a running build
//! finishes and is exported, and a new one is refused with Unavailable.

use std::time::Duration;

use nodekit::build::{build, BuildRequest};
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::SolveRequest;
use nodekit_test_support::TestDaemon;

use crate::helpers::{busybox, definition, image_output, run_in_image};

#[tokio::test]
async fn a_shutdown_lets_a_running_build_finish_and_refuses_new_ones() {
    let mut daemon = TestDaemon::start("graceful").await;
    let image = "nodekit.test/api-graceful:1";
    let marker = rand::random::<u64>();
    let state = busybox()
        .run([
            "sh",
            "-c",
            &format!("sleep 7; echo finished-{marker} > /done"),
        ])
        .root();
    let request = BuildRequest {
        definition: Some(definition(&state)),
        exporters: image_output(image),
        ..Default::default()
    };
    let running = tokio::spawn(build(daemon.channel().await, request, |_| {}));
    // The step is running by now. It sleeps longer than the 5 s the listeners give open
    // connections once they close: only the drain lets it finish.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stopping = daemon.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let refused = ControlClient::new(daemon.channel().await)
        .solve(SolveRequest {
            r#ref: "after-sigterm".into(),
            definition: Some(Default::default()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("shutting down"), "{refused:?}");

    running.await.unwrap().unwrap();
    assert_eq!(
        run_in_image(image, &["cat", "/done"]),
        format!("finished-{marker}\n")
    );
    let _ = tokio::task::spawn_blocking(move || stopping.map(|t| t.join())).await;
}

//! After everything the worker does (resolve, pull, unpack, run, fail, cancel, commit, write),
//! containerd holds no lease, container, task or snapshot of nodekit's beyond the written images'.
//! And after `prune --all`, the build cache holds nothing either. Alone in their binary (and
//! taking turns), so no other test's objects are in flight while they look.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod prune;

use std::time::Duration;

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::DeleteImageRequest;
use nodekit_test_support::{Inventory, TestEnv};
use nodekitd::oci::Platform;
use nodekitd::worker::exec::{NetworkMode, ProcessSpec};
use nodekitd::worker::{Compression, ExecRequest, ImageWrite, ManifestFormat, NewLayer, Worker};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "nodekit.test/leaks:latest";

/// The tests of this binary take turns: each looks at all of containerd.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn the_worker_leaves_nothing_behind_but_written_images() {
    let _alone = ALONE.lock().await;
    let env = TestEnv::get();
    let worker = env.worker("leaks").await;
    build_an_image(&worker, env).await;
    failing_and_cancelled_steps(&worker, env).await;
    interactive_containers(&worker, env).await;
    Inventory::wait_clean(&worker).await;

    // Deleting the written image frees its snapshots too.
    delete_image(&worker, IMAGE).await;
    Inventory::wait_clean(&worker).await;
}

fn request(rootfs: nodekitd::worker::ActiveSnapshot, script: &str) -> ExecRequest {
    ExecRequest {
        rootfs,
        process: ProcessSpec {
            args: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        },
        mounts: Vec::new(),
        network: NetworkMode::Host,
        sandbox: Default::default(),
        emulator: None,
    }
}

async fn build_an_image(worker: &Worker, env: &TestEnv) {
    let lease = worker.lease("leaks-build").await.unwrap();
    let base = worker
        .resolve_image(&env.local_image, &Platform::native())
        .await
        .unwrap();
    let top = worker.unpack(&lease, &base).await.unwrap();
    let rootfs = worker.prepare(&lease, top.as_deref()).await.unwrap();
    let outcome = worker
        .exec(
            request(rootfs.clone(), "echo leak-check > /marker"),
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 0);
    let layer = worker
        .commit_layer(&lease, rootfs, Compression::Zstd)
        .await
        .unwrap();
    let write = ImageWrite {
        names: vec![IMAGE.into()],
        base: Some(&base),
        platform: Platform::native(),
        layers: vec![NewLayer {
            layer,
            created_by: "RUN echo leak-check > /marker".into(),
        }],
        config: None,
        full_config: None,
        format: ManifestFormat::Oci,
        annotations: Default::default(),
        base_layers: None,
    };
    worker.write_image(&lease, &write).await.unwrap();
    lease.release().await.unwrap();
}

async fn failing_and_cancelled_steps(worker: &Worker, env: &TestEnv) {
    let lease = worker.lease("leaks-fail").await.unwrap();
    let base = worker
        .resolve_image(&env.local_image, &Platform::native())
        .await
        .unwrap();
    let top = worker.unpack(&lease, &base).await.unwrap();
    // A step that fails, one whose binary is missing, one cancelled mid-run; none committed.
    let failing = worker.prepare(&lease, top.as_deref()).await.unwrap();
    let outcome = worker
        .exec(request(failing, "exit 7"), None, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 7);
    let missing = worker.prepare(&lease, top.as_deref()).await.unwrap();
    let mut bad = request(missing, "");
    bad.process.args = vec!["/nonexistent".into()];
    assert!(worker
        .exec(bad, None, CancellationToken::new())
        .await
        .is_err());
    let cancelled = worker.prepare(&lease, top.as_deref()).await.unwrap();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    assert!(worker
        .exec(request(cancelled, "sleep 300"), None, cancel)
        .await
        .is_err());
    // A step whose future is dropped mid-run (a client that went away).
    let dropped = worker.prepare(&lease, top.as_deref()).await.unwrap();
    let run = worker.exec(
        request(dropped, "sleep 300"),
        None,
        CancellationToken::new(),
    );
    assert!(tokio::time::timeout(Duration::from_millis(500), run)
        .await
        .is_err());
    lease.release().await.unwrap();
}

/// Gateway containers: one released with its init and an exec'd process still running, one
/// whose process failed to start, one never started.
async fn interactive_containers(worker: &Worker, env: &TestEnv) {
    use nodekitd::worker::exec::{InteractiveContainer, ProcessRequest, StreamSet};
    let lease = worker.lease("leaks-interactive").await.unwrap();
    let base = worker
        .resolve_image(&env.local_image, &Platform::native())
        .await
        .unwrap();
    let top = worker.unpack(&lease, &base).await.unwrap();
    let process = |args: &[&str]| ProcessRequest {
        process: ProcessSpec {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        },
        streams: StreamSet {
            stdout: true,
            ..Default::default()
        },
        privileged: false,
    };
    for starts in [vec!["sleep", "300"], vec!["/nonexistent"], vec![]] {
        let rootfs = worker.prepare(&lease, top.as_deref()).await.unwrap();
        let container = InteractiveContainer::new(worker, request(rootfs, "")).unwrap();
        let (sink, _output) = tokio::sync::mpsc::channel(16);
        let mut running = Vec::new();
        if !starts.is_empty() {
            match container.start(process(&starts), sink.clone()).await {
                Ok(init) => {
                    running.push(init);
                    let exec = container.start(process(&["sleep", "300"]), sink).await;
                    running.push(exec.unwrap());
                }
                Err(error) => assert!(error.to_string().contains("nonexistent"), "{error}"),
            }
        }
        // Waiting, as the gateway does, from before the release.
        let waits: Vec<_> = running
            .iter()
            .map(|p| {
                let control = p.control.clone();
                tokio::spawn(async move { control.wait().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        container.release().await;
        for wait in waits {
            assert_ne!(wait.await.unwrap().unwrap(), 0);
        }
        for process in running {
            process.finish().await;
        }
    }
    lease.release().await.unwrap();
}

pub async fn delete_image(worker: &Worker, name: &str) {
    ImagesClient::new(worker.channel().clone())
        .delete(worker.ctx().request(DeleteImageRequest {
            name: name.into(),
            sync: true,
            target: None,
        }))
        .await
        .expect("image delete");
}

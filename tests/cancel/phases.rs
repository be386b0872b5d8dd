//! A client that goes away while its large context is being sent, or while its image is being
//! exported: within a bounded wait the daemon holds nothing of the build (no build lease, no
//! container, no mount under its root or local-mount-source-root), its record is complete, the
//! next build succeeds, and once stopped the daemon leaves no lease or mount.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use nodekit::build::{build, BuildRequest};
use nodekit::session::SessionServices;
use nodekit_proto::moby::buildkit::v1::StatusResponse;
use nodekit_test_support::{daemon_containers, leases_labelled, TestDaemon, TestEnv};
use nodekitd::worker::leases::OWNER_LABEL;

use crate::{completed_record, Client, TURN};

/// Large enough that sending it takes a while (incompressible, in several files).
const CONTEXT_FILES: usize = 32;
const CONTEXT_FILE_BYTES: usize = 1 << 20;

#[tokio::test]
async fn disconnecting_during_context_sync_leaves_nothing_behind() {
    let _turn = TURN.lock().await;
    let daemon = TestDaemon::start("cancel-sync").await;
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {}\nCOPY . /ctx\n", TestEnv::get().local_image);
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for n in 0..CONTEXT_FILES {
        let mut data = vec![0; CONTEXT_FILE_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut data);
        std::fs::write(dir.path().join(format!("blob-{n}")), data).unwrap();
    }
    let request = dockerfile_request(dir.path(), "cancel-during-sync", vec![]);
    let client = start_until(&daemon, request, "[internal] load build context").await;
    client.abort();

    assert_left_nothing(daemon, "cancel-sync", "cancel-during-sync").await;
}

#[tokio::test]
async fn disconnecting_during_export_leaves_nothing_behind() {
    let _turn = TURN.lock().await;
    let daemon = TestDaemon::start("cancel-export").await;
    let dir = tempfile::tempdir().unwrap();
    // A large incompressible layer, compressed at export: the export takes a while.
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE > /nonce && head -c 33554432 /dev/urandom > /big\n",
        TestEnv::get().local_image
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let image = BTreeMap::from([
        (
            "name".to_string(),
            "nodekit.test/cancel-export:latest".to_string(),
        ),
        ("compression".to_string(), "gzip".to_string()),
    ]);
    let mut request = dockerfile_request(dir.path(), "cancel-during-export", vec![image]);
    let nonce = format!("{}", rand::random::<u64>());
    request
        .frontend_attrs
        .insert("build-arg:NONCE".into(), nonce);
    let client = start_until(&daemon, request, "exporting to image").await;
    client.abort();

    assert_left_nothing(daemon, "cancel-export", "cancel-during-export").await;
}

/// A Dockerfile build of `dir` (context and Dockerfile), exporting one image per `images`.
fn dockerfile_request(
    dir: &Path,
    build_ref: &str,
    images: Vec<BTreeMap<String, String>>,
) -> BuildRequest {
    let locals = BTreeMap::from([
        ("context".to_string(), dir.to_path_buf()),
        ("dockerfile".to_string(), dir.to_path_buf()),
    ]);
    BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        services: SessionServices {
            locals,
            ..Default::default()
        },
        exporters: images.into_iter().map(|a| ("image".into(), a)).collect(),
        build_ref: build_ref.into(),
        ..Default::default()
    }
}

/// Starts `request` and waits (up to a minute) until its step named `vertex` has started and
/// not completed.
async fn start_until(daemon: &TestDaemon, request: BuildRequest, vertex: &'static str) -> Client {
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let channel = daemon.channel().await;
    let client = tokio::spawn(async move {
        build(channel, request, |update| {
            if is_running(update, vertex) {
                let _ = started_tx.send(());
            }
        })
        .await
    });
    tokio::time::timeout(Duration::from_secs(60), started.recv())
        .await
        .unwrap_or_else(|_| panic!("{vertex} did not start within a minute"));
    client
}

fn is_running(update: &StatusResponse, vertex: &str) -> bool {
    update
        .vertexes
        .iter()
        .any(|v| v.name == vertex && v.started.is_some() && v.completed.is_none())
}

/// Within 30 s of the disconnect the build holds nothing: no build lease, no container, no
/// mount under the daemon's root or local-mount-source-root (but the views of cached results,
/// which the daemon keeps from build to build by design); its record is complete and the daemon
/// builds on. Once stopped, the daemon holds no lease and no mount at all.
async fn assert_left_nothing(daemon: TestDaemon, test: &str, build_ref: &str) {
    let env = TestEnv::get();
    let worker = env.worker(test).await;
    let id = nodekitd::api::load_or_create_worker_id(&daemon.root.join("root")).unwrap();
    let owner = format!("nodekitd-{id}");
    let roots = [daemon.root.clone(), env.mount_source_root(test)];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let builds: Vec<String> = leases_labelled(OWNER_LABEL, &owner)
            .into_iter()
            .filter(|l| l.starts_with("nodekit-build-"))
            .collect();
        let containers = daemon_containers(&worker, &daemon.root).await;
        let mounts: Vec<String> = mounts_under(&roots)
            .into_iter()
            .filter(|m| !m.contains("/views/"))
            .collect();
        if builds.is_empty() && containers.is_empty() && mounts.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left 30 s after the disconnect: build leases {builds:?}, containers {containers:?}, mounts {mounts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let record = completed_record(&daemon, build_ref).await;
    assert!(record.error.is_some(), "{record:?}");
    let state = nodekit_llb_builder::image(&env.local_image)
        .run(["sh", "-c", "echo still serving"])
        .root();
    let next = BuildRequest {
        definition: Some(nodekit_llb_builder::marshal(&state).unwrap()),
        ..Default::default()
    };
    build(daemon.channel().await, next, |_| {})
        .await
        .expect("the next build");
    daemon.stop().await;
    let leases = leases_labelled(OWNER_LABEL, &owner);
    assert!(
        leases.is_empty(),
        "leases left by the stopped daemon: {leases:?}"
    );
    let mounts = mounts_under(&roots);
    assert!(
        mounts.is_empty(),
        "mounts left by the stopped daemon: {mounts:#?}"
    );
}

/// The mount points under any of `roots`.
fn mounts_under(roots: &[std::path::PathBuf]) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|point| roots.iter().any(|r| Path::new(point).starts_with(r)))
        .map(str::to_string)
        .collect()
}

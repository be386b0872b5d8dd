//! local-mount-source-root: every host path nodekitd binds into a step lies below it (the rest
//! are snapshots containerd itself handed out), is private to root, and is gone when the step
//! ends; nothing is bound from /tmp.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::ListContainersRequest;
use nodekit_test_support::{TestDaemon, TestEnv};
use serde_json::Value;

use crate::binfmt::{Binfmt, MACHINE};
use crate::common::{build_dockerfile_with_secrets, context, unique};

const TEST: &str = "mount-source-root";

/// A native step with every kind of mount, and an arm64 step through the bundled qemu; each
/// waits a moment (a shell builtin: a bundled qemu cannot start another arm64 program) so the test can read its container's runtime spec.
fn dockerfile() -> String {
    let base = &TestEnv::get().local_image;
    format!(
        "FROM {base} AS sub
RUN mkdir /sub && echo sub > /sub/f
FROM --platform=linux/arm64 {base} AS arm
ARG NONCE
RUN echo $NONCE; uname -m > /arch; read -t 1 pause < /dev/zero || true
FROM {base}
ARG NONCE
RUN --mount=type=bind,target=/ctx --mount=type=secret,id=token,target=/run/secrets/token --mount=type=cache,id=audit-$NONCE,target=/c,uid=1000 --mount=type=tmpfs,target=/t --mount=type=bind,from=sub,source=/sub,target=/sel echo $NONCE; cat /sel/f /run/secrets/token; sleep 1
COPY --from=arm /arch /arch
"
    )
}

/// The runtime specs of every step container seen while `done` is unset.
fn watch_specs(done: Arc<Mutex<bool>>) -> tokio::task::JoinHandle<BTreeMap<String, Value>> {
    tokio::spawn(async move {
        let worker = TestEnv::get().worker("mount-source-root-watch").await;
        let mut client = ContainersClient::new(worker.channel().clone());
        let mut specs = BTreeMap::new();
        while !*done.lock().unwrap() {
            let listed = client
                .list(worker.ctx().request(ListContainersRequest::default()))
                .await
                .expect("listing containers")
                .into_inner()
                .containers;
            for container in listed {
                let Some(spec) = container.spec.as_ref() else {
                    continue;
                };
                if container.id.starts_with("nodekit-") && !specs.contains_key(&container.id) {
                    let spec: Value = serde_json::from_slice(&spec.value).expect("a JSON spec");
                    specs.insert(container.id.clone(), spec);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        specs
    })
}

fn is_bind(mount: &Value) -> bool {
    let options = mount["options"].as_array().cloned().unwrap_or_default();
    mount["type"] == "bind" || options.iter().any(|o| o == "bind" || o == "rbind")
}

#[tokio::test]
async fn every_bind_source_lies_under_local_mount_source_root() {
    let _machine = MACHINE.lock().await;
    let mut binfmt = Binfmt::take();
    binfmt.disable_arm64();
    let env = TestEnv::get();
    let mount_root = env.mount_source_root(TEST);
    let _ = std::fs::remove_dir_all(&mount_root);
    let daemon = TestDaemon::start(TEST).await;

    let done = Arc::new(Mutex::new(false));
    let watcher = watch_specs(done.clone());
    let dir = context(&dockerfile(), &[("a.txt", "a")]);
    let nonce = unique();
    let secrets = BTreeMap::from([("token".to_string(), b"s3cr3t".to_vec())]);
    let built = build_dockerfile_with_secrets(
        &daemon,
        dir.path(),
        &[("NONCE", nonce.as_str())],
        None,
        secrets,
    )
    .await;
    *done.lock().unwrap() = true;
    let specs = watcher.await.unwrap();
    built.result.as_ref().expect("the audited build");
    assert!(built.logs().contains("s3cr3t"), "{}", built.logs());

    let containerd_root = PathBuf::from(
        std::env::var("NODEKIT_TEST_CONTAINERD_ROOT").expect("NODEKIT_TEST_CONTAINERD_ROOT"),
    );
    let mut daemon_made = BTreeSet::new();
    for (id, spec) in &specs {
        for mount in spec["mounts"].as_array().expect("mounts") {
            if !is_bind(mount) {
                continue;
            }
            let source = Path::new(mount["source"].as_str().expect("a source"));
            let destination = mount["destination"].as_str().unwrap_or_default();
            assert!(
                !source.starts_with("/tmp"),
                "{id}: {destination} from {source:?}"
            );
            if source.starts_with(&mount_root) {
                daemon_made.insert(destination.to_string());
            } else {
                assert!(
                    source.starts_with(&containerd_root),
                    "{id}: {destination} is bound from {source:?}, outside {mount_root:?}"
                );
            }
        }
    }
    assert!(specs.len() >= 2, "saw {} step containers", specs.len());
    for expected in [
        "/etc/hosts",
        "/etc/resolv.conf",
        "/run/secrets/token",
        "/c",
        "/sel",
        "/dev/.buildkit_qemu_emulator",
    ] {
        assert!(
            daemon_made.contains(expected),
            "{expected} not seen bound from the root: {daemon_made:?}"
        );
    }
    daemon.stop().await;
    assert_only_shared_files_remain(&mount_root);
}

/// After the build: the root is private, and holds no step's files, only the staged emulator.
fn assert_only_shared_files_remain(mount_root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(mount_root).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mount_root:?}");
    let mut left = Vec::new();
    collect_files(mount_root, &mut left);
    let left: Vec<String> = left
        .iter()
        .map(|p| p.strip_prefix(mount_root).unwrap().display().to_string())
        .collect();
    assert_eq!(left, ["emulators/qemu-aarch64-static"]);
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            collect_files(&path, files)
        } else {
            files.push(path)
        }
    }
}

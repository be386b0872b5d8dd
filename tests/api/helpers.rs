//! Shared pieces: building definitions, running builds, reading exported images.

use std::collections::BTreeMap;

use nodekit::build::{build, BuildRequest};
use nodekit_llb_builder::{marshal, State};
use nodekit_proto::moby::buildkit::v1::StatusResponse;
use nodekit_proto::pb;
use nodekit_test_support::{TestDaemon, TestEnv};

pub fn definition(state: &State) -> pb::Definition {
    marshal(state).expect("the test graph marshals")
}

/// The exporter attributes storing the result as `name`.
pub fn image_output(name: &str) -> Vec<(String, BTreeMap<String, String>)> {
    vec![(
        "image".into(),
        BTreeMap::from([("name".to_string(), name.to_string())]),
    )]
}

/// Runs `request`; returns the exporter response (or the error text) and every progress update.
pub async fn run_build(
    daemon: &TestDaemon,
    request: BuildRequest,
) -> (
    Result<BTreeMap<String, String>, String>,
    Vec<StatusResponse>,
) {
    let mut updates = Vec::new();
    let result = build(daemon.channel().await, request, |u| updates.push(u.clone())).await;
    (result.map_err(|e| format!("{e:#}")), updates)
}

/// Output of `cmd` run in a container of `image` (via ctr, as a kubelet-side check).
pub fn run_in_image(image: &str, cmd: &[&str]) -> String {
    nodekit_test_support::run_in_image(image, None, cmd)
}

/// Builds `state` into `image` and returns the content of `path` in a container of it.
pub async fn built_file(daemon: &TestDaemon, state: &State, image: &str, path: &str) -> String {
    let request = BuildRequest {
        definition: Some(definition(state)),
        exporters: image_output(image),
        ..Default::default()
    };
    run_build(daemon, request).await.0.unwrap();
    run_in_image(image, &["cat", path])
}

/// Every log line of every step, in order.
pub fn logs(updates: &[StatusResponse]) -> String {
    updates
        .iter()
        .flat_map(|u| u.logs.iter())
        .map(|l| String::from_utf8_lossy(&l.msg).into_owned())
        .collect()
}

/// A step on `reference` pulled from its registry whatever the store holds, with the client
/// offering the credentials of `docker_config` (if any).
pub fn on_pulled_image(reference: &str, docker_config: Option<std::path::PathBuf>) -> BuildRequest {
    let state = nodekit_llb_builder::Image::new(reference)
        .resolve_mode(nodekit_llb_builder::ResolveMode::ForcePull)
        .into_state()
        .run(["sh", "-c", "echo pulled > /x"])
        .root();
    BuildRequest {
        definition: Some(definition(&state)),
        services: nodekit::session::SessionServices {
            docker_config,
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn busybox() -> State {
    nodekit_llb_builder::image(&TestEnv::get().local_image)
}

/// A gateway request of build `build` (the id travels as metadata).
pub fn with_build<T>(build: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("buildkit-controlapi-buildid", build.parse().unwrap());
    request
}

/// The raw manifest skopeo reads at `image` (a transport:reference) with `options`.
pub fn skopeo_raw_manifest(options: &[&str], image: &str) -> Vec<u8> {
    skopeo_inspect("--raw", options, image)
}

/// The image config skopeo reads at `image` with `options`.
pub fn skopeo_config(options: &[&str], image: &str) -> serde_json::Value {
    serde_json::from_slice(&skopeo_inspect("--config", options, image)).unwrap()
}

/// `skopeo inspect <what>` of `image`: its output, the test failing with skopeo's message.
fn skopeo_inspect(what: &str, options: &[&str], image: &str) -> Vec<u8> {
    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", what])
        .args(options)
        .arg(image)
        .output()
        .expect("skopeo runs");
    assert!(
        inspect.status.success(),
        "skopeo inspect {what} {image}: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    inspect.stdout
}

/// An ssh-agent holding one fresh key, stopped (by PID) when dropped.
pub struct Agent {
    process: std::process::Child,
    pub socket: std::path::PathBuf,
    pub comment: String,
    dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(comment: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let process = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent runs (package openssh-client)");
        for _ in 0..100 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let key = dir.path().join("key");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        let added = std::process::Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .output()
            .unwrap();
        assert!(added.status.success(), "{added:?}");
        Agent {
            process,
            socket,
            comment: comment.to_string(),
            dir,
        }
    }
}

impl Agent {
    /// The public half of the agent's key (an authorized_keys line).
    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("key.pub")).expect("the key's public half")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A Dockerfile build's local directories: `context` and `dockerfile` both `dir`.
pub fn dockerfile_dirs(dir: &std::path::Path) -> BTreeMap<String, std::path::PathBuf> {
    BTreeMap::from([
        ("context".to_string(), dir.to_path_buf()),
        ("dockerfile".to_string(), dir.to_path_buf()),
    ])
}

/// A client session whose `context` and `dockerfile` are both `dir`.
pub fn context_locals(dir: &std::path::Path) -> nodekit::session::SessionServices {
    nodekit::session::SessionServices {
        locals: dockerfile_dirs(dir),
        ..Default::default()
    }
}

/// The paths of the files (not directories) under `root`, relative to it, in no set order.
pub fn files_under(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    found
}

//! SSH agent forwarding (`RUN --mount=type=ssh`, `--ssh`): a real ssh-agent with a test key,
//! forwarded through the session into a step; the host's `ssh-add -l` lists the key through the
//! step's socket while the step runs. The agent's keys are in neither the image nor the cache
//! key; a required agent the client does not forward fails the step by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nodekit::build::{build, BuildRequest};
use nodekit::session::SessionServices;
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::helpers::{logs, run_build, run_in_image, Agent};

fn request(dir: &Path, agent: Option<&Agent>, image: Option<&str>) -> BuildRequest {
    let ssh_agents = agent
        .map(|a| BTreeMap::from([("default".to_string(), a.socket.clone())]))
        .unwrap_or_default();
    BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([(
            "build-arg:BASE".to_string(),
            TestEnv::get().local_image.clone(),
        )]),
        services: SessionServices {
            locals: crate::helpers::dockerfile_dirs(dir),
            ssh_agents,
            ..Default::default()
        },
        exporters: image.map(crate::helpers::image_output).unwrap_or_default(),
        ..Default::default()
    }
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// The agent sockets nodekitd made for steps under the test's mount source root.
fn step_sockets(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "ssh_auth_sock") {
                found.push(path);
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_step_reaches_the_client_s_agent_and_keeps_none_of_it() {
    let test = "ssh-forward";
    let daemon = TestDaemon::start(test).await;
    let agent = Agent::start("nodekit-test-key");
    let dir = context(
        "ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh,mode=0640,uid=1000 sh -c 'stat -c \"socket %a %u\" \"$SSH_AUTH_SOCK\"; echo at $SSH_AUTH_SOCK; echo ready; sleep 5'\n",
    );
    let image = "nodekit.test/api-ssh:1";
    let (ready_tx, mut ready) = tokio::sync::mpsc::unbounded_channel();
    let channel = daemon.channel().await;
    let building = build(
        channel,
        request(dir.path(), Some(&agent), Some(image)),
        move |u| {
            if logs(std::slice::from_ref(u)).contains("ready") {
                let _ = ready_tx.send(());
            }
        },
    );
    let listing = async {
        tokio::time::timeout(Duration::from_secs(60), ready.recv())
            .await
            .expect("the step starts");
        let sockets = step_sockets(&TestEnv::get().mount_source_root(test));
        assert_eq!(sockets.len(), 1, "{sockets:?}");
        // Off the test's thread: the agent's answer comes through this runtime's session.
        let socket = sockets[0].clone();
        let listed = tokio::task::spawn_blocking(move || {
            Command::new("ssh-add")
                .arg("-l")
                .env("SSH_AUTH_SOCK", socket)
                .output()
        });
        tokio::time::timeout(Duration::from_secs(30), listed)
            .await
            .expect("ssh-add answers")
            .unwrap()
            .unwrap()
    };
    let (built, listed) = tokio::join!(building, listing);
    built.unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains(&agent.comment),
        "ssh-add -l through the step's socket: {listed}"
    );
    // The socket is gone with the step, and the image has neither it nor its mount point.
    assert!(step_sockets(&TestEnv::get().mount_source_root(test)).is_empty());
    let left = run_in_image(image, &["sh", "-c", "ls -A /run/buildkit 2>&1; echo end"]);
    assert!(!left.contains("ssh_agent"), "{left}");
    daemon.stop().await;
}

#[tokio::test]
async fn the_socket_s_mode_and_owner_and_the_cache_key_without_the_agent() {
    let daemon = TestDaemon::start("ssh-forward-cache").await;
    let first = Agent::start("first-key");
    let dir = context(
        "ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh,mode=0640,uid=1000 sh -c 'stat -c \"socket %a %u\" \"$SSH_AUTH_SOCK\"; echo $SSH_AUTH_SOCK'\n",
    );
    let (built, updates) = run_build(&daemon, request(dir.path(), Some(&first), None)).await;
    built.unwrap();
    let log = logs(&updates);
    assert!(log.contains("socket 640 1000"), "{log}");
    assert!(log.contains("/run/buildkit/ssh_agent.0"), "{log}");
    // Another agent with another key: the same step, cached.
    let second = Agent::start("second-key");
    let (built, updates) = run_build(&daemon, request(dir.path(), Some(&second), None)).await;
    built.unwrap();
    let cached = updates
        .iter()
        .flat_map(|u| &u.vertexes)
        .any(|v| v.name.contains("RUN --mount=type=ssh") && v.cached);
    assert!(cached, "the step was not cached with another agent");
    daemon.stop().await;
}

#[tokio::test]
async fn a_required_agent_not_forwarded_fails_and_an_optional_one_is_skipped() {
    let daemon = TestDaemon::start("ssh-forward-missing").await;
    let required = context("ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh,required=true true\n");
    let error = run_build(&daemon, request(required.path(), None, None))
        .await
        .0
        .unwrap_err();
    assert!(
        error.contains("no SSH key \"default\" forwarded from the client"),
        "{error}"
    );
    let optional = context(
        "ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh sh -c 'test ! -e \"$SSH_AUTH_SOCK\" && echo no agent here'\n",
    );
    let (built, updates) = run_build(&daemon, request(optional.path(), None, None)).await;
    built.unwrap();
    assert!(logs(&updates).contains("no agent here"));
    daemon.stop().await;
}

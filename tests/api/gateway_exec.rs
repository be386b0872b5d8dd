//! Interactive gateway containers (LLBBridge.NewContainer, ExecProcess, ReleaseContainer) as a
//! client-side frontend drives them (`buildx debug`, `buildctl`'s frontend client): a container
//! on a solved result, processes with stdin, output, a terminal and signals, and no containerd
//! container, task, snapshot or mount left once the build ends.

use std::path::Path;

use nodekit::session::{ClientSession, SessionServices};
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_client::LlbBridgeClient;
use nodekit_proto::moby::buildkit::v1::frontend::{
    self as gw, exec_message::Input, result::Result as GwResult, ExecMessage, FdMessage,
    InitMessage, NewContainerRequest, PingRequest, ReleaseContainerRequest, ResizeMessage,
    ReturnRequest, SignalMessage,
};
use nodekit_proto::moby::buildkit::v1::SolveRequest;
use nodekit_proto::pb;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};
use nodekitd::solver::entitlements::Entitlements;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::helpers::{busybox, definition, with_build};

/// What a process sent back.
#[derive(Debug, Default)]
struct Ran {
    stdout: String,
    stderr: String,
    eofs: Vec<u32>,
    exit: Option<u32>,
    /// Message kinds in order ("started", "file", "eof", "exit", "done").
    order: Vec<&'static str>,
}

struct Frontend {
    bridge: LlbBridgeClient<Channel>,
    build: String,
    /// The streams of processes left running (dropping them would end the processes).
    running: Vec<Box<dyn std::any::Any + Send>>,
}

impl Frontend {
    /// Solves busybox within the build; returns its result id.
    async fn solve_busybox(&mut self) -> String {
        let solve = gw::SolveRequest {
            definition: Some(definition(&busybox())),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        };
        let solved = self.bridge.solve(with_build(&self.build, solve)).await;
        let Some(GwResult::Ref(reference)) =
            solved.unwrap().into_inner().result.and_then(|r| r.result)
        else {
            panic!("solve returned no ref");
        };
        reference.id
    }

    async fn new_container(&mut self, id: &str, rootfs: &str) -> Result<(), tonic::Status> {
        let root = pb::Mount {
            dest: "/".into(),
            result_id: rootfs.into(),
            mount_type: pb::MountType::Bind as i32,
            ..Default::default()
        };
        let tmp = pb::Mount {
            dest: "/scratch".into(),
            mount_type: pb::MountType::Tmpfs as i32,
            ..Default::default()
        };
        let secret = pb::Mount {
            dest: "/run/secrets/token".into(),
            mount_type: pb::MountType::Secret as i32,
            secret_opt: Some(pb::SecretOpt {
                id: "token".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = NewContainerRequest {
            container_id: id.into(),
            mounts: vec![root, tmp, secret],
            hostname: "gwctr".into(),
            extra_hosts: vec![pb::HostIp {
                host: "extra.test".into(),
                ip: "10.1.2.3".into(),
            }],
            ..Default::default()
        };
        self.bridge
            .new_container(with_build(&self.build, request))
            .await
            .map(|_| ())
    }

    async fn release(&mut self, id: &str) -> Result<(), tonic::Status> {
        let request = ReleaseContainerRequest {
            container_id: id.into(),
        };
        self.bridge
            .release_container(with_build(&self.build, request))
            .await
            .map(|_| ())
    }

    /// The error that starting process `pid` ends in.
    async fn start_error(&mut self, pid: &str, init: InitMessage) -> tonic::Status {
        let first = ExecMessage {
            process_id: pid.to_string(),
            input: Some(Input::Init(init)),
        };
        let (sender, receiver) = mpsc::channel(1);
        sender.send(first).await.unwrap();
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let mut replies = self
            .bridge
            .exec_process(with_build(&self.build, stream))
            .await
            .unwrap()
            .into_inner();
        let reply = replies.message().await;
        drop(sender);
        reply.expect_err("the process must not start")
    }

    /// Starts process `pid`; once it has started sends `then`, and reads until Done (or until
    /// Started only, when `wait` is false: the process is left running).
    async fn run(&mut self, pid: &str, init: InitMessage, then: Vec<Input>, wait: bool) -> Ran {
        let (sender, receiver) = mpsc::channel(16);
        let message = |input| ExecMessage {
            process_id: pid.to_string(),
            input: Some(input),
        };
        sender.send(message(Input::Init(init))).await.unwrap();
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let mut replies = self
            .bridge
            .exec_process(with_build(&self.build, stream))
            .await
            .unwrap()
            .into_inner();
        let mut ran = Ran::default();
        let first = replies.message().await.unwrap().unwrap();
        assert!(matches!(first.input, Some(Input::Started(_))), "{first:?}");
        ran.order.push("started");
        if !wait {
            self.running.push(Box::new((sender, replies)));
            return ran;
        }
        for input in then {
            sender.send(message(input)).await.unwrap();
        }
        while let Some(reply) = replies.message().await.unwrap() {
            assert_eq!(reply.process_id, pid);
            match reply.input.unwrap() {
                Input::File(file) if file.eof => {
                    ran.eofs.push(file.fd);
                    ran.order.push("eof");
                }
                Input::File(file) => {
                    let text = String::from_utf8_lossy(&file.data).into_owned();
                    match file.fd {
                        1 => ran.stdout.push_str(&text),
                        _ => ran.stderr.push_str(&text),
                    }
                    ran.order.push("file");
                }
                Input::Exit(exit) => {
                    ran.exit = Some(exit.code);
                    ran.order.push("exit");
                }
                Input::Done(_) => {
                    ran.order.push("done");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        ran
    }
}

fn init(container: &str, args: &[&str], fds: &[u32], tty: bool) -> InitMessage {
    InitMessage {
        container_id: container.into(),
        meta: Some(pb::Meta {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec!["GREETING=hi".into()],
            cwd: "/scratch".into(),
            ..Default::default()
        }),
        fds: fds.to_vec(),
        tty,
        ..Default::default()
    }
}

fn stdin(data: &str, eof: bool) -> Input {
    Input::File(FdMessage {
        fd: 0,
        eof,
        data: data.as_bytes().to_vec(),
    })
}

/// The step directories of `test`'s daemon: one per gateway container while it exists.
fn container_dirs(test: &str) -> Vec<String> {
    let root = TestEnv::get().mount_source_root(test);
    std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("nodekit-ctr-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The snapshot key of containerd container `id` (None: no such container).
fn snapshot_key(id: &str) -> Option<String> {
    let output = ctr(TestEnv::get(), &["containers", "info", id]);
    if !output.status.success() {
        return None;
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    info["SnapshotKey"].as_str().map(String::from)
}

fn mounted_under(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_string_lossy();
    mounts.lines().any(|line| line.contains(path.as_ref()))
}

/// A session offering the secret `token` the containers mount.
fn secret_services() -> SessionServices {
    SessionServices {
        secrets: [("token".to_string(), b"s3cr3t".to_vec())].into(),
        ..Default::default()
    }
}

/// Runs `frontend` as the build `build` of a daemon for `test`; returns what it returned.
async fn with_gateway_build<F, Fut, T>(daemon: &TestDaemon, build: &str, frontend: F) -> T
where
    F: FnOnce(Frontend) -> Fut,
    Fut: std::future::Future<Output = (Frontend, T)>,
{
    with_entitled_gateway_build(daemon, build, &[], frontend).await
}

/// [`with_gateway_build`] of a build asking for `entitlements`.
async fn with_entitled_gateway_build<F, Fut, T>(
    daemon: &TestDaemon,
    build: &str,
    entitlements: &[&str],
    frontend: F,
) -> T
where
    F: FnOnce(Frontend) -> Fut,
    Fut: std::future::Future<Output = (Frontend, T)>,
{
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), secret_services())
        .await
        .unwrap();
    let solve = SolveRequest {
        r#ref: build.into(),
        session: session.id.clone(),
        entitlements: entitlements.iter().map(|e| e.to_string()).collect(),
        ..Default::default()
    };
    let mut control = ControlClient::new(channel.clone());
    let client = Frontend {
        bridge: LlbBridgeClient::new(channel),
        build: build.to_string(),
        running: Vec::new(),
    };
    let run = async {
        let (mut client, value) = frontend(client).await;
        let returned = ReturnRequest {
            result: Some(gw::Result::default()),
            error: None,
        };
        client
            .bridge
            .r#return(with_build(build, returned))
            .await
            .unwrap();
        value
    };
    let (solved, value) = tokio::join!(control.solve(solve), run);
    solved.unwrap();
    value
}

#[tokio::test]
async fn a_frontend_runs_processes_in_a_gateway_container() {
    let test = "gateway-exec";
    let daemon = TestDaemon::start(test).await;
    let build = "gateway-exec-build-1";
    let (stdin_run, second, tty, signalled, env_run, late_user) =
        with_gateway_build(&daemon, build, |mut client| async move {
            let pong = client
                .bridge
                .ping(with_build(build, PingRequest {}))
                .await
                .unwrap()
                .into_inner();
            for cap in [
                "gateway.exec",
                "gateway.exec.extrahosts",
                "gateway.exec.signals",
            ] {
                assert!(pong.frontend_api_caps.iter().any(|c| c.id == cap), "{cap}");
            }
            let rootfs = client.solve_busybox().await;
            client.new_container("c1", &rootfs).await.unwrap();
            let duplicate = client.new_container("c1", &rootfs).await.unwrap_err();
            assert_eq!(duplicate.code(), tonic::Code::AlreadyExists);

            // The first process is the container's task; the others are exec'd into it.
            let script = "read line; echo got:$line; echo err >&2; exit 7";
            let stdin_run = client
                .run(
                    "p1",
                    init("c1", &["sh", "-c", script], &[0, 1, 2], false),
                    vec![stdin("hello\n", true)],
                    true,
                )
                .await;
            client.new_container("c2", &rootfs).await.unwrap();
            let init_c2 = init("c2", &["sleep", "100"], &[], false);
            client.run("c2-init", init_c2, vec![], false).await;
            let second = client
                .run(
                    "c2-second",
                    init(
                        "c2",
                        &["sh", "-c", "pwd; hostname; grep extra.test /etc/hosts"],
                        &[1],
                        false,
                    ),
                    vec![],
                    true,
                )
                .await;
            let resize = Input::Resize(ResizeMessage { rows: 41, cols: 97 });
            let tty = client
                .run(
                    "c2-tty",
                    init("c2", &["sh", "-c", "read x; stty size"], &[0, 1, 2], true),
                    vec![resize, stdin("go\n", false)],
                    true,
                )
                .await;
            let term = Input::Signal(SignalMessage {
                name: "TERM".into(),
            });
            let signalled = client
                .run(
                    "c2-sleep",
                    init("c2", &["sleep", "100"], &[1, 2], false),
                    vec![term],
                    true,
                )
                .await;
            let adduser = init(
                "c2",
                &[
                    "sh",
                    "-c",
                    "echo 'late:x:4242:4242::/:/bin/sh' >> /etc/passwd",
                ],
                &[],
                false,
            );
            client.run("c2-adduser", adduser, vec![], true).await;
            let mut as_late = init("c2", &["id", "-u"], &[1], false);
            as_late.meta.as_mut().unwrap().user = "late".into();
            let late_user = client.run("c2-late", as_late, vec![], true).await;
            let mut env_init = init(
                "c2",
                &[
                    "sh",
                    "-c",
                    "echo $GREETING $TOKEN $(cat /run/secrets/token) $PATH",
                ],
                &[1],
                false,
            );
            env_init.secretenv = vec![pb::SecretEnv {
                id: "token".into(),
                name: "TOKEN".into(),
                optional: false,
            }];
            let env_run = client.run("c2-env", env_init, vec![], true).await;
            client.release("c1").await.unwrap();
            let unknown = client.release("c1").await.unwrap_err();
            assert_eq!(unknown.code(), tonic::Code::NotFound);
            client.release("c2").await.unwrap();
            (
                client,
                (stdin_run, second, tty, signalled, env_run, late_user),
            )
        })
        .await;

    assert_eq!(stdin_run.stdout, "got:hello\n");
    assert_eq!(stdin_run.stderr, "err\n");
    assert_eq!(stdin_run.exit, Some(7));
    let mut eofs = stdin_run.eofs.clone();
    eofs.sort();
    assert_eq!(eofs, [1, 2]);
    assert_eq!(stdin_run.order.last(), Some(&"done"));
    assert_eq!(
        &stdin_run.order[stdin_run.order.len() - 4..],
        ["eof", "eof", "exit", "done"]
    );

    assert_eq!(second.stdout, "/scratch\ngwctr\n10.1.2.3\textra.test\n");
    assert_eq!(second.exit, Some(0));
    assert!(tty.stdout.contains("41 97"), "{:?}", tty.stdout);
    assert_eq!(tty.exit, Some(0));
    assert_eq!(signalled.exit, Some(128 + 15), "{signalled:?}");
    assert_eq!(
        late_user.stdout, "4242\n",
        "a user added by an earlier process"
    );
    assert!(
        env_run
            .stdout
            .starts_with("hi s3cr3t s3cr3t /usr/local/sbin:"),
        "{env_run:?}"
    );
    assert!(
        container_dirs(test).is_empty(),
        "released containers leave no files"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_builds_containers_go_when_it_ends() {
    let test = "gateway-exec-end";
    let daemon = TestDaemon::start(test).await;
    let build = "gateway-exec-build-2";
    let (ids, keys) = with_gateway_build(&daemon, build, |mut client| async move {
        let rootfs = client.solve_busybox().await;
        client.new_container("left", &rootfs).await.unwrap();
        client.new_container("unused", &rootfs).await.unwrap();
        let sleep = init("left", &["sleep", "100"], &[1, 2], false);
        client.run("left-1", sleep, vec![], false).await;
        let ids = container_dirs(test);
        assert_eq!(ids.len(), 2, "{ids:?}");
        let keys: Vec<String> = ids.iter().filter_map(|id| snapshot_key(id)).collect();
        assert_eq!(
            keys.len(),
            1,
            "only the started container exists in containerd"
        );
        (client, (ids, keys))
    })
    .await;

    let env = TestEnv::get();
    for id in &ids {
        assert_eq!(snapshot_key(id), None, "container {id} is deleted");
    }
    let tasks = ctr(env, &["tasks", "ls"]);
    let tasks = String::from_utf8_lossy(&tasks.stdout);
    assert!(ids.iter().all(|id| !tasks.contains(id.as_str())), "{tasks}");
    for key in &keys {
        let info = ctr(env, &["snapshots", "info", key]);
        assert!(!info.status.success(), "snapshot {key} is removed");
    }
    assert!(container_dirs(test).is_empty());
    assert!(!mounted_under(&env.mount_source_root(test)));
    assert!(!mounted_under(&daemon.root));
    daemon.stop().await;
}

#[tokio::test]
async fn what_gateway_containers_do_not_support_is_refused_by_name() {
    let daemon = TestDaemon::start("gateway-exec-refusals").await;
    let build = "gateway-exec-build-3";
    with_gateway_build(&daemon, build, |mut client| async move {
        let rootfs = client.solve_busybox().await;
        let ssh = NewContainerRequest {
            container_id: "ssh".into(),
            mounts: vec![
                pb::Mount {
                    dest: "/".into(),
                    result_id: rootfs.clone(),
                    mount_type: pb::MountType::Bind as i32,
                    ..Default::default()
                },
                pb::Mount {
                    dest: "/run/ssh".into(),
                    mount_type: pb::MountType::Ssh as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let refused = client
            .bridge
            .new_container(with_build(build, ssh))
            .await
            .unwrap_err();
        // SSH mounts are forwarded as in a step: this client forwards no agent.
        assert!(
            refused
                .message()
                .contains("no SSH key \"default\" forwarded from the client"),
            "{refused:?}"
        );
        let unknown = client
            .start_error("p", init("nope", &["true"], &[], false))
            .await;
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");

        client.new_container("c", &rootfs).await.unwrap();
        let fd3 = client
            .start_error("p", init("c", &["true"], &[1, 3], false))
            .await;
        assert!(fd3.message().contains("fd 3"), "{fd3:?}");
        let mut insecure = init("c", &["true"], &[1], false);
        insecure.security = pb::SecurityMode::Insecure as i32;
        let refused = client.start_error("p", insecure).await;
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
        assert!(
            refused
                .message()
                .contains("INSECURE: security.insecure is not allowed"),
            "{refused:?}"
        );

        // The first process is the container's: once it has exited, nothing can exec into it.
        let done = client
            .run("first", init("c", &["true"], &[1], false), vec![], true)
            .await;
        assert_eq!(done.exit, Some(0));
        let late = client
            .start_error("late", init("c", &["true"], &[1], false))
            .await;
        assert!(late.message().contains("first process"), "{late:?}");
        (client, ())
    })
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_process_whose_client_goes_away_is_killed() {
    let daemon = TestDaemon::start("gateway-exec-gone").await;
    let build = "gateway-exec-build-4";
    let ps = with_gateway_build(&daemon, build, |mut client| async move {
        let rootfs = client.solve_busybox().await;
        client.new_container("c", &rootfs).await.unwrap();
        client
            .run(
                "init",
                init("c", &["sleep", "300"], &[], false),
                vec![],
                false,
            )
            .await;
        let orphan = init("c", &["sleep", "271"], &[1], false);
        client.run("orphan", orphan, vec![], false).await;
        // The client drops the orphan's stream (its RPC is cancelled).
        drop(client.running.pop());
        let mut ps = String::new();
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let listing = init("c", &["ps", "-o", "args"], &[1], false);
            ps = client.run("ps", listing, vec![], true).await.stdout;
            if !ps.contains("sleep 271") {
                break;
            }
        }
        (client, ps)
    })
    .await;
    assert!(ps.contains("sleep 300"), "{ps}");
    assert!(!ps.contains("sleep 271"), "{ps}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_cancelled_build_releases_its_containers() {
    let test = "gateway-exec-cancel";
    let daemon = TestDaemon::start(test).await;
    let build = "gateway-exec-build-5";
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), secret_services())
        .await
        .unwrap();
    let solve = SolveRequest {
        r#ref: build.into(),
        session: session.id.clone(),
        ..Default::default()
    };
    let mut control = ControlClient::new(channel.clone());
    let mut client = Frontend {
        bridge: LlbBridgeClient::new(channel),
        build: build.to_string(),
        running: Vec::new(),
    };
    let frontend = async {
        let rootfs = client.solve_busybox().await;
        client.new_container("c", &rootfs).await.unwrap();
        let sleep = init("c", &["sleep", "300"], &[1], false);
        client.run("sleep", sleep, vec![], false).await;
    };
    // The client gives up on the build (its Control.Solve is cancelled) once the process runs.
    tokio::select! {
        _ = control.solve(solve) => panic!("the build cannot end before it returns"),
        _ = frontend => {}
    }
    let ids = container_dirs(test);
    assert_eq!(ids.len(), 1);
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if snapshot_key(&ids[0]).is_none() && container_dirs(test).is_empty() {
            gone = true;
            break;
        }
    }
    assert!(gone, "container {} outlived its cancelled build", ids[0]);
    drop(client);
    daemon.stop().await;
}

/// Security mode INSECURE, with the build's `security.insecure` entitlement (the daemon allows
/// it, the client asks), makes the first process a privileged container's, as
/// `RUN --security=insecure`: every capability, where a default process has a few.
#[tokio::test]
async fn an_insecure_process_runs_privileged_when_the_build_is_entitled() {
    let daemon = TestDaemon::start_with("gateway-exec-insecure", |config| {
        config.entitlements = Entitlements::parse(&["security.insecure".to_string()]).unwrap();
    })
    .await;
    let build = "gateway-exec-build-insecure";
    let caps = ["sh", "-c", "grep CapEff /proc/self/status"];
    let (plain, privileged) = with_entitled_gateway_build(
        &daemon,
        build,
        &["security.insecure"],
        |mut client| async move {
            let rootfs = client.solve_busybox().await;
            client.new_container("plain", &rootfs).await.unwrap();
            let plain = client
                .run("p1", init("plain", &caps, &[1], false), vec![], true)
                .await;
            client.new_container("privileged", &rootfs).await.unwrap();
            let mut insecure = init("privileged", &caps, &[1], false);
            insecure.security = pb::SecurityMode::Insecure as i32;
            let privileged = client.run("p2", insecure, vec![], true).await;
            (client, (plain, privileged))
        },
    )
    .await;
    assert_eq!(privileged.exit, Some(0), "{privileged:?}");
    let effective = |ran: &Ran| {
        let hex = ran
            .stdout
            .trim()
            .trim_start_matches("CapEff:")
            .trim()
            .to_string();
        u64::from_str_radix(&hex, 16).unwrap()
    };
    let all = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("CapBnd:")
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        })
        .unwrap();
    assert_eq!(effective(&privileged), all, "{privileged:?}");
    assert!(effective(&plain) < all, "{plain:?}");
    daemon.stop().await;
}

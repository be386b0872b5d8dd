//! The nodekitd binary: it listens, names an unreachable containerd plainly and keeps retrying,
//! and reports itself serving once containerd answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A running nodekitd whose stderr lines arrive on a channel; killed (by PID) on drop.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
    dir: PathBuf,
}

impl Daemon {
    fn start(test: &str, containerd: &str) -> Daemon {
        Daemon::start_with(test, containerd, &[])
    }

    /// As [`Daemon::start`], with more arguments (they win over what comes before).
    fn start_with(test: &str, containerd: &str, args: &[&str]) -> Daemon {
        Daemon::start_logging(test, containerd, args, "info")
    }

    /// As [`Daemon::start_with`], logging what `rust_log` (RUST_LOG) enables.
    fn start_logging(test: &str, containerd: &str, args: &[&str], rust_log: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("nodekitd-{test}-{}", std::process::id()));
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_nodekitd"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--addr")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--addr")
            .arg(format!("unix://{}", dir.join("nodekitd.sock").display()))
            .arg("--containerd-worker-addr")
            .arg(containerd)
            .args(args)
            .env("RUST_LOG", rust_log)
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("nodekitd starts");
        let (sender, lines) = mpsc::channel();
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stdout.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        Daemon {
            child,
            lines,
            port,
            dir,
        }
    }

    /// The first log line containing `needle`, waiting up to `limit`.
    fn wait_for_line(&self, needle: &str, limit: Duration) -> Option<String> {
        self.lines_until(needle, limit).pop()
    }

    /// Every log line up to the first containing `needle` (the last one), or none if none comes
    /// within `limit`.
    fn lines_until(&self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => {
                    seen.push(line);
                    return seen;
                }
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Vec::new()
    }

    async fn health(&self) -> ServingStatus {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port))
                .expect("endpoint")
                .connect()
                .await
                .expect("connect");
        let mut client = HealthClient::new(channel);
        let status = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health check");
        status.into_inner().status()
    }
}

/// Stopped as SIGTERM stops it, so it releases what it holds in the shared test containerd (a
/// kill right after a build would leave the build's leases behind for later tests to find);
/// killed if it has not ended within 10 s.
impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test containerd's socket from tests/env/up.sh.
fn test_containerd() -> String {
    if let Ok(socket) = std::env::var("NODEKIT_TEST_CONTAINERD_SOCK") {
        return socket;
    }
    let state =
        std::env::var("NODEKIT_TESTENV").unwrap_or_else(|_| "/var/tmp/nodekit-testenv".into());
    let env = std::fs::read_to_string(format!("{state}/env")).expect("tests/env/up.sh has run");
    env.lines()
        .find_map(|l| l.strip_prefix("export NODEKIT_TEST_CONTAINERD_SOCK="))
        .expect("socket in env file")
        .to_string()
}

#[tokio::test]
async fn an_unreachable_containerd_is_named_and_retried() {
    let missing = "/run/nodekit-test/absent/containerd.sock";
    let mut daemon = Daemon::start("unreachable", missing);
    let line = daemon
        .wait_for_line("containerd is unreachable", Duration::from_secs(5))
        .expect("no clear error within 5 s");
    assert!(line.contains(missing), "{line}");
    // It retries rather than exiting, and answers health checks meanwhile.
    assert!(
        daemon
            .wait_for_line("containerd is unreachable", Duration::from_secs(5))
            .is_some(),
        "no retry"
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "nodekitd exited"
    );
    assert_eq!(daemon.health().await, ServingStatus::NotServing);
}

#[tokio::test]
async fn with_containerd_it_serves_on_tcp_and_unix() {
    let daemon = Daemon::start("ready", &test_containerd());
    let line = daemon.wait_for_line("containerd worker ready", Duration::from_secs(10));
    assert!(
        line.is_some_and(|l| l.contains("k8s.io")),
        "worker never became ready"
    );
    assert_eq!(daemon.health().await, ServingStatus::Serving);
    assert!(std::os::unix::net::UnixStream::connect(daemon.dir.join("nodekitd.sock")).is_ok());
}

#[test]
fn bad_flags_and_config_files_fail_with_a_clear_message() {
    let bin = env!("CARGO_BIN_EXE_nodekitd");
    let output = Command::new(bin)
        .args(["--addr", "http://nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("http://nope"));
    let (config, stderr) = refused_config("bad", "[worker.containerd]\nnamespace = 5\n");
    assert!(
        stderr.contains(&config.display().to_string()) && stderr.contains("line 2"),
        "{stderr}"
    );
}

/// Starts nodekitd with a config file of `text`, which must make it exit 2; the file's path
/// and what nodekitd said.
fn refused_config(name: &str, text: &str) -> (PathBuf, String) {
    let config = std::env::temp_dir().join(format!("nodekitd-{name}-{}.toml", std::process::id()));
    std::fs::write(&config, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nodekitd"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    std::fs::remove_file(&config).unwrap();
    assert_eq!(output.status.code(), Some(2));
    (config, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_config_key_nodekitd_would_not_honour_stops_the_start_with_its_line() {
    let (config, stderr) = refused_config("oci", "debug = true\n[worker.oci]\nenabled = true\n");
    assert!(
        stderr.contains(&format!("{}:line 3: worker.oci.enabled", config.display())),
        "{stderr}"
    );
}

/// The install config loads as is (flags move its paths into the test's own), with no word
/// about any of its keys; a key nodekit ignores is logged with its file and line.
#[test]
fn the_install_config_loads_and_ignored_keys_are_logged_with_their_line() {
    let install = concat!(env!("CARGO_MANIFEST_DIR"), "/../install/nodekitd.toml");
    let extra = std::env::temp_dir().join(format!("nodekitd-extra-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(install).unwrap() + "\n[otel]\nsocketPath = \"/x\"\n";
    std::fs::write(&extra, &text).unwrap();
    let otel_line = text.lines().position(|l| l == "[otel]").unwrap() + 1;
    for (config, expected_warning) in [
        (install.to_string(), None),
        (extra.display().to_string(), Some(otel_line)),
    ] {
        let daemon =
            Daemon::start_with("install-config", &test_containerd(), &["--config", &config]);
        let lines = daemon.lines_until("containerd worker ready", Duration::from_secs(10));
        assert!(!lines.is_empty(), "{config}: the worker never became ready");
        let warnings: Vec<_> = lines.iter().filter(|l| l.contains(&config)).collect();
        match expected_warning {
            None => assert!(warnings.is_empty(), "{warnings:?}"),
            Some(line) => assert!(
                warnings.len() == 1
                    && warnings[0].contains(&format!("{config}:line {line}: otel: ignored")),
                "{warnings:?}"
            ),
        }
    }
    std::fs::remove_file(&extra).unwrap();
}

/// `--log-format json`: one JSON object per line, with timestamp, level and message.
#[test]
fn json_logs_are_one_object_per_line() {
    let daemon = Daemon::start_with("json-logs", &test_containerd(), &["--log-format", "json"]);
    let lines = daemon.lines_until("containerd worker ready", Duration::from_secs(10));
    assert!(!lines.is_empty(), "the worker never became ready");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
        assert!(object["fields"]["message"].is_string(), "{line}");
    }
}

/// `--log-format json` during a build: a line logged while a step runs names the step in its
/// span list (vertex digest as BuildKit shows it, op kind) inside the build's (its reference).
#[tokio::test]
async fn json_logs_of_a_step_carry_its_vertex() {
    use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
    use nodekit_proto::moby::buildkit::v1::SolveRequest;

    let daemon = Daemon::start_logging(
        "json-step",
        &test_containerd(),
        &["--log-format", "json"],
        "info,nodekitd=debug",
    );
    let ready = daemon.lines_until("containerd worker ready", Duration::from_secs(10));
    assert!(!ready.is_empty(), "the worker never became ready");
    let image = std::env::var("NODEKIT_TEST_LOCAL_IMAGE")
        .unwrap_or_else(|_| "nodekit.test/busybox:1".into());
    let state = nodekit_llb_builder::image(&image)
        .run(["sh", "-c", "echo logged > /json-step"])
        .root();
    let definition = nodekit_llb_builder::marshal(&state).unwrap();
    let digests: Vec<String> = definition
        .def
        .iter()
        .map(|op| nodekit_llb::digest_of(op))
        .collect();
    let build_ref = format!("json-step-{}", std::process::id());
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", daemon.port))
            .unwrap()
            .connect()
            .await
            .unwrap();
    ControlClient::new(channel)
        .solve(SolveRequest {
            r#ref: build_ref.clone(),
            definition: Some(definition),
            ..Default::default()
        })
        .await
        .expect("the build succeeds");

    let deadline = Instant::now() + Duration::from_secs(10);
    let step_line = loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("a \"step done\" line of the exec step");
        let line = daemon.lines.recv_timeout(left).expect("more log lines");
        let object: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if object["fields"]["message"] == "step done" && object["span"]["op"] == "exec" {
            break object;
        }
    };
    let spans = step_line["spans"].as_array().expect("a span list");
    assert_eq!(spans[0]["name"], "build", "{step_line}");
    assert_eq!(spans[0]["build_ref"], build_ref.as_str(), "{step_line}");
    let step = spans.last().unwrap();
    assert_eq!(step["name"], "step", "{step_line}");
    let vertex = step["vertex"].as_str().unwrap_or_default();
    assert!(
        vertex.starts_with("sha256:") && digests.iter().any(|d| d == vertex),
        "{vertex} is not one of the definition's ops {digests:?}: {step_line}"
    );
    assert_eq!(step_line["span"]["vertex"], vertex, "{step_line}");
}

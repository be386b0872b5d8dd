//! The DaemonSet's pod, run as a kubelet would run it: nodekit builds its own image
//! (install/image.sh, install/Dockerfile), then the container's image, command, args, env,
//! mounts (with their propagation) and security context are read from the rendered manifest and
//! started with `ctr run` on the test containerd, privileged and on the host's network. A client
//! with the certificate install/kubernetes/certs.sh made builds through it, and the image lands
//! in the host's store.
//!
//! What differs from a node, and why: containerd's socket and root and nodekit's host paths are
//! the test's own directories (mounted at their own paths, as the manifest mounts its host paths,
//! and written into the ConfigMap's nodekitd.toml in their place), and the listeners are on
//! loopback ports of their own instead of 0.0.0.0:2375 and :9375 (no pod network here).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use nodekit_test_support::{ctr, free_loopback_addr, http_get, run_in_image, TestDaemon, TestEnv};
use serde_json::Value;

use crate::kube::{
    config_toml, container, documents, find, make_certs, render, strings, succeeded, volume,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_daemonsets_pod_runs_the_image_nodekit_built_and_builds_over_mutual_tls() {
    let docs = documents(&render("base"));
    let daemonset = find(&docs, "DaemonSet", Some("nodekitd")).clone();
    let image = container(&daemonset)["image"].as_str().unwrap().to_string();

    let builder = TestDaemon::start("install-image").await;
    let addr = builder.addr.clone();
    let built = tokio::task::spawn_blocking(move || build_nodekit_image(&addr, &image));
    built.await.unwrap();
    builder.stop().await;

    let dir = PodDir::new();
    make_certs(&dir.path.join("certs"));
    let pod = Pod::start(&daemonset, &config_toml(&docs), &dir);
    pod.wait_ready(Duration::from_secs(60));

    let name = format!("nodekit.test/built-in-pod:{}", std::process::id());
    let refused = pod.client_build(&dir, &name, false);
    assert!(
        !refused.status.success(),
        "a client without a certificate is refused"
    );
    // What the client sees depends on timing (the alert, or a broken pipe); nodekitd logs why.
    pod.wait_for_log("peer sent no certificates", Duration::from_secs(5));
    let built = pod.client_build(&dir, &name, true);
    assert!(
        built.status.success(),
        "build through the pod: {}\n{}",
        String::from_utf8_lossy(&built.stderr),
        pod.log()
    );
    assert_eq!(
        run_in_image(&name, None, &["cat", "/built-in-pod"]),
        "pod\n"
    );
    eprintln!("pod nodekitd after a build: {}", pod.resident_memory());

    let log = pod.stop(Duration::from_secs(30));
    // The ConfigMap asks for JSON logs: one object per line.
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("JSON: {line}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "stopped"),
        "nodekitd stopped on SIGTERM: {log}"
    );
    assert!(
        dir.mounts_left().is_empty(),
        "nodekitd unmounted what it mounted: {:?}",
        dir.mounts_left()
    );
    let _ = ctr(TestEnv::get(), &["images", "rm", &name]);
}

/// install/image.sh through the test nodekitd at `addr`, with the static nodekitd
/// tests/run.sh built and the nodekit client as buildctl, the image named `image`.
fn build_nodekit_image(addr: &str, image: &str) {
    let target = target_dir();
    let static_binary = target.join("x86_64-unknown-linux-gnu/debug/nodekitd");
    assert!(
        static_binary.exists(),
        "{} is missing: `bash install/image.sh --static-only --profile dev` builds it (tests/run.sh does)",
        static_binary.display()
    );
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../install/image.sh"))
        .args(["--addr", addr, "--name", image, "--profile", "dev"])
        .env("BUILDCTL", target.join("debug/nodekit"))
        .env("NODEKITD_BINARY", &static_binary)
        // One emulator is enough to show they are staged; all nine would add 90 MB.
        .env("NODEKIT_IMAGE_EMULATORS", "aarch64")
        .output()
        .unwrap();
    succeeded(output, "install/image.sh");
}

/// target/, above the test binary's target/<profile>/deps.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// The test's stand-ins for the node's paths; removed at the end, with the shared bind mounts
/// made for Bidirectional propagation.
struct PodDir {
    path: PathBuf,
    shared_mounts: std::cell::RefCell<Vec<PathBuf>>,
}

impl PodDir {
    fn new() -> PodDir {
        let path = PathBuf::from(format!("/var/tmp/nodekit-pod-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        PodDir {
            path,
            shared_mounts: Default::default(),
        }
    }

    /// `dir` as a shared mount point: what the kubelet needs of a Bidirectional host path.
    fn share(&self, dir: &Path) {
        for args in [
            vec!["--bind", dir.to_str().unwrap(), dir.to_str().unwrap()],
            vec!["--make-shared", dir.to_str().unwrap()],
        ] {
            let status = Command::new("mount").args(&args).status().unwrap();
            assert!(status.success(), "mount {args:?}");
        }
        self.shared_mounts.borrow_mut().push(dir.to_path_buf());
    }

    /// Mounts below the shared directories (other than themselves) that are still there.
    fn mounts_left(&self) -> Vec<String> {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let shared = self.shared_mounts.borrow();
        table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| {
                shared
                    .iter()
                    .any(|dir| Path::new(point).starts_with(dir) && Path::new(point) != dir)
            })
            .map(String::from)
            .collect()
    }
}

impl Drop for PodDir {
    fn drop(&mut self) {
        for dir in self.shared_mounts.borrow().iter().rev() {
            let _ = Command::new("umount").arg("-R").arg(dir).status();
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The DaemonSet's container, running under `ctr` from the OCI spec the kubelet's CRI would
/// give containerd.
struct Pod {
    id: String,
    grpc: SocketAddr,
    debug: SocketAddr,
    log: PathBuf,
    rootfs: PathBuf,
    stopped: bool,
}

impl Pod {
    fn start(daemonset: &Value, config: &str, dir: &PodDir) -> Pod {
        let env = TestEnv::get();
        let container = container(daemonset);
        let rootfs = dir.path.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let image = container["image"].as_str().unwrap();
        let mounted = ctr(
            env,
            &["images", "mount", "--rw", image, rootfs.to_str().unwrap()],
        );
        succeeded(mounted, "ctr images mount");
        // Made before its spec, so that its drop unmounts the rootfs if the spec fails; the
        // spec picks the listeners' ports.
        let mut pod = Pod {
            id: format!("nodekitd-pod-{}", std::process::id()),
            grpc: "127.0.0.1:0".parse().unwrap(),
            debug: "127.0.0.1:0".parse().unwrap(),
            log: dir.path.join("pod.log"),
            rootfs,
            stopped: false,
        };
        let spec = pod.spec(daemonset, config, dir);
        let spec_file = dir.path.join("config.json");
        std::fs::write(&spec_file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        let log_uri = format!("--log-uri=file://{}", pod.log.display());
        let output = ctr(
            env,
            &[
                "run",
                "-d",
                "--config",
                spec_file.to_str().unwrap(),
                &log_uri,
                &pod.id,
            ],
        );
        succeeded(output, "ctr run");
        pod
    }

    /// containerd's default spec made privileged, on the host's network, with the container's
    /// command, env and mounts, as the CRI plugin does for such a pod.
    fn spec(&mut self, daemonset: &Value, config: &str, dir: &PodDir) -> Value {
        let container = container(daemonset);
        assert_eq!(container["securityContext"]["privileged"], true);
        let defaults = ctr(TestEnv::get(), &["oci", "spec"]);
        let mut spec: Value = serde_json::from_slice(&defaults.stdout).unwrap();
        let mut args = strings(&container["command"]);
        args.extend(strings(&container["args"]));
        let mut env = vec![format!("PATH={}", nodekitd::worker::exec::DEFAULT_PATH)];
        for variable in container["env"].as_array().into_iter().flatten() {
            let value = variable["value"].as_str().unwrap_or("");
            env.push(format!("{}={value}", variable["name"].as_str().unwrap()));
        }
        let capabilities =
            serde_json::to_value(nodekitd::worker::exec::all_capabilities()).unwrap();
        spec["process"]["args"] = args.into();
        spec["process"]["env"] = env.into();
        spec["process"]["noNewPrivileges"] = false.into();
        for set in ["bounding", "effective", "permitted"] {
            spec["process"]["capabilities"][set] = capabilities.clone();
        }
        spec["root"] = serde_json::json!({ "path": self.rootfs, "readonly": false });
        let linux = &mut spec["linux"];
        linux["namespaces"] = serde_json::json!([
            { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
        ]);
        linux["maskedPaths"] = serde_json::json!([]);
        linux["readonlyPaths"] = serde_json::json!([]);
        linux["resources"]["devices"] = serde_json::json!([{ "allow": true, "access": "rwm" }]);
        let mut node = NodePaths::new(TestEnv::get(), dir);
        let mut config = config.to_string();
        (self.grpc, self.debug) = node.listen_on_loopback(container, &mut config);
        let mut bidirectional = false;
        let mounts = spec["mounts"].as_array_mut().unwrap();
        for mount in mounts.iter_mut().filter(|m| m["type"] == "sysfs") {
            mount["options"] = serde_json::json!(["nosuid", "noexec", "nodev", "rw"]);
        }
        for mount in container["volumeMounts"].as_array().unwrap() {
            let source = volume(daemonset, mount["name"].as_str().unwrap());
            bidirectional |= mount["mountPropagation"] == "Bidirectional";
            mounts.push(node.mount(mount, source, &mut config, dir));
        }
        node.write_config(&config);
        // What CRI sets when a mount is Bidirectional: without it, runc makes the root a
        // slave and mounts made in the pod never reach the host.
        spec["linux"]["rootfsPropagation"] =
            if bidirectional { "rshared" } else { "rslave" }.into();
        spec
    }
    /// As the readiness probe: until /readyz answers 200 (and /healthz does too).
    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if http_get(self.debug, "/readyz").0.contains(" 200 ") {
                assert!(http_get(self.debug, "/healthz").0.contains(" 200 "));
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the pod's nodekitd did not become ready: {}", self.log());
    }

    /// A Dockerfile build through the pod's tcp listener with the nodekit client, with the
    /// certificates certs.sh made (the client's own when `with_certificate`).
    fn client_build(&self, dir: &PodDir, name: &str, with_certificate: bool) -> Output {
        let env = TestEnv::get();
        let context = dir.path.join("context");
        std::fs::create_dir_all(&context).unwrap();
        // By name: the image's resolver (a static glibc's) reads the image's /etc/hosts.
        let base = env.registry_image.replacen("127.0.0.1", "localhost", 1);
        // A bind mount of a directory of the context: nodekitd mounts the context's snapshot
        // under local-mount-source-root and hands containerd a directory inside it, which the
        // host sees only through the Bidirectional mount of nodekit's root.
        std::fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM {base}\nRUN --mount=type=bind,source=files,target=/files cat /files/message > /built-in-pod\n"
            ),
        )
        .unwrap();
        std::fs::create_dir_all(context.join("files")).unwrap();
        std::fs::write(context.join("files/message"), "pod\n").unwrap();
        let certs = dir.path.join("certs");
        let mut command = Command::new(target_dir().join("debug/nodekit"));
        command
            .arg("--addr")
            .arg(format!("tcp://{}", self.grpc))
            .arg("--tlscacert")
            .arg(certs.join("ca.crt"));
        if with_certificate {
            command
                .arg("--tlscert")
                .arg(certs.join("client.crt"))
                .arg("--tlskey")
                .arg(certs.join("client.key"));
        }
        command
            .args(["build", "--frontend", "dockerfile.v0"])
            .arg(format!("--local=context={}", context.display()))
            .arg(format!("--local=dockerfile={}", context.display()))
            .arg(format!("--output=type=image,name={name}"))
            .output()
            .unwrap()
    }

    /// Waits up to `limit` for the pod's log to contain `needle`.
    fn wait_for_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "no {needle:?} in the pod's log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// VmRSS of the pod's nodekitd.
    fn resident_memory(&self) -> String {
        let tasks = ctr(TestEnv::get(), &["tasks", "ls"]);
        let listing = String::from_utf8_lossy(&tasks.stdout);
        let pid = listing
            .lines()
            .find(|l| l.starts_with(&self.id))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("0")
            .to_string();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("VmRSS: unknown")
            .to_string()
    }

    /// SIGTERM, as the kubelet stops a pod; waits up to `limit` for the task to end and
    /// returns the pod's log.
    fn stop(mut self, limit: Duration) -> String {
        self.stopped = true;
        let env = TestEnv::get();
        let _ = ctr(env, &["tasks", "kill", "-s", "SIGTERM", &self.id]);
        let start = Instant::now();
        while start.elapsed() < limit {
            let tasks = ctr(env, &["tasks", "ls"]);
            let running = String::from_utf8_lossy(&tasks.stdout)
                .lines()
                .any(|l| l.starts_with(&self.id) && l.contains("RUNNING"));
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = self.log();
        self.remove();
        log
    }

    fn remove(&self) {
        let env = TestEnv::get();
        let _ = ctr(env, &["tasks", "kill", "-s", "SIGKILL", &self.id]);
        let _ = ctr(env, &["tasks", "delete", "-f", &self.id]);
        let _ = ctr(env, &["containers", "delete", &self.id]);
        let _ = ctr(
            env,
            &["images", "unmount", "--rm", self.rootfs.to_str().unwrap()],
        );
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if !self.stopped {
            self.remove();
        }
    }
}

/// The node's paths in the manifest and the test's directories standing in for them.
struct NodePaths {
    /// (the manifest's host path, the test's), longest first.
    host_paths: Vec<(String, PathBuf)>,
    config_file: PathBuf,
}

impl NodePaths {
    fn new(env: &TestEnv, dir: &PodDir) -> NodePaths {
        let containerd_dir = env.socket.parent().unwrap().to_path_buf();
        NodePaths {
            host_paths: vec![
                ("/run/containerd".into(), containerd_dir.clone()),
                ("/var/lib/containerd".into(), containerd_dir.join("root")),
            ],
            config_file: dir.path.join("config/nodekitd.toml"),
        }
    }

    /// The container's ports, on loopback ports of their own in `config`.
    fn listen_on_loopback(&self, spec: &Value, config: &mut String) -> (SocketAddr, SocketAddr) {
        let mut port_of = |name: &str| -> SocketAddr {
            let port = spec["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap();
            let here = free_loopback_addr();
            replace(config, &format!("0.0.0.0:{port}"), &here.to_string());
            here
        };
        (port_of("grpc"), port_of("debug"))
    }

    /// The OCI mount of one of the pod's volume mounts.
    fn mount(&mut self, mount: &Value, volume: &Value, config: &mut String, dir: &PodDir) -> Value {
        let target = mount["mountPath"].as_str().unwrap();
        let mut options = vec!["rbind"];
        let (source, target) = if let Some(path) = volume["hostPath"]["path"].as_str() {
            let here = self.host_path(path, dir);
            replace_all(config, path, here.to_str().unwrap());
            options.push(match mount["mountPropagation"].as_str() {
                Some("Bidirectional") => {
                    dir.share(&here);
                    "rshared"
                }
                Some("HostToContainer") => "rslave",
                _ => "rprivate",
            });
            (here.clone(), here)
        } else if volume["configMap"].is_object() {
            (self.config_file.clone(), PathBuf::from(target))
        } else if let Some(name) = volume["secret"]["secretName"].as_str() {
            (secret_files(dir, name), PathBuf::from(target))
        } else {
            assert!(
                volume["emptyDir"].is_object(),
                "a volume kind the test knows: {volume}"
            );
            let empty = dir
                .path
                .join(format!("empty-{}", mount["name"].as_str().unwrap()));
            std::fs::create_dir_all(&empty).unwrap();
            (empty, PathBuf::from(target))
        };
        options.push(if mount["readOnly"] == true {
            "ro"
        } else {
            "rw"
        });
        serde_json::json!({
            "destination": target,
            "type": "bind",
            "source": source,
            "options": options,
        })
    }

    /// The test's directory for the node's `path`.
    fn host_path(&mut self, path: &str, dir: &PodDir) -> PathBuf {
        if let Some((_, here)) = self.host_paths.iter().find(|(p, _)| p == path) {
            return here.clone();
        }
        let here = dir.path.join("host").join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&here).unwrap();
        self.host_paths.push((path.into(), here.clone()));
        here
    }

    fn write_config(&self, config: &str) {
        std::fs::create_dir_all(self.config_file.parent().unwrap()).unwrap();
        std::fs::write(&self.config_file, config).unwrap();
    }
}

/// The Secret certs.sh wrote, as the kubelet writes a secret volume: a file per key.
fn secret_files(dir: &PodDir, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(dir.path.join("certs/secret.yaml")).unwrap();
    let secret = &documents(&text)[0];
    assert_eq!(secret["metadata"]["name"], name);
    let out = dir.path.join("secret");
    std::fs::create_dir_all(&out).unwrap();
    for (key, value) in secret["data"].as_object().unwrap() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        std::fs::write(out.join(key), bytes).unwrap();
    }
    out
}

fn replace(config: &mut String, from: &str, to: &str) {
    assert!(config.contains(from), "nodekitd.toml has {from}");
    *config = config.replace(from, to);
}

/// Replaces the path `from` (a whole path or a prefix of one) wherever nodekitd.toml has it.
fn replace_all(config: &mut String, from: &str, to: &str) {
    let pattern = format!("\"{from}");
    let replacement = format!("\"{to}");
    *config = config.replace(&pattern, &replacement);
    *config = config.replace(&format!("unix://{from}"), &format!("unix://{to}"));
}

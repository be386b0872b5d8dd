use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nodekitd::worker::{RegistryHosts, Worker, WorkerConfig};

/// The environment `tests/env/up.sh` brought up, read from its env file.
#[derive(Clone, Debug)]
pub struct TestEnv {
    pub state: PathBuf,
    pub socket: PathBuf,
    pub namespace: String,
    pub registry: String,
    pub local_image: String,
    pub registry_image: String,
}

const DEFAULT_STATE: &str = "/var/tmp/nodekit-testenv";

impl TestEnv {
    /// The shared environment; brings it up (idempotently) if it is not up yet.
    pub fn get() -> &'static TestEnv {
        static ENV: OnceLock<TestEnv> = OnceLock::new();
        ENV.get_or_init(|| {
            let state = std::env::var_os("NODEKIT_TESTENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE));
            ensure_up(&state);
            TestEnv::read(&state)
        })
    }

    fn read(state: &Path) -> TestEnv {
        let file = state.join("env");
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; run tests/env/up.sh", file.display()));
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .collect();
        let var = |name: &str| {
            vars.get(name)
                .unwrap_or_else(|| panic!("{} lacks {name}", file.display()))
                .to_string()
        };
        TestEnv {
            state: state.to_path_buf(),
            socket: var("NODEKIT_TEST_CONTAINERD_SOCK").into(),
            namespace: var("NODEKIT_TEST_NAMESPACE"),
            registry: var("NODEKIT_TEST_REGISTRY"),
            local_image: var("NODEKIT_TEST_LOCAL_IMAGE"),
            registry_image: var("NODEKIT_TEST_REGISTRY_IMAGE"),
        }
    }

    /// A worker on the test containerd, its bind-mount root private to `test`.
    pub async fn worker(&self, test: &str) -> Worker {
        self.worker_with_hosts(test, RegistryHosts::default()).await
    }

    /// As [`TestEnv::worker`], reaching registries as `registry_hosts` says (e.g. with a
    /// docker config of the daemon's own, its `auth_file`).
    pub async fn worker_with_hosts(&self, test: &str, registry_hosts: RegistryHosts) -> Worker {
        self.worker_in(test, &self.namespace, registry_hosts).await
    }

    /// As [`TestEnv::worker_with_hosts`], on containerd's `namespace`.
    pub async fn worker_in(
        &self,
        test: &str,
        namespace: &str,
        registry_hosts: RegistryHosts,
    ) -> Worker {
        let config = WorkerConfig {
            socket: self.socket.clone(),
            namespace: namespace.to_string(),
            snapshotter: "overlayfs".into(),
            registry_hosts,
            // Not a daemon's: a worker clears its root at start, so it gets one of its own.
            mount_source_root: self.mount_source_root(&format!("worker-{test}")),
            emulation: Default::default(),
            proxy: None,
            dns: Default::default(),
            owner: format!("nodekit-test-{test}"),
        };
        Worker::connect(config)
            .await
            .unwrap_or_else(|e| panic!("test containerd: {e}"))
    }

    pub fn mount_source_root(&self, test: &str) -> PathBuf {
        self.state.join("local-mnt-src").join(test)
    }
}

/// Runs `tests/env/up.sh` unless its env file is there and containerd's socket exists.
fn ensure_up(state: &Path) {
    let socket = state.join("containerd/containerd.sock");
    if state.join("env").exists() && socket.exists() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("env/up.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .env("NODEKIT_TESTENV", state)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "{} failed", script.display());
}

/// A number a long run sets through the environment (`NODEKIT_KILL9_ITERATIONS=50`), else the
/// suite's `default`.
pub fn number_from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

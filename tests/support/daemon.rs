//! A nodekitd on the test containerd, serving on its own unix socket, run on a thread and
//! runtime of its own (so it outlives the test's runtime long enough to shut down cleanly and
//! release every lease). Tests end with [`TestDaemon::stop`], which stops it as SIGTERM does.

use std::path::PathBuf;
use std::time::Duration;

use nodekitd::config::{CacheConfig, Config, ListenAddr};
use nodekitd::worker::{RegistryHosts, WorkerConfig};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::TestEnv;

pub struct TestDaemon {
    pub addr: String,
    pub root: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestDaemon {
    /// Starts nodekitd for `test` on a fresh state directory and waits until it serves.
    pub async fn start(test: &str) -> TestDaemon {
        TestDaemon::start_with(test, |_| {}).await
    }

    /// As [`TestDaemon::start`], with `configure` changing the configuration first.
    pub async fn start_with(test: &str, configure: impl FnOnce(&mut Config)) -> TestDaemon {
        let dir = std::env::temp_dir().join(format!("nodekit-api-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TestDaemon::start_configured(test, dir, configure).await
    }

    /// Starts nodekitd for `test` keeping what `dir` holds (a restart).
    pub async fn start_in(test: &str, dir: PathBuf) -> TestDaemon {
        TestDaemon::start_configured(test, dir, |_| {}).await
    }

    /// As [`TestDaemon::start_in`], with `configure` changing the configuration first.
    pub async fn start_configured(
        test: &str,
        dir: PathBuf,
        configure: impl FnOnce(&mut Config),
    ) -> TestDaemon {
        let _ = std::fs::remove_file(dir.join("nodekitd.sock"));
        let addr = format!("unix://{}", dir.join("nodekitd.sock").display());
        let mut config = config(test, &dir, &addr);
        configure(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || serve(config, stopped));
        let daemon = TestDaemon {
            addr,
            root: dir,
            stop: Some(stop),
            thread: Some(thread),
        };
        daemon.wait_serving().await;
        daemon
    }

    /// A handle on a nodekitd someone else runs (a process) at `addr`; stopping it does nothing.
    pub fn attach(addr: &str, root: &std::path::Path) -> TestDaemon {
        TestDaemon {
            addr: addr.to_string(),
            root: root.to_path_buf(),
            stop: None,
            thread: None,
        }
    }

    /// Begins shutting down as SIGTERM does and returns at once: running builds may finish,
    /// new ones are refused. Waits for the end when the returned handle is joined.
    pub fn begin_shutdown(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.begin_stop()
    }

    /// Shuts the daemon down as SIGTERM does (releasing what it keeps) and waits for it.
    pub async fn stop(mut self) {
        let stopped = self.begin_stop();
        let _ = tokio::task::spawn_blocking(move || stopped.map(|t| t.join())).await;
    }

    pub async fn channel(&self) -> Channel {
        nodekit::connect::channel(&self.addr)
            .await
            .expect("connect to nodekitd")
    }

    /// `prune --all` through Control, to its end; how many records it removed.
    pub async fn prune_all(&self) -> usize {
        self.prune_matching(Vec::new()).await
    }

    /// `prune --all` of the records that match every filter (`buildctl prune --filter`), to its
    /// end; how many records it removed.
    pub async fn prune_matching(&self, filter: Vec<String>) -> usize {
        use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
        use nodekit_proto::moby::buildkit::v1::PruneRequest;
        let mut pruned = ControlClient::new(self.channel().await)
            .prune(PruneRequest {
                filter,
                all: true,
                ..Default::default()
            })
            .await
            .expect("prune")
            .into_inner();
        let mut removed = 0;
        while pruned.message().await.expect("a prune record").is_some() {
            removed += 1;
        }
        removed
    }

    fn begin_stop(&mut self) -> Option<std::thread::JoinHandle<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread.take()
    }

    async fn wait_serving(&self) {
        wait_serving(&self.addr).await;
    }
}

/// Waits until the nodekitd at `addr` answers its health check with SERVING.
pub async fn wait_serving(addr: &str) {
    for _ in 0..200 {
        if let Ok(channel) = nodekit::connect::channel(addr).await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await;
            if answer.is_ok_and(|a| a.into_inner().status == 1) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nodekitd at {addr} did not start serving");
}

/// A test that fails before calling [`TestDaemon::stop`] leaves its daemon to stop on its own:
/// joining here would block the runtime its clients' connections need to close.
impl Drop for TestDaemon {
    fn drop(&mut self) {
        drop(self.begin_stop());
    }
}

fn config(test: &str, dir: &std::path::Path, addr: &str) -> Config {
    let env = TestEnv::get();
    Config {
        root: dir.join("root"),
        addrs: vec![ListenAddr::parse(addr).expect("listen address")],
        debug: false,
        debug_addr: None,
        log_format: Default::default(),
        // Long enough for a test's running build to finish; tests end their builds first.
        shutdown_grace: Duration::from_secs(30),
        security: Default::default(),
        entitlements: Default::default(),
        worker: WorkerConfig {
            socket: env.socket.clone(),
            namespace: env.namespace.clone(),
            snapshotter: "overlayfs".into(),
            registry_hosts: RegistryHosts::default(),
            mount_source_root: env.mount_source_root(test),
            emulation: Default::default(),
            proxy: None,
            dns: Default::default(),
            owner: String::new(),
        },
        cache: CacheConfig {
            gc: true,
            policies: Vec::new(),
            history: Default::default(),
        },
        advertised: Default::default(),
        gateway_frontend: true,
        limits: Default::default(),
        gateway_allowed_repositories: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The daemon's thread: its own runtime, serving until `stopped`.
fn serve(config: Config, stopped: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for nodekitd");
    let shutdown = async move {
        let _ = stopped.await;
    };
    if let Err(error) = runtime.block_on(nodekitd::daemon::run_until(config, shutdown)) {
        panic!("nodekitd stopped: {error:#}");
    }
}

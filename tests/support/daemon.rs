//! An in-process nodekitd on the test containerd, serving on its own unix socket, with the
//! nodekit client library connected to it. Stopped when dropped (its tasks are aborted).

use std::path::PathBuf;
use std::time::Duration;

use nodekitd::config::{Config, ListenAddr};
use nodekitd::worker::{RegistryHosts, WorkerConfig};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::TestEnv;

pub struct TestDaemon {
    pub addr: String,
    pub root: PathBuf,
    task: JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestDaemon {
    /// Starts nodekitd for `test` on a fresh state directory and waits until it serves.
    pub async fn start(test: &str) -> TestDaemon {
        let dir = std::env::temp_dir().join(format!("nodekit-api-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TestDaemon::start_in(test, dir).await
    }

    /// Starts nodekitd for `test` keeping what `dir` holds (a restart).
    pub async fn start_in(test: &str, dir: PathBuf) -> TestDaemon {
        let env = TestEnv::get();
        let _ = std::fs::remove_file(dir.join("nodekitd.sock"));
        let socket = dir.join("nodekitd.sock");
        let addr = format!("unix://{}", socket.display());
        let config = Config {
            root: dir.join("root"),
            addrs: vec![ListenAddr::parse(&addr).expect("listen address")],
            debug: false,
            worker: WorkerConfig {
                socket: env.socket.clone(),
                namespace: env.namespace.clone(),
                snapshotter: "overlayfs".into(),
                registry_hosts: RegistryHosts::default(),
                mount_source_root: env.mount_source_root(test),
                owner: String::new(),
            },
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(async move {
            if let Err(error) = nodekitd::daemon::run_until(config, shutdown).await {
                panic!("nodekitd stopped: {error:#}");
            }
        });
        let daemon = TestDaemon {
            addr,
            root: dir,
            task,
            stop: Some(stop),
        };
        daemon.wait_serving().await;
        daemon
    }

    /// Shuts the daemon down as SIGTERM does (releasing what it keeps) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    pub async fn channel(&self) -> Channel {
        nodekit::connect::channel(&self.addr)
            .await
            .expect("connect to nodekitd")
    }

    async fn wait_serving(&self) {
        for _ in 0..100 {
            if let Ok(channel) = nodekit::connect::channel(&self.addr).await {
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
        panic!("nodekitd at {} did not start serving", self.addr);
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.task.abort();
    }
}

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
}

impl TestDaemon {
    /// Starts nodekitd for `test` and waits until it serves.
    pub async fn start(test: &str) -> TestDaemon {
        let env = TestEnv::get();
        let dir = std::env::temp_dir().join(format!("nodekit-api-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
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
            },
        };
        let task = tokio::spawn(async move {
            if let Err(error) = nodekitd::daemon::run(config).await {
                panic!("nodekitd stopped: {error:#}");
            }
        });
        let daemon = TestDaemon {
            addr,
            root: dir,
            task,
        };
        daemon.wait_serving().await;
        daemon
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

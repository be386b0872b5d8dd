use std::time::{Duration, Instant};

use nodekitd::worker::{RegistryHosts, Worker, WorkerConfig, WorkerError};

fn config(socket: &std::path::Path) -> WorkerConfig {
    WorkerConfig {
        socket: socket.to_path_buf(),
        namespace: "k8s.io".into(),
        snapshotter: "overlayfs".into(),
        registry_hosts: RegistryHosts::default(),
        mount_source_root: std::env::temp_dir().join("nodekit-unreachable"),
        emulation: Default::default(),
        proxy: None,
        dns: Default::default(),
        owner: "nodekit-test-unreachable".into(),
    }
}

async fn assert_unreachable(socket: &std::path::Path) {
    let started = Instant::now();
    let error = match Worker::connect(config(socket)).await {
        Ok(_) => panic!("connected to {}", socket.display()),
        Err(error) => error,
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(error, WorkerError::Unreachable { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(&socket.display().to_string()), "{text}");
    assert!(text.contains("containerd"), "{text}");
}

#[tokio::test]
async fn a_missing_socket_is_named_within_seconds() {
    assert_unreachable(std::path::Path::new("/run/nodekit-test/no-containerd.sock")).await;
}

#[tokio::test]
async fn a_dead_socket_is_named_within_seconds() {
    let dir = std::env::temp_dir().join(format!("nodekit-dead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("containerd.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap()); // the file stays, nobody listens
    assert_unreachable(&socket).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

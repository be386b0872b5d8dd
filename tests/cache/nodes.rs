//! Two nodes on one containerd: daemons with their own roots (so their own worker IDs) and
//! their own containerd namespaces, and the six-step build the cache-sharing tests run on them.

use std::path::Path;

use nodekit::connect::Target;
use nodekit_proto::moby::buildkit::v1::PruneRequest;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};

use crate::usage::{disk_usage, prune};

/// Six steps over a 2,000-file context; the base image comes from the loopback registry, so a
/// daemon in an empty namespace finds it too.
pub fn six_steps(base: &str) -> String {
    format!(
        "FROM {base}
RUN echo one > /one
COPY files /files
RUN find /files -type f | wc -l > /count
COPY a.txt /a.txt
RUN cat /a.txt /count > /out
"
    )
}

/// Changes the one file of [`six_steps`]'s context that its last two steps read.
pub fn change_a_txt(dir: &Path) {
    std::fs::write(dir.join("a.txt"), "changed\n").unwrap();
}

/// What runs again after [`change_a_txt`]: only the steps that read the file.
pub const AFTER_CHANGE: [&str; 2] = [
    "[5/6] COPY a.txt /a.txt",
    "[6/6] RUN cat /a.txt /count > /out",
];

pub fn two_thousand_files(dir: &Path) {
    let files = dir.join("files");
    for n in 0..2_000 {
        let sub = files.join(format!("d{}", n % 20));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{n}")), format!("file {n}\n")).unwrap();
    }
}

/// A daemon of its own in containerd namespace `namespace`.
pub async fn node(test: &str, namespace: &str) -> TestDaemon {
    let namespace = namespace.to_string();
    TestDaemon::start_with(test, move |config| config.worker.namespace = namespace).await
}

pub fn target(daemon: &TestDaemon) -> Target {
    Target {
        addr: daemon.addr.clone(),
        tls: None,
    }
}

pub async fn regular_keys(daemon: &TestDaemon) -> Vec<String> {
    let mut keys: Vec<String> = disk_usage(daemon, &["type==regular"])
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    keys.sort();
    keys
}

/// Everything the test made in `namespace`: records (and their leases), images (the pulled base
/// image too), the namespace itself.
pub async fn remove_node(daemon: TestDaemon, namespace: &str) {
    prune(
        &daemon,
        PruneRequest {
            all: true,
            ..Default::default()
        },
    )
    .await;
    daemon.stop().await;
    let env = TestEnv::get();
    let images = ctr(env, &["-n", namespace, "images", "ls", "-q"]);
    for image in String::from_utf8_lossy(&images.stdout).lines() {
        ctr(env, &["-n", namespace, "images", "rm", "--sync", image]);
    }
    let removed = ctr(env, &["namespaces", "rm", namespace]);
    assert!(
        removed.status.success(),
        "{namespace} is left with something: {}",
        String::from_utf8_lossy(&removed.stderr)
    );
}

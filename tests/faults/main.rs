//! Faults of the node under nodekitd, against containerds of the tests' own (never the shared
//! one): containerd stopped and started again in the middle of a build and while nodekitd is
//! idle, and a disk that a build fills up. The build that meets the fault fails with an error
//! that says what happened; nodekitd keeps serving, without a restart, and the next builds
//! succeed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

#[path = "../cache/common.rs"]
#[allow(dead_code)] // the cache tests' helpers, of which these tests use a few
mod common;
mod containerd_restart;
mod full_disk;
mod random_restarts;

use std::path::PathBuf;

use common::{build_dockerfile, context, Built};
use nodekit_test_support::{PrivateContainerd, TestDaemon, TestEnv};

/// A nodekitd whose root is `dir`, working on `containerd`.
async fn daemon_on(test: &str, containerd: &PrivateContainerd, dir: PathBuf) -> TestDaemon {
    daemon_configured(test, containerd, dir, |_| {}).await
}

/// As [`daemon_on`], with `configure` changing the configuration first.
async fn daemon_configured(
    test: &str,
    containerd: &PrivateContainerd,
    dir: PathBuf,
    configure: impl FnOnce(&mut nodekitd::config::Config),
) -> TestDaemon {
    let (socket, namespace) = (containerd.socket.clone(), containerd.namespace.clone());
    TestDaemon::start_configured(test, dir, move |config| {
        config.worker.socket = socket;
        config.worker.namespace = namespace;
        configure(config);
    })
    .await
}

/// Builds a Dockerfile whose one RUN records its build arg `id`: the same `id` again is a
/// cache hit, a new one runs a step.
async fn build_recording(daemon: &TestDaemon, id: &str) -> Built {
    let dockerfile = format!(
        "FROM {}\nARG ID\nRUN echo $ID > /id\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    build_dockerfile(daemon, dir.path(), &[("ID", id)], None).await
}

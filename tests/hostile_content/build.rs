//! Dockerfile builds through a test daemon, and the check that it still serves.

use std::collections::BTreeMap;
use std::path::Path;

use nodekit::build::{build, BuildRequest};
use nodekit_test_support::{TestDaemon, TestEnv};

/// An exporter and its attributes.
pub type Exporter = (String, BTreeMap<String, String>);

/// Builds the Dockerfile in `dir` (also the context); `image`: stored under that name.
pub async fn dockerfile(
    daemon: &TestDaemon,
    dir: &Path,
    image: Option<&str>,
) -> Result<(), String> {
    let exporters = image
        .map(|name| {
            vec![(
                "image".to_string(),
                BTreeMap::from([("name".to_string(), name.to_string())]),
            )]
        })
        .unwrap_or_default();
    dockerfile_with(daemon, dir, BTreeMap::new(), exporters).await
}

/// As [`dockerfile`], with frontend options and any exporters.
pub async fn dockerfile_with(
    daemon: &TestDaemon,
    dir: &Path,
    frontend_attrs: BTreeMap<String, String>,
    exporters: Vec<Exporter>,
) -> Result<(), String> {
    let locals = BTreeMap::from([
        ("context".to_string(), dir.to_path_buf()),
        ("dockerfile".to_string(), dir.to_path_buf()),
    ]);
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs,
        services: nodekit::session::SessionServices {
            locals,
            ..Default::default()
        },
        exporters,
        ..Default::default()
    };
    build(daemon.channel().await, request, |_| {})
        .await
        .map(drop)
        .map_err(|e| format!("{e:#}"))
}

/// A small build that must succeed after a hostile one: the daemon keeps serving.
pub async fn assert_still_serving(daemon: &TestDaemon) {
    let dir = tempfile::tempdir().unwrap();
    let base = &TestEnv::get().local_image;
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo still serving > /ok\n"),
    )
    .unwrap();
    dockerfile(daemon, dir.path(), None)
        .await
        .expect("a build after the hostile one succeeds");
}

/// The daemon's process peak resident memory (VmHWM, kB): the test runs it in-process.
pub fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

//! Building Dockerfiles through a daemon and reading what the progress said about each step.

use std::collections::BTreeMap;
use std::path::Path;

use nodekit::build::{build, BuildRequest};
use nodekit::session::SessionServices;
use nodekit_proto::moby::buildkit::v1::{StatusResponse, Vertex};
use nodekit_test_support::TestDaemon;

/// A build context holding `dockerfile` and `files`.
pub fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("writing the Dockerfile");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("writing a context file");
    }
    dir
}

/// What one build reported.
pub struct Built {
    pub result: Result<BTreeMap<String, String>, String>,
    pub updates: Vec<StatusResponse>,
}

impl Built {
    /// The last record of every Dockerfile step (`[stage N/M] ...`), in the order first seen.
    pub fn steps(&self) -> Vec<Vertex> {
        let mut order: Vec<String> = Vec::new();
        let mut last: BTreeMap<String, Vertex> = BTreeMap::new();
        for vertex in self.updates.iter().flat_map(|u| u.vertexes.iter()) {
            if !vertex.name.starts_with('[') || vertex.name.starts_with("[internal]") {
                continue;
            }
            if !order.contains(&vertex.digest) {
                order.push(vertex.digest.clone());
            }
            last.insert(vertex.digest.clone(), vertex.clone());
        }
        order.iter().filter_map(|d| last.remove(d)).collect()
    }

    /// The names of the steps that ran (were not cached).
    pub fn ran(&self) -> Vec<String> {
        self.steps()
            .into_iter()
            .filter(|v| !v.cached)
            .map(|v| v.name)
            .collect()
    }

    /// Every log line the steps printed.
    pub fn logs(&self) -> String {
        self.updates
            .iter()
            .flat_map(|u| u.logs.iter())
            .map(|l| String::from_utf8_lossy(&l.msg).into_owned())
            .collect()
    }
}

/// Builds the Dockerfile in `dir` (its context too) with `args` as build args (a name starting
/// with `=` is a frontend option, e.g. `=no-cache`); exports the result as `image` when given.
pub async fn build_dockerfile(
    daemon: &TestDaemon,
    dir: &Path,
    args: &[(&str, &str)],
    image: Option<&str>,
) -> Built {
    build_dockerfile_with_secrets(daemon, dir, args, image, BTreeMap::new()).await
}

/// [`build_dockerfile`] with the session offering `secrets` (by id).
pub async fn build_dockerfile_with_secrets(
    daemon: &TestDaemon,
    dir: &Path,
    args: &[(&str, &str)],
    image: Option<&str>,
    secrets: BTreeMap<String, Vec<u8>>,
) -> Built {
    build_dockerfile_with(daemon, dir, args, image, |request| {
        request.services.secrets = secrets
    })
    .await
}

/// [`build_dockerfile`] with the request changed by `adjust` (cache options, say).
pub async fn build_dockerfile_with(
    daemon: &TestDaemon,
    dir: &Path,
    args: &[(&str, &str)],
    image: Option<&str>,
    adjust: impl FnOnce(&mut BuildRequest),
) -> Built {
    let locals = BTreeMap::from([
        ("context".to_string(), dir.to_path_buf()),
        ("dockerfile".to_string(), dir.to_path_buf()),
    ]);
    let frontend_attrs = args
        .iter()
        .map(|(k, v)| match k.strip_prefix('=') {
            // "=name": a frontend option of its own, not a build arg.
            Some(option) => (option.to_string(), v.to_string()),
            None => (format!("build-arg:{k}"), v.to_string()),
        })
        .collect();
    let exporter = image.map(|name| {
        let attrs = BTreeMap::from([("name".to_string(), name.to_string())]);
        ("image".to_string(), attrs)
    });
    let mut request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs,
        services: SessionServices {
            locals,
            ..Default::default()
        },
        exporters: exporter.into_iter().collect(),
        ..Default::default()
    };
    adjust(&mut request);
    let mut updates = Vec::new();
    let channel = daemon.channel().await;
    let result = build(channel, request, |u| updates.push(u.clone())).await;
    Built {
        result: result.map_err(|e| format!("{e:#}")),
        updates,
    }
}

/// Output of `cmd` in a container of `image`.
pub fn run_in_image(image: &str, cmd: &[&str]) -> String {
    run_for_platform(image, None, cmd)
}

/// Output of `cmd` in a container of `image`, for `platform` when given (`ctr run --platform`).
pub fn run_for_platform(image: &str, platform: Option<&str>, cmd: &[&str]) -> String {
    nodekit_test_support::run_in_image(image, platform, cmd)
}

/// A value no earlier test run used (for cache mount ids and build args).
pub fn unique() -> String {
    format!("{}-{}", std::process::id(), rand::random::<u32>())
}

//! Frontend images (`gateway.v0`): the frontend program written for these tests
//! (tests/frontend), built into an image with nodekit itself, drives builds as a container on
//! the worker, talking to the LLBBridge over its stdio: through `--frontend gateway.v0` and
//! through `# syntax=`, over both API paths, with its failures and the daemon's policy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nodekit::build::BuildRequest;
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::helpers::{context_locals, image_output, logs, run_build, run_in_image};

/// The static test frontend tests/run.sh builds (see there).
fn frontend_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap();
    let binary = target.join(format!(
        "{}-unknown-linux-gnu/debug/nodekit-test-frontend",
        std::env::consts::ARCH
    ));
    assert!(
        binary.exists(),
        "{} is missing: RUSTFLAGS='-C target-feature=+crt-static' cargo build --target {}-unknown-linux-gnu -p nodekit-test-frontend builds it (tests/run.sh does)",
        binary.display(),
        std::env::consts::ARCH
    );
    binary
}

/// Where the program is in the frontend image: `/run` (the default entrypoint), or elsewhere
/// with an entrypoint, as real frontend images have it (then `/run` is a directory, and the
/// daemon can mount the frontend's metadata there).
const AT_RUN: &str = "COPY frontend /run";
const WITH_ENTRYPOINT: &str = "COPY frontend /bin/frontend\nENTRYPOINT [\"/bin/frontend\"]";

/// Builds the frontend image `name` with `daemon`: the program placed as `program` says, with
/// `labels`.
async fn build_frontend_image(daemon: &TestDaemon, name: &str, program: &str, labels: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(frontend_binary(), dir.path().join("frontend")).unwrap();
    let dockerfile = format!("FROM scratch\n{program}\n{labels}\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        services: context_locals(dir.path()),
        exporters: image_output(name),
        ..Default::default()
    };
    run_build(daemon, request).await.0.unwrap();
}

/// A client context with the `greeting` the frontend reads and a Dockerfile naming `syntax`.
fn context(greeting: &str, syntax: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greeting"), greeting).unwrap();
    let dockerfile = format!("# syntax={syntax} --flag\nthis is not a Dockerfile\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn gateway_request(source: &str, dir: &Path, output: &str, args: &[(&str, &str)]) -> BuildRequest {
    let mut options = BTreeMap::from([
        ("source".to_string(), source.to_string()),
        (
            "build-arg:BASE".to_string(),
            TestEnv::get().local_image.clone(),
        ),
    ]);
    for (key, value) in args {
        options.insert(format!("build-arg:{key}"), value.to_string());
    }
    BuildRequest {
        frontend: Some("gateway.v0".into()),
        frontend_attrs: options,
        services: context_locals(dir),
        exporters: image_output(output),
        ..Default::default()
    }
}

fn syntax_request(dir: &Path, output: &str) -> BuildRequest {
    let options = BTreeMap::from([(
        "build-arg:BASE".to_string(),
        TestEnv::get().local_image.clone(),
    )]);
    BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: options,
        services: context_locals(dir),
        exporters: image_output(output),
        ..Default::default()
    }
}

/// The frontend image reads the client's context and returns its own LLB, through
/// `gateway.v0` and through `# syntax=` (which forwards `cmdline` and `source`); a second
/// build finds everything cached; the image's own steps show as the build's.
#[tokio::test]
async fn a_frontend_image_drives_builds_through_gateway_v0_and_syntax() {
    let daemon = TestDaemon::start("frontend-image").await;
    let frontend = "nodekit.test/test-frontend:1";
    build_frontend_image(&daemon, frontend, WITH_ENTRYPOINT, "").await;

    let dir = context("hello from the context\n", frontend);
    let output = "nodekit.test/frontend-image-out:1";
    let request = || gateway_request(frontend, dir.path(), output, &[]);
    let (built, updates) = run_build(&daemon, request()).await;
    built.unwrap();
    assert_eq!(
        run_in_image(output, &["cat", "/from-frontend"]),
        "greeting: hello from the context\ncmdline: \ninputs: \nown source: docker-image://nodekit.test/test-frontend:1\n"
    );
    let vertices: Vec<String> = updates
        .iter()
        .flat_map(|u| u.vertexes.iter().map(|v| v.name.clone()))
        .collect();
    assert!(
        vertices
            .iter()
            .any(|v| v.contains("nodekit.test/test-frontend:1")),
        "the frontend image's source shows in the progress: {vertices:?}"
    );
    let (again, updates) = run_build(&daemon, request()).await;
    again.unwrap();
    let uncached: Vec<_> = updates
        .iter()
        .flat_map(|u| u.vertexes.iter())
        .filter(|v| v.completed.is_some() && !v.cached && v.name.starts_with("mkfile"))
        .map(|v| v.name.clone())
        .collect();
    assert!(uncached.is_empty(), "the rebuild re-ran {uncached:?}");

    std::fs::write(dir.path().join("greeting"), "changed\n").unwrap();
    let syntax_output = "nodekit.test/frontend-image-syntax:1";
    let (built, updates) = run_build(&daemon, syntax_request(dir.path(), syntax_output)).await;
    built.unwrap_or_else(|e| panic!("{e}\n{}", logs(&updates)));
    assert_eq!(
        run_in_image(syntax_output, &["cat", "/from-frontend"]),
        format!("greeting: changed\ncmdline: {frontend} --flag\ninputs: \nown source: docker-image://{frontend}\n")
    );
    daemon.stop().await;
}

/// An error the frontend returns is the build's, code and all; a frontend exiting without
/// returning fails with its exit code and the end of its stderr; an image that cannot be
/// pulled is named; a capability the image lacks is refused as upstream refuses it.
#[tokio::test]
async fn frontend_image_failures_are_reported_as_buildkitd_reports_them() {
    let daemon = TestDaemon::start("frontend-image-failures").await;
    let frontend = "nodekit.test/test-frontend-failing:1";
    build_frontend_image(&daemon, frontend, AT_RUN, "").await;
    let dir = context("hi\n", frontend);
    let output = "nodekit.test/frontend-image-failed:1";
    let fail = |args: &[(&str, &str)]| gateway_request(frontend, dir.path(), output, args);

    let error = run_build(&daemon, fail(&[("FAIL", "1")]))
        .await
        .0
        .unwrap_err();
    assert!(
        error.contains("the test frontend was asked to fail"),
        "{error}"
    );
    let error = run_build(&daemon, fail(&[("EXIT", "3")]))
        .await
        .0
        .unwrap_err();
    assert!(
        error.contains(&format!(
            "frontend {frontend} did not complete successfully: exit code: 3"
        )) && error.contains("the test frontend exits with 3, as asked"),
        "{error}"
    );
    let error = run_build(&daemon, fail(&[("EXIT", "0")]))
        .await
        .0
        .unwrap_err();
    assert!(error.contains("no result for incomplete build"), "{error}");

    let absent = format!("{}/nodekit/no-such-frontend:1", TestEnv::get().registry);
    let error = run_build(&daemon, gateway_request(&absent, dir.path(), output, &[]))
        .await
        .0
        .unwrap_err();
    assert!(
        error.contains(&format!("frontend image {absent}")),
        "{error}"
    );

    let mut needs_caps = fail(&[]);
    needs_caps.frontend_attrs.insert(
        "frontend.caps".into(),
        "moby.buildkit.frontend.subrequests".into(),
    );
    let error = run_build(&daemon, needs_caps).await.0.unwrap_err();
    assert!(
        error.contains("unsupported frontend capability moby.buildkit.frontend.subrequests"),
        "{error}"
    );
    // The daemon still serves, and a frontend image listing the capability runs.
    let listed = "nodekit.test/test-frontend-caps:1";
    let label = "LABEL moby.buildkit.frontend.caps=\"moby.buildkit.frontend.subrequests\"";
    build_frontend_image(&daemon, listed, AT_RUN, label).await;
    let mut request = gateway_request(listed, dir.path(), output, &[]);
    request.frontend_attrs.insert(
        "frontend.caps".into(),
        "moby.buildkit.frontend.subrequests".into(),
    );
    run_build(&daemon, request).await.0.unwrap();
    // The program at /run leaves no room for the metadata, which the frontend does without.
    let made = run_in_image(output, &["cat", "/from-frontend"]);
    assert!(made.ends_with("own source: none\n"), "{made}");
    daemon.stop().await;
}

/// `[frontend."gateway.v0"] allowedRepositories` lets only the images it names run.
#[tokio::test]
async fn only_allowed_frontend_repositories_run() {
    let frontend = "nodekit.test/test-frontend-allowed:1";
    let daemon = TestDaemon::start_with("frontend-image-allowed", |config| {
        config.gateway_allowed_repositories = vec!["nodekit.test/test-frontend-allowed".into()];
    })
    .await;
    build_frontend_image(&daemon, frontend, WITH_ENTRYPOINT, "").await;
    let dir = context("hi\n", frontend);
    let output = "nodekit.test/frontend-image-allowed-out:1";
    run_build(&daemon, gateway_request(frontend, dir.path(), output, &[]))
        .await
        .0
        .unwrap();
    let other = "nodekit.test/test-frontend-other:1";
    let error = run_build(&daemon, gateway_request(other, dir.path(), output, &[]))
        .await
        .0
        .unwrap_err();
    assert!(
        error.contains(&format!("'{other}' is not an allowed gateway source")),
        "{error}"
    );
    daemon.stop().await;
}

/// A client that goes away while its frontend image runs cancels the build: the frontend's
/// container goes (its process killed), and the daemon keeps serving.
#[tokio::test]
async fn a_frontend_whose_client_goes_away_is_stopped() {
    let daemon = TestDaemon::start("frontend-image-cancel").await;
    let frontend = "nodekit.test/test-frontend-cancel:1";
    build_frontend_image(&daemon, frontend, WITH_ENTRYPOINT, "").await;
    let dir = context("hi\n", frontend);
    let output = "nodekit.test/frontend-image-cancel-out:1";
    let request = gateway_request(frontend, dir.path(), output, &[("SLEEP", "600")]);
    let channel = daemon.channel().await;
    let client = tokio::spawn(async move { nodekit::build::build(channel, request, |_| {}).await });
    let worker = TestEnv::get().worker("frontend-image-cancel").await;
    let owned = || nodekit_test_support::daemon_containers(&worker, &daemon.root);
    wait_for(
        || async { !owned().await.is_empty() },
        "the frontend's container",
    )
    .await;
    client.abort();
    wait_for(
        || async { owned().await.is_empty() },
        "no container of the daemon",
    )
    .await;
    run_build(&daemon, gateway_request(frontend, dir.path(), output, &[]))
        .await
        .0
        .unwrap();
    daemon.stop().await;
}

/// Waits up to a minute for `done`.
async fn wait_for<F, Fut>(done: F, what: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("waited a minute for {what}");
}

//! The `local` exporter: the result's files written into a directory on the client's side
//! through the session's FileSend (the daemon sends, the client receives), with their modes,
//! links and hard links; what the directory held stays (`mode=copy`) or goes
//! (`mode=delete`); several platforms each under their own directory, or together when no
//! file is in two of them.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::helpers::{busybox, definition, files_under};

/// A build of a busybox step writing `/out`, exported into `dest` with `attrs`.
fn files_build(dest: &Path, attrs: &[(&str, &str)]) -> BuildRequest {
    let script = "mkdir -p /out/sub && echo hello > /out/a.txt && chmod 0750 /out/a.txt \
        && echo deep > /out/sub/b.txt && ln -s a.txt /out/link && ln /out/sub/b.txt /out/hard \
        && chmod 4755 /out/sub";
    let state = busybox().run(["sh", "-c", script]).root();
    let mut attrs: BTreeMap<String, String> = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    attrs.insert("dest".into(), dest.display().to_string());
    BuildRequest {
        definition: Some(definition(&state)),
        exporters: vec![("local".into(), attrs)],
        ..Default::default()
    }
}

/// The build's result; a transfer that hangs (each side waiting for the other) fails the
/// test instead of stalling the suite.
async fn run_build(
    daemon: &TestDaemon,
    request: BuildRequest,
) -> Result<BTreeMap<String, String>, String> {
    let build = crate::helpers::run_build(daemon, request);
    match tokio::time::timeout(std::time::Duration::from_secs(120), build).await {
        Ok((result, _)) => result,
        Err(_) => panic!("the build did not end within 2 minutes"),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn a_local_output_writes_the_results_files_with_their_modes_and_links() {
    let daemon = TestDaemon::start("local-output").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    std::fs::create_dir_all(dest.join("out")).unwrap();
    std::fs::write(dest.join("mine.txt"), "the client's").unwrap();
    std::fs::write(dest.join("out/a.txt"), "replaced").unwrap();

    let result = run_build(&daemon, files_build(&dest, &[])).await;
    result.unwrap();
    let out = dest.join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(mode(&out.join("a.txt")), 0o750);
    assert_eq!(mode(&out.join("sub")), 0o4755);
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        Path::new("a.txt")
    );
    let (hard, b) = (out.join("hard"), out.join("sub/b.txt"));
    assert_eq!(std::fs::read_to_string(&hard).unwrap(), "deep\n");
    assert_eq!(
        std::fs::metadata(&hard).unwrap().ino(),
        std::fs::metadata(&b).unwrap().ino(),
        "a hard link stays one"
    );
    assert!(dest.join("bin/busybox").is_file(), "the base's files too");
    // mode=copy (the default): what the directory held stays.
    assert_eq!(
        std::fs::read_to_string(dest.join("mine.txt")).unwrap(),
        "the client's"
    );

    // mode=delete: the directory becomes the result.
    let result = run_build(&daemon, files_build(&dest, &[("mode", "delete")])).await;
    result.unwrap();
    assert!(!dest.join("mine.txt").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).unwrap(),
        "hello\n"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn unknown_local_exporter_attributes_are_refused_by_name() {
    let daemon = TestDaemon::start("local-output-refused").await;
    let dir = tempfile::tempdir().unwrap();
    let request = files_build(dir.path(), &[("attestation-prefix", "att-")]);
    let result = run_build(&daemon, request).await;
    let error = result.unwrap_err();
    assert!(error.contains("attestation-prefix"), "{error}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
    daemon.stop().await;
}

/// Each platform's result holds `/arch-<arch>`, copied to `/same` when `shared` is set.
const TWO_PLATFORMS: &str = "ARG BASE
FROM --platform=$BUILDPLATFORM ${BASE} AS probe
ARG TARGETARCH
RUN echo $TARGETARCH > /arch-$TARGETARCH
FROM scratch
ARG SHARED
COPY --from=probe /arch-* /${SHARED}
";

fn two_platforms(
    context: &Path,
    dest: &Path,
    attrs: &[(&str, &str)],
    shared: bool,
) -> BuildRequest {
    std::fs::write(context.join("Dockerfile"), TWO_PLATFORMS).unwrap();
    let locals = BTreeMap::from([
        ("context".to_string(), context.to_path_buf()),
        ("dockerfile".to_string(), context.to_path_buf()),
    ]);
    let mut exporter = BTreeMap::from([("dest".to_string(), dest.display().to_string())]);
    exporter.extend(attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let shared_arg = if shared { "same" } else { "" };
    BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([
            ("build-arg:BASE".into(), TestEnv::get().local_image.clone()),
            ("build-arg:SHARED".into(), shared_arg.into()),
            ("platform".into(), "linux/amd64,linux/arm64".into()),
        ]),
        services: SessionServices {
            locals,
            ..Default::default()
        },
        exporters: vec![("local".into(), exporter)],
        ..Default::default()
    }
}

/// The files under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = files_under(dir)
        .iter()
        .map(|relative| relative.display().to_string())
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn several_platforms_go_to_their_own_directories_or_together() {
    let daemon = TestDaemon::start("local-output-platforms").await;
    let context = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let split = dir.path().join("split");
    let request = two_platforms(context.path(), &split, &[], false);
    run_build(&daemon, request).await.unwrap();
    assert_eq!(
        listing(&split),
        ["linux_amd64/arch-amd64", "linux_arm64/arch-arm64"]
    );
    let arch = std::fs::read_to_string(split.join("linux_arm64/arch-arm64")).unwrap();
    assert_eq!(arch, "arm64\n");

    let together = dir.path().join("together");
    let request = two_platforms(
        context.path(),
        &together,
        &[("platform-split", "false")],
        false,
    );
    run_build(&daemon, request).await.unwrap();
    assert_eq!(listing(&together), ["arch-amd64", "arch-arm64"]);

    // The same file from both platforms: refused rather than one silently overwriting the
    // other, and nothing written.
    let clash = dir.path().join("clash");
    let request = two_platforms(context.path(), &clash, &[("platform-split", "false")], true);
    let error = run_build(&daemon, request).await.unwrap_err();
    assert!(
        error.contains("cannot overwrite same from linux/amd64 with linux/arm64"),
        "{error}"
    );
    assert!(!clash.exists() || listing(&clash).is_empty());
    daemon.stop().await;
}

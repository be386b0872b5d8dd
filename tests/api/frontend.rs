//! The built-in dockerfile.v0 frontend through both API paths: Control.Solve naming the frontend
//! (buildctl <= v0.10) and LLBBridge.Solve naming it inside a gateway build (buildctl >= v0.11).

use std::collections::BTreeMap;

use nodekit::build::BuildRequest;
use nodekit::session::ClientSession;
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_client::LlbBridgeClient;
use nodekit_proto::moby::buildkit::v1::frontend::{self as gw, ReturnRequest};
use nodekit_proto::moby::buildkit::v1::{Exporter, SolveRequest};
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::helpers::{context_locals, run_build, run_in_image, with_build};

const DOCKERFILE: &str = "ARG BASE
FROM ${BASE} AS build
ARG MSG=hello
WORKDIR /src
COPY hello.txt .
RUN echo \"$MSG: $(cat hello.txt)\" > out.txt

FROM ${BASE}
COPY --from=build /src/out.txt /out.txt
CMD [\"cat\", \"/out.txt\"]
";

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.path().join("hello.txt"), "from the context").unwrap();
    dir
}

fn options() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "build-arg:BASE".to_string(),
            TestEnv::get().local_image.clone(),
        ),
        ("build-arg:MSG".to_string(), "howdy".to_string()),
    ])
}

#[tokio::test]
async fn control_solve_naming_the_frontend_builds_a_dockerfile() {
    let daemon = TestDaemon::start("frontend-control").await;
    let dir = context();
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: options(),
        services: context_locals(dir.path()),
        exporters: crate::helpers::image_output("nodekit.test/api-dockerfile:1"),
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();
    assert_eq!(
        run_in_image("nodekit.test/api-dockerfile:1", &[]),
        "howdy: from the context\n"
    );

    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nNOSUCH thing\n",
    )
    .unwrap();
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        services: context_locals(dir.path()),
        ..Default::default()
    };
    let error = run_build(&daemon, request).await.0.unwrap_err();
    assert!(
        error.contains("Dockerfile:2: unknown instruction: NOSUCH"),
        "{error}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_gateway_solve_naming_the_frontend_returns_its_result_and_config() {
    let daemon = TestDaemon::start("frontend-gateway").await;
    let dir = context();
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), context_locals(dir.path()))
        .await
        .unwrap();
    let build = "frontend-gateway-1";
    let exporter = Exporter {
        r#type: "image".into(),
        attrs: BTreeMap::from([(
            "name".to_string(),
            "nodekit.test/api-dockerfile:2".to_string(),
        )]),
    };
    let solve = SolveRequest {
        r#ref: build.into(),
        session: session.id.clone(),
        exporters: vec![exporter],
        ..Default::default()
    };
    let frontend = async {
        let mut bridge = LlbBridgeClient::new(channel.clone());
        let request = with_build(
            build,
            gw::SolveRequest {
                frontend: "dockerfile.v0".into(),
                frontend_opt: options(),
                allow_result_return: true,
                allow_result_array_ref: true,
                ..Default::default()
            },
        );
        let result = bridge
            .solve(request)
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&result.metadata["containerimage.config"]).unwrap();
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["cat", "/out.txt"])
        );
        let request = with_build(
            build,
            ReturnRequest {
                result: Some(result),
                error: None,
            },
        );
        bridge.r#return(request).await.unwrap();
    };
    let mut control = ControlClient::new(channel.clone());
    let (solved, _) = tokio::join!(control.solve(solve), frontend);
    solved.unwrap();
    assert_eq!(
        run_in_image("nodekit.test/api-dockerfile:2", &[]),
        "howdy: from the context\n"
    );
    drop(session);
    daemon.stop().await;
}

/// Removes an image name from the store when dropped (even when the test fails).
struct StoreName(String);

impl Drop for StoreName {
    fn drop(&mut self) {
        nodekit_test_support::ctr(TestEnv::get(), &["images", "rm", &self.0]);
    }
}

#[tokio::test]
async fn image_resolve_mode_pull_asks_the_registry_even_when_the_store_has_the_name() {
    let daemon = TestDaemon::start("frontend-resolve-mode").await;
    let env = TestEnv::get();
    // The store gets an image with /marker under the registry image's name (put back to
    // "registry only" at the end, as the environment has it).
    let _restore = StoreName(env.registry_image.clone());
    let marked = crate::helpers::busybox().file(nodekit_llb_builder::FileAction::new(
        nodekit_llb_builder::Mkfile::new("/marker", 0o644, "x"),
    ));
    let request = BuildRequest {
        definition: Some(crate::helpers::definition(&marked)),
        exporters: crate::helpers::image_output(&env.registry_image),
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let dockerfile = "ARG BASE\nFROM ${BASE}\nRUN if [ -e /marker ]; then echo store; else echo registry; fi > /which\n";
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (mode, expected) in [("default", "store\n"), ("pull", "registry\n")] {
        let name = format!("nodekit.test/api-resolve-{mode}:1");
        let request = BuildRequest {
            frontend: Some("dockerfile.v0".into()),
            frontend_attrs: BTreeMap::from([
                ("build-arg:BASE".to_string(), env.registry_image.clone()),
                ("image-resolve-mode".to_string(), mode.to_string()),
            ]),
            services: context_locals(dir.path()),
            exporters: crate::helpers::image_output(&name),
            ..Default::default()
        };
        run_build(&daemon, request).await.0.unwrap();
        assert_eq!(run_in_image(&name, &["cat", "/which"]), expected, "{mode}");
    }
    daemon.stop().await;
}

const TWO_PLATFORMS: &str = "ARG BASE
FROM --platform=$BUILDPLATFORM ${BASE} AS probe
ARG TARGETARCH
RUN echo \"built on $(uname -m) for $TARGETARCH\" > /arch
FROM ${BASE}
COPY --from=probe /arch /arch
";

#[tokio::test]
async fn a_list_of_platforms_gives_one_result_per_platform() {
    let daemon = TestDaemon::start("frontend-platforms").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), TWO_PLATFORMS).unwrap();
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), context_locals(dir.path()))
        .await
        .unwrap();
    let build = "frontend-platforms-1";
    let solve = SolveRequest {
        r#ref: build.into(),
        session: session.id.clone(),
        ..Default::default()
    };
    let frontend = async {
        let mut bridge = LlbBridgeClient::new(channel.clone());
        let mut options = options();
        options.insert("platform".into(), "linux/amd64,linux/arm64".into());
        let request = gw::SolveRequest {
            frontend: "dockerfile.v0".into(),
            frontend_opt: options,
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        };
        let result = bridge
            .solve(with_build(build, request))
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        let Some(gw::result::Result::Refs(refs)) = &result.result else {
            panic!("expected one ref per platform: {:?}", result.result);
        };
        let platforms: serde_json::Value =
            serde_json::from_slice(&result.metadata["refs.platforms"]).unwrap();
        let ids: Vec<&str> = platforms["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["linux/amd64", "linux/arm64"]);
        for arch in ["amd64", "arm64"] {
            let key = format!("linux/{arch}");
            let config: serde_json::Value =
                serde_json::from_slice(&result.metadata[&format!("containerimage.config/{key}")])
                    .unwrap();
            assert_eq!(config["architecture"], arch);
            let read = gw::ReadFileRequest {
                r#ref: refs.refs[&key].id.clone(),
                file_path: "/arch".into(),
                ..Default::default()
            };
            let data = bridge
                .read_file(with_build(build, read))
                .await
                .unwrap()
                .into_inner()
                .data;
            let text = String::from_utf8_lossy(&data).into_owned();
            assert!(text.ends_with(&format!(" for {arch}\n")), "{key}: {text}");
        }
        let done = ReturnRequest {
            result: None,
            error: None,
        };
        bridge.r#return(with_build(build, done)).await.unwrap();
    };
    let mut control = ControlClient::new(channel.clone());
    let (solved, _) = tokio::join!(control.solve(solve), frontend);
    solved.unwrap();
    drop(session);
    daemon.stop().await;
}

/// An unchanged rebuild reads its Dockerfile through the mount the first build made (kept with
/// the local source's copy, so containerd creates no view for it) and writes no image: the
/// record already names the same manifest. `stop` leaves no mount behind.
#[tokio::test]
async fn an_unchanged_rebuild_reuses_its_dockerfile_mount_and_writes_no_image() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("frontend-rebuild").await;
    let dir = context();
    let image = "nodekit.test/api-rebuild:1";
    let request = || BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: options(),
        services: context_locals(dir.path()),
        exporters: crate::helpers::image_output(image),
        ..Default::default()
    };
    run_build(&daemon, request()).await.0.unwrap();
    let worker = env.worker("frontend-rebuild-check").await;
    let written = image_updated_at(&worker, image).await;
    let mounted = mounted_views(env);
    assert!(!mounted.is_empty(), "the Dockerfile's mount is kept");

    run_build(&daemon, request()).await.0.unwrap();
    assert_eq!(
        mounted_views(env),
        mounted,
        "the rebuild used the same mount"
    );
    assert_eq!(image_updated_at(&worker, image).await, written);
    assert_eq!(run_in_image(image, &[]), "howdy: from the context\n");

    daemon.stop().await;
    let left = mounts_under(&env.mount_source_root("frontend-rebuild"));
    assert_eq!(left, Vec::<String>::new());
}

/// When the image store last changed the record of `name` (seconds, nanoseconds).
async fn image_updated_at(worker: &nodekitd::worker::Worker, name: &str) -> Option<(i64, i32)> {
    use containerd_client::services::v1::images_client::ImagesClient;
    use containerd_client::services::v1::GetImageRequest;
    ImagesClient::new(worker.channel().clone())
        .get(worker.ctx().request(GetImageRequest { name: name.into() }))
        .await
        .expect("the image exists")
        .into_inner()
        .image
        .and_then(|image| image.updated_at)
        .map(|at| (at.seconds, at.nanos))
}

/// The read-only result mounts the test's daemon holds now.
fn mounted_views(env: &TestEnv) -> Vec<String> {
    mounts_under(&env.mount_source_root("frontend-rebuild").join("views"))
}

/// Mount points below `dir`, sorted.
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mut mounts: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    mounts.sort();
    mounts
}

/// A failed step's error carries the Dockerfile lines it came from as BuildKit's typed detail
/// (`errdefs.Source`, which buildctl and buildx print), through the gateway and back: the
/// frontend returns the error it got, details and all.
#[tokio::test]
async fn a_failed_step_s_error_carries_its_dockerfile_source() {
    use nodekit_proto::google::rpc::Status as RpcStatus;
    use prost::Message;

    let daemon = TestDaemon::start("frontend-error-source").await;
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {}\nRUN exit 3\n", TestEnv::get().local_image);
    std::fs::write(dir.path().join("Dockerfile"), &dockerfile).unwrap();
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), context_locals(dir.path()))
        .await
        .unwrap();
    let build = "frontend-error-source-1";
    let frontend = async {
        let mut bridge = LlbBridgeClient::new(channel.clone());
        let request = gw::SolveRequest {
            frontend: "dockerfile.v0".into(),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        };
        let failed = bridge.solve(with_build(build, request)).await.unwrap_err();
        let returned = RpcStatus::decode(failed.details()).expect("typed details");
        bridge
            .r#return(with_build(
                build,
                ReturnRequest {
                    result: None,
                    error: Some(returned.clone()),
                },
            ))
            .await
            .unwrap();
        returned
    };
    let solve = SolveRequest {
        r#ref: build.into(),
        session: session.id.clone(),
        ..Default::default()
    };
    let mut control = ControlClient::new(channel.clone());
    let (solved, returned) = tokio::join!(control.solve(solve), frontend);
    let source = &returned.details[0];
    assert_eq!(
        source.type_url,
        "github.com/moby/buildkit/errdefs.Source+json"
    );
    let source: serde_json::Value = serde_json::from_slice(&source.value).unwrap();
    assert_eq!(source["info"]["filename"], "Dockerfile");
    assert_eq!(source["ranges"][0]["start"]["line"], 2);
    use base64::Engine;
    let data = source["info"]["data"].as_str().unwrap();
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(data, dockerfile.as_bytes());

    let failed = solved.unwrap_err();
    assert!(failed.message().contains("exit code: 3"), "{failed:?}");
    assert_eq!(RpcStatus::decode(failed.details()).unwrap(), returned);
    drop(session);
    daemon.stop().await;
}

/// `context:NAME=input:NAME` (what buildx bake sends for `target:` contexts): a stage built on a
/// frontend input, LLB the client sent with the request, with the image config its
/// `input-metadata:` gives.
#[tokio::test]
async fn a_named_context_from_a_frontend_input_serves_a_stage() {
    use base64::Engine;

    let daemon = TestDaemon::start("frontend-input-context").await;
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = "FROM base\nRUN cat /from-input > /out && echo \"$FROM_CONFIG\" >> /out\n";
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), context_locals(dir.path()))
        .await
        .unwrap();
    let input = crate::helpers::busybox()
        .run(["sh", "-c", "echo built by the input > /from-input"])
        .root();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin:/usr/bin", "FROM_CONFIG=config of the input"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let metadata = serde_json::json!({
        "containerimage.config": base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&config).unwrap()),
    });
    let image = "nodekit.test/api-dockerfile-input:1";
    let solve = SolveRequest {
        r#ref: "frontend-input-context-1".into(),
        session: session.id.clone(),
        frontend: "dockerfile.v0".into(),
        frontend_attrs: BTreeMap::from([
            ("context:base".to_string(), "input:base".to_string()),
            ("input-metadata:base".to_string(), metadata.to_string()),
        ]),
        frontend_inputs: BTreeMap::from([("base".to_string(), crate::helpers::definition(&input))]),
        exporters: vec![Exporter {
            r#type: "image".into(),
            attrs: BTreeMap::from([("name".to_string(), image.to_string())]),
        }],
        ..Default::default()
    };
    let mut control = ControlClient::new(channel.clone());
    control.solve(solve).await.unwrap();
    assert_eq!(
        run_in_image(image, &["cat", "/out"]),
        "built by the input\nconfig of the input\n"
    );

    let missing = SolveRequest {
        r#ref: "frontend-input-context-2".into(),
        session: session.id.clone(),
        frontend: "dockerfile.v0".into(),
        frontend_attrs: BTreeMap::from([("context:base".to_string(), "input:nosuch".to_string())]),
        ..Default::default()
    };
    let error = control.solve(missing).await.unwrap_err();
    assert!(
        error.message().contains("invalid input nosuch for base"),
        "{error:?}"
    );
    drop(session);
    daemon.stop().await;
}

/// `context:NAME=oci-layout://STORE@DIGEST` (buildctl `--oci-layout STORE=DIR`): a stage built
/// on an image of an OCI layout the client serves on its session (here skopeo's copy of the
/// registry's two-platform busybox), its blobs copied from the client, and `--from` it.
#[tokio::test]
async fn a_named_context_from_the_client_s_oci_layout_serves_a_stage() {
    let daemon = TestDaemon::start("frontend-oci-layout").await;
    let env = TestEnv::get();
    let layout = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{}", env.registry_image))
        .arg(format!("oci:{}:v1", layout.path().display()))
        .output()
        .expect("skopeo runs");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let dockerfile = "FROM base\nRUN echo built on the layout > /marker\nCOPY --from=base /bin/busybox /copied\n";
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let mut services = context_locals(dir.path());
    services
        .content_stores
        .insert("oci:layout".to_string(), layout.path().to_path_buf());
    let image = "nodekit.test/api-dockerfile-oci-layout:1";
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([(
            "context:base".to_string(),
            format!("oci-layout://layout@{digest}"),
        )]),
        services: services.clone(),
        exporters: crate::helpers::image_output(image),
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();
    assert_eq!(
        run_in_image(
            image,
            &[
                "sh",
                "-c",
                "cat /marker && cmp /copied /bin/busybox && echo same"
            ]
        ),
        "built on the layout\nsame\n"
    );

    // A digest the layout does not have is named.
    let missing = format!("sha256:{}", "0".repeat(64));
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([(
            "context:base".to_string(),
            format!("oci-layout://layout@{missing}"),
        )]),
        services,
        ..Default::default()
    };
    let error = run_build(&daemon, request).await.0.unwrap_err();
    assert!(
        error.contains(&format!(
            "oci-layout layout: the client's layout has no blob {missing}"
        )),
        "{error}"
    );
    daemon.stop().await;
}

/// `--frontend gateway.v0 --opt source=IMAGE`: the official Dockerfile frontend at a version the
/// built-in one implements is served by it (nothing pulled, one log line saying so); another
/// frontend image runs instead (one that cannot be pulled is named); `[frontend."gateway.v0"]
/// enabled = false` refuses both.
#[tokio::test]
async fn gateway_v0_naming_the_dockerfile_frontend_is_served_by_the_built_in_one() {
    let daemon = TestDaemon::start("frontend-gateway-source").await;
    let dir = context();
    let request = |source: &str| BuildRequest {
        frontend: Some("gateway.v0".into()),
        frontend_attrs: {
            let mut opts = options();
            opts.insert("source".into(), source.into());
            opts
        },
        services: context_locals(dir.path()),
        exporters: crate::helpers::image_output("nodekit.test/api-gateway-source:1"),
        ..Default::default()
    };
    let (built, updates) = run_build(&daemon, request("docker/dockerfile:1.7")).await;
    built.unwrap();
    assert!(
        crate::helpers::logs(&updates).contains("frontend gateway.v0 source=docker/dockerfile:1.7: served by nodekitd's built-in Dockerfile frontend"),
        "{}",
        crate::helpers::logs(&updates)
    );
    assert_eq!(
        run_in_image("nodekit.test/api-gateway-source:1", &[]),
        "howdy: from the context\n"
    );
    // Another image runs (tests/api/frontend_image.rs); one nothing serves is named.
    let error = run_build(&daemon, request("127.0.0.1:1/frontends/other:2"))
        .await
        .0
        .unwrap_err();
    assert!(
        error.contains("frontend image 127.0.0.1:1/frontends/other:2"),
        "{error}"
    );
    daemon.stop().await;

    let disabled = TestDaemon::start_with("frontend-gateway-disabled", |config| {
        config.gateway_frontend = false;
    })
    .await;
    let error = run_build(&disabled, request("docker/dockerfile:1.7"))
        .await
        .0
        .unwrap_err();
    assert!(
        error.contains("frontend gateway.v0 is turned off by the daemon's config"),
        "{error}"
    );
    disabled.stop().await;
}

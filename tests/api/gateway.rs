//! The LLBBridge gateway as buildctl (v0.11+) drives it: Control.Solve without a definition
//! waits while the client pings, solves, reads result files and returns the result to export.

use std::collections::BTreeMap;

use nodekit::session::{ClientSession, SessionServices};
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_client::LlbBridgeClient;
use nodekit_proto::moby::buildkit::v1::frontend::{
    self as gw, result::Result as GwResult, InputsRequest, PingRequest, ReadDirRequest,
    ReadFileRequest, ResolveImageConfigRequest, ReturnRequest, StatFileRequest,
};
use nodekit_proto::moby::buildkit::v1::{Exporter, SolveRequest};
use nodekit_test_support::{TestDaemon, TestEnv};
use tonic::transport::Channel;

use crate::helpers::{busybox, definition, run_in_image, with_build};

/// Drives the frontend side: every LLBBridge call a client-side frontend makes.
async fn frontend(channel: Channel, build: &str) -> String {
    let mut bridge = LlbBridgeClient::new(channel);
    let pong = bridge
        .ping(with_build(build, PingRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(pong.frontend_api_caps.iter().any(|c| c.id == "return"));
    assert!(pong.llb_caps.iter().any(|c| c.id == "exec.mount.bind"));
    assert_eq!(pong.workers.len(), 1);

    let env = TestEnv::get();
    let config = bridge
        .resolve_image_config(with_build(
            build,
            ResolveImageConfigRequest {
                r#ref: env.local_image.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(config.digest.starts_with("sha256:"));
    let config: serde_json::Value = serde_json::from_slice(&config.config).unwrap();
    assert_eq!(config["os"], "linux");

    let state = busybox()
        .run([
            "sh",
            "-c",
            "mkdir -p /out && echo gateway > /out/file && ln -s file /out/link",
        ])
        .root();
    let solve = gw::SolveRequest {
        definition: Some(definition(&state)),
        allow_result_return: true,
        allow_result_array_ref: true,
        ..Default::default()
    };
    let solved = bridge
        .solve(with_build(build, solve))
        .await
        .unwrap()
        .into_inner();
    let Some(GwResult::Ref(reference)) = solved.result.and_then(|r| r.result) else {
        panic!("solve returned no ref");
    };
    let id = reference.id.clone();
    // A client without `allowResultArrayRef` (before `proto.refarray`) gets the bare id.
    let bare = gw::SolveRequest {
        definition: Some(definition(&state)),
        allow_result_return: true,
        ..Default::default()
    };
    let solved = bridge
        .solve(with_build(build, bare))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(solved.result.and_then(|r| r.result), Some(GwResult::RefDeprecated(ref id)) if !id.is_empty()),
        "a bare id"
    );

    let read = ReadFileRequest {
        r#ref: id.clone(),
        file_path: "/out/file".into(),
        ..Default::default()
    };
    let data = bridge
        .read_file(with_build(build, read))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(data, b"gateway\n");
    let listing = ReadDirRequest {
        r#ref: id.clone(),
        dir_path: "/out".into(),
        include_pattern: "l*".into(),
        ..Default::default()
    };
    let entries = bridge
        .read_dir(with_build(build, listing))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(
        entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["link"]
    );
    let stat = StatFileRequest {
        r#ref: id.clone(),
        path: "/out/link".into(),
        ..Default::default()
    };
    let stat = bridge
        .stat_file(with_build(build, stat))
        .await
        .unwrap()
        .into_inner()
        .stat
        .unwrap();
    assert_eq!(stat.linkname, "file");
    let escape = ReadFileRequest {
        r#ref: id.clone(),
        file_path: "/../../../../etc/hostname".into(),
        ..Default::default()
    };
    assert!(
        bridge.read_file(with_build(build, escape)).await.is_err(),
        "reads stay inside the result"
    );
    bridge
        .inputs(with_build(build, InputsRequest {}))
        .await
        .unwrap();

    let result = gw::Result {
        result: Some(GwResult::Ref(reference)),
        ..Default::default()
    };
    bridge
        .r#return(with_build(
            build,
            ReturnRequest {
                result: Some(result),
                error: None,
            },
        ))
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_client_side_frontend_solves_reads_and_returns_through_the_gateway() {
    let daemon = TestDaemon::start("gateway").await;
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), SessionServices::default())
        .await
        .unwrap();
    let build = "gateway-build-1";
    let exporter = Exporter {
        r#type: "image".into(),
        attrs: BTreeMap::from([("name".to_string(), "nodekit.test/api-gateway:1".to_string())]),
    };
    let solve = SolveRequest {
        r#ref: build.into(),
        session: session.id.clone(),
        exporters: vec![exporter],
        ..Default::default()
    };
    let mut control = ControlClient::new(channel.clone());
    let (solved, _) = tokio::join!(control.solve(solve), frontend(channel, build));
    let response = solved.unwrap().into_inner().exporter_response;
    assert!(response["containerimage.digest"].starts_with("sha256:"));
    assert_eq!(
        run_in_image("nodekit.test/api-gateway:1", &["cat", "/out/file"]),
        "gateway\n"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_frontend_error_fails_the_build_with_its_message() {
    let daemon = TestDaemon::start("gateway-error").await;
    let channel = daemon.channel().await;
    let build = "gateway-build-2";
    let mut control = ControlClient::new(channel.clone());
    let returned = async {
        let mut bridge = LlbBridgeClient::new(channel.clone());
        let error = nodekit_proto::google::rpc::Status {
            code: 2,
            message: "frontend says no".into(),
            details: vec![],
        };
        bridge
            .r#return(with_build(
                build,
                ReturnRequest {
                    result: None,
                    error: Some(error),
                },
            ))
            .await
            .unwrap();
    };
    let (solved, _) = tokio::join!(
        control.solve(SolveRequest {
            r#ref: build.into(),
            ..Default::default()
        }),
        returned
    );
    assert!(solved.unwrap_err().message().contains("frontend says no"));
    daemon.stop().await;
}

/// A client-side frontend's solve that names a cache import: the step comes from the cache (its
/// random output is the exporting build's), not from a run.
#[tokio::test]
async fn a_frontends_solve_imports_the_cache_it_names() {
    use nodekit::build::CacheEntry;

    let daemon = TestDaemon::start("gateway-cache-import").await;
    let env = TestEnv::get();
    let nonce = rand::random::<u64>();
    let state = busybox()
        .run([
            "sh",
            "-c",
            &format!("echo {nonce} > /n && head -c 8 /dev/urandom | od -An -tx1 > /random"),
        ])
        .root();
    let image = format!("nodekit.test/api-gateway-cache:{nonce}");
    let reference = format!("{}/nodekit/gateway-cache-{nonce}:1", env.registry);
    let export = nodekit::build::BuildRequest {
        definition: Some(definition(&state)),
        exporters: crate::helpers::image_output(&image),
        cache_exports: vec![CacheEntry::parse(&format!("type=registry,ref={reference}")).unwrap()],
        ..Default::default()
    };
    let (result, _) = crate::helpers::run_build(&daemon, export).await;
    assert!(result.unwrap().contains_key("cache.manifest"));
    let random = run_in_image(&image, &["cat", "/random"]);
    daemon.prune_all().await;
    let mut control = ControlClient::new(daemon.channel().await);
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), SessionServices::default())
        .await
        .unwrap();
    let build = format!("gateway-cache-{nonce}");
    let solve = SolveRequest {
        r#ref: build.clone(),
        session: session.id.clone(),
        ..Default::default()
    };
    let frontend = async {
        let mut bridge = LlbBridgeClient::new(channel.clone());
        let solve = gw::SolveRequest {
            definition: Some(definition(&state)),
            cache_imports: vec![gw::CacheOptionsEntry {
                r#type: "registry".into(),
                attrs: [("ref".to_string(), reference.clone())].into(),
            }],
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        };
        let solved = bridge.solve(with_build(&build, solve)).await.unwrap();
        let Some(GwResult::Ref(result)) = solved.into_inner().result.and_then(|r| r.result) else {
            panic!("solve returned no ref");
        };
        let read = ReadFileRequest {
            r#ref: result.id.clone(),
            file_path: "/random".into(),
            ..Default::default()
        };
        let data = bridge.read_file(with_build(&build, read)).await.unwrap();
        let returned = ReturnRequest {
            result: Some(gw::Result::default()),
            error: None,
        };
        bridge.r#return(with_build(&build, returned)).await.unwrap();
        String::from_utf8(data.into_inner().data).unwrap()
    };
    let (solved, read) = tokio::join!(control.solve(solve), frontend);
    solved.unwrap();
    assert_eq!(read, random, "the step came from the imported cache");
    daemon.stop().await;
    nodekit_test_support::ctr(env, &["images", "rm", &image]);
}

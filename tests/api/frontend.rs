//! The built-in dockerfile.v0 frontend through both API paths: Control.Solve naming the frontend
//! (buildctl <= v0.10) and LLBBridge.Solve naming it inside a gateway build (buildctl >= v0.11).

use std::collections::BTreeMap;

use nodekit::build::BuildRequest;
use nodekit::session::{ClientSession, SessionServices};
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_client::LlbBridgeClient;
use nodekit_proto::moby::buildkit::v1::frontend::{self as gw, ReturnRequest};
use nodekit_proto::moby::buildkit::v1::{Exporter, SolveRequest};
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::helpers::{run_build, run_in_image};

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

fn locals(dir: &std::path::Path) -> SessionServices {
    let locals = BTreeMap::from([
        ("context".to_string(), dir.to_path_buf()),
        ("dockerfile".to_string(), dir.to_path_buf()),
    ]);
    SessionServices {
        locals,
        ..Default::default()
    }
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
        services: locals(dir.path()),
        exporter: crate::helpers::image_output("nodekit.test/api-dockerfile:1"),
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
        services: locals(dir.path()),
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
    let session = ClientSession::start(channel.clone(), locals(dir.path()))
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
        let mut request = tonic::Request::new(gw::SolveRequest {
            frontend: "dockerfile.v0".into(),
            frontend_opt: options(),
            allow_result_return: true,
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("buildkit-controlapi-buildid", build.parse().unwrap());
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
        let mut request = tonic::Request::new(ReturnRequest {
            result: Some(result),
            error: None,
        });
        request
            .metadata_mut()
            .insert("buildkit-controlapi-buildid", build.parse().unwrap());
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

//! Frontend subrequests as docker buildx sends them (`--call check`, `--call targets`): a
//! gateway build whose frontend asks the Dockerfile frontend a question (`requestid`) and gets
//! an answer in the result's metadata, with nothing built.

use std::collections::BTreeMap;

use nodekit::session::{ClientSession, SessionServices};
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_client::LlbBridgeClient;
use nodekit_proto::moby::buildkit::v1::frontend::{self as gw, ReturnRequest};
use nodekit_proto::moby::buildkit::v1::SolveRequest;
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::helpers::with_build;

/// Three build-check warnings (StageNameCasing, FromAsCasing, JSONArgsRecommended), and a step
/// that would fail if it ran.
const DOCKERFILE: &str = "ARG BASE=busybox
# Builder compiles nothing
FROM ${BASE} as Builder
RUN exit 1

# final is what ships
FROM ${BASE} AS final
COPY --from=Builder /etc/hostname /
CMD echo done
";

/// Asks the Dockerfile frontend `requestid` with `extra` options inside a gateway build;
/// returns the answer's metadata (or the error) after the build has ended.
async fn ask(
    daemon: &TestDaemon,
    build: &str,
    requestid: &str,
    extra: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let locals = BTreeMap::from([
        ("context".to_string(), dir.path().to_path_buf()),
        ("dockerfile".to_string(), dir.path().to_path_buf()),
    ]);
    let services = SessionServices {
        locals,
        ..Default::default()
    };
    let channel = daemon.channel().await;
    let session = ClientSession::start(channel.clone(), services)
        .await
        .unwrap();
    let mut options = BTreeMap::from([
        ("requestid".to_string(), requestid.to_string()),
        (
            "build-arg:BASE".to_string(),
            TestEnv::get().local_image.clone(),
        ),
    ]);
    options.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let frontend = async {
        let mut bridge = LlbBridgeClient::new(channel.clone());
        let request = gw::SolveRequest {
            frontend: "dockerfile.v0".into(),
            frontend_opt: options,
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        };
        let answer = bridge.solve(with_build(build, request)).await;
        let answer = answer.map_err(|e| e.message().to_string());
        let result = answer
            .as_ref()
            .ok()
            .and_then(|a| a.get_ref().result.clone());
        let returned = ReturnRequest {
            result,
            error: None,
        };
        bridge.r#return(with_build(build, returned)).await.unwrap();
        answer.map(|a| {
            let metadata = a.into_inner().result.unwrap_or_default().metadata;
            metadata
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
                .collect()
        })
    };
    let solve = SolveRequest {
        r#ref: build.into(),
        session: session.id.clone(),
        ..Default::default()
    };
    let mut control = ControlClient::new(channel.clone());
    let (solved, answer) = tokio::join!(control.solve(solve), frontend);
    solved.unwrap();
    answer
}

#[tokio::test]
async fn a_lint_request_answers_the_checks_without_building() {
    let daemon = TestDaemon::start("subrequest-lint").await;
    let answer = ask(&daemon, "subrequest-lint-1", "frontend.lint", &[])
        .await
        .unwrap();
    assert_eq!(answer["result.statuscode"], "1");
    assert_eq!(answer["version"], "1.0.0");
    let json: serde_json::Value = serde_json::from_str(&answer["result.json"]).unwrap();
    let rules: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ruleName"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["StageNameCasing", "FromAsCasing", "JSONArgsRecommended"],
        "{json}"
    );
    assert_eq!(
        json["warnings"][0]["location"]["ranges"][0]["start"]["line"],
        3
    );
    assert_eq!(json["sources"][0]["filename"], "Dockerfile");
    let text = &answer["result.txt"];
    assert!(
        text.contains("WARNING: StageNameCasing")
            && text.contains("   3 | >>> FROM ${BASE} as Builder"),
        "{text}"
    );

    // The checks can be turned off; a clean file answers status 0.
    let quiet = [("build-arg:BUILDKIT_DOCKERFILE_CHECK", "skip=all")];
    let clean = ask(&daemon, "subrequest-lint-2", "frontend.lint", &quiet)
        .await
        .unwrap();
    assert_eq!(clean["result.statuscode"], "0", "{clean:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_targets_request_lists_the_stages() {
    let daemon = TestDaemon::start("subrequest-targets").await;
    let answer = ask(&daemon, "subrequest-targets-1", "frontend.targets", &[])
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&answer["result.json"]).unwrap();
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["name"], "builder");
    assert_eq!(targets[1]["description"], "is what ships");
    assert_eq!(targets[1]["default"], true);
    assert_eq!(
        answer["result.txt"],
        "TARGET          DESCRIPTION\nbuilder         \nfinal (default) is what ships\n"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn an_outline_request_lists_what_the_target_uses_and_unknown_ones_are_refused() {
    let daemon = TestDaemon::start("subrequest-outline").await;
    let answer = ask(&daemon, "subrequest-outline-1", "frontend.outline", &[])
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&answer["result.json"]).unwrap();
    assert_eq!(json["name"], "final");
    assert_eq!(json["description"], "is what ships");
    assert_eq!(json["args"][0]["name"], "BASE");
    assert_eq!(
        json["args"][0]["value"],
        TestEnv::get().local_image.as_str()
    );
    assert!(
        answer["result.txt"].starts_with("TARGET:      final\nDESCRIPTION: is what ships\n"),
        "{}",
        answer["result.txt"]
    );
    let other = ask(&daemon, "subrequest-outline-2", "frontend.nosuch", &[]).await;
    assert!(
        other
            .unwrap_err()
            .contains("unsupported request frontend.nosuch"),
        "refused"
    );
    daemon.stop().await;
}

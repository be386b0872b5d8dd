//! Entitlements as buildkitd grants them, and the sandbox a step asks for: `RUN
//! --security=insecure` runs privileged only when the daemon allows it and the client asks;
//! otherwise the build fails naming the entitlement before anything runs. ExecOp ulimits and
//! hostname reach the step.

use std::collections::BTreeMap;

use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_test_support::{TestDaemon, TestEnv};
use nodekitd::solver::entitlements::Entitlements;

use crate::helpers::{built_file, busybox, image_output, run_build, run_in_image};

/// Mounting a filesystem needs CAP_SYS_ADMIN: only a privileged step can.
const DOCKERFILE: &str = "ARG BASE
FROM ${BASE}
RUN --security=insecure mkdir -p /m && mount -t tmpfs none /m && echo privileged > /proof
";

fn insecure_build(dir: &std::path::Path, image: &str, allow: &[&str]) -> BuildRequest {
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([(
            "build-arg:BASE".to_string(),
            TestEnv::get().local_image.clone(),
        )]),
        services: SessionServices {
            locals: crate::helpers::dockerfile_dirs(dir),
            ..Default::default()
        },
        exporters: image_output(image),
        entitlements: allow.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

async fn start(test: &str, allowed: &[&str]) -> TestDaemon {
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    TestDaemon::start_with(test, |config| {
        config.entitlements = Entitlements::parse(&allowed).unwrap();
    })
    .await
}

#[tokio::test]
async fn an_insecure_step_needs_the_daemon_to_allow_it_and_the_client_to_ask() {
    let context = tempfile::tempdir().unwrap();
    let image = "nodekit.test/api-insecure:1";

    let strict = start("entitle-strict", &[]).await;
    let (result, _) = run_build(&strict, insecure_build(context.path(), image, &[])).await;
    let error = result.unwrap_err();
    assert!(
        error.contains("security.insecure is not allowed"),
        "{error}"
    );
    let (result, _) = run_build(
        &strict,
        insecure_build(context.path(), image, &["security.insecure"]),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        error.contains(
            "granting entitlement security.insecure is not allowed by build daemon configuration"
        ),
        "{error}"
    );
    strict.stop().await;

    let allowing = start("entitle-allowing", &["security.insecure"]).await;
    let (result, _) = run_build(&allowing, insecure_build(context.path(), image, &[])).await;
    let error = result.unwrap_err();
    assert!(
        error.contains("security.insecure is not allowed"),
        "{error}"
    );
    let (result, _) = run_build(
        &allowing,
        insecure_build(context.path(), image, &["security.insecure"]),
    )
    .await;
    result.unwrap();
    assert_eq!(run_in_image(image, &["cat", "/proof"]), "privileged\n");
    allowing.stop().await;
}

#[tokio::test]
async fn a_steps_ulimits_and_hostname_reach_it() {
    let daemon = TestDaemon::start("exec-sandbox").await;
    let image = "nodekit.test/api-sandbox:1";
    let state = busybox()
        .run([
            "sh",
            "-c",
            "{ ulimit -Sn; ulimit -Hn; hostname; } > /limits",
        ])
        .add_ulimit("nofile", 2048, 4096)
        .hostname("builder-7")
        .root();
    assert_eq!(
        built_file(&daemon, &state, image, "/limits").await,
        "2048\n4096\nbuilder-7\n"
    );
    daemon.stop().await;
}

/// `[dns]`: the configured name servers and search domains replace the host's in every step.
#[tokio::test]
async fn dns_settings_reach_every_steps_resolv_conf() {
    let daemon = TestDaemon::start_with("dns", |config| {
        config.worker.dns = nodekitd::worker::exec::Dns {
            nameservers: vec!["192.0.2.53".into()],
            search_domains: vec!["builds.example".into()],
            options: Vec::new(),
        };
    })
    .await;
    let image = "nodekit.test/api-dns:1";
    let state = busybox()
        .run([
            "sh",
            "-c",
            "grep -E '^(nameserver|search)' /etc/resolv.conf > /resolv",
        ])
        .root();
    assert_eq!(
        built_file(&daemon, &state, image, "/resolv").await,
        "nameserver 192.0.2.53\nsearch builds.example\n"
    );
    daemon.stop().await;
}

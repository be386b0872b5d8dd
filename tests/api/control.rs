//! Control RPCs: ListWorkers, Info, DiskUsage, Prune, and refusals of bad requests.

use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::{
    CacheOptions, CacheOptionsEntry, DiskUsageRequest, InfoRequest, ListWorkersRequest,
    SolveRequest,
};
use nodekit_proto::pb;
use nodekit_test_support::{TestDaemon, TestEnv};

const LABEL: &str = "org.mobyproject.buildkit.worker.";

#[tokio::test]
async fn list_workers_describes_the_containerd_worker() {
    let daemon = TestDaemon::start("workers").await;
    let mut control = ControlClient::new(daemon.channel().await);
    let workers = control
        .list_workers(ListWorkersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .record;
    assert_eq!(workers.len(), 1);
    let worker = &workers[0];
    assert!(!worker.id.is_empty());
    assert_eq!(worker.labels[&format!("{LABEL}executor")], "containerd");
    assert_eq!(worker.labels[&format!("{LABEL}snapshotter")], "overlayfs");
    assert_eq!(
        worker.labels[&format!("{LABEL}containerd.namespace")],
        TestEnv::get().namespace
    );
    assert!(!worker.labels[&format!("{LABEL}containerd.uuid")].is_empty());
    assert!(!worker.platforms.is_empty());
    assert!(!worker.gc_policy.is_empty());

    // The same root keeps the same worker ID.
    let id = worker.id.clone();
    drop(control);
    let root = daemon.root.clone();
    daemon.stop().await;
    let again = nodekitd::api::load_or_create_worker_id(&root.join("root")).unwrap();
    assert_eq!(again, id);
}

/// `[worker.containerd] platforms` and `labels`, as buildkitd: what `debug workers` shows.
#[tokio::test]
async fn configured_platforms_and_labels_are_what_the_worker_advertises() {
    let daemon = TestDaemon::start_with("advertised", |config| {
        config.advertised.platforms = Some(vec![
            nodekitd::oci::Platform::parse("linux/s390x").unwrap(),
            nodekitd::oci::Platform::parse("linux/arm/v6").unwrap(),
        ]);
        config.advertised.labels = [("team".to_string(), "platform".to_string())].into();
    })
    .await;
    let mut control = ControlClient::new(daemon.channel().await);
    let workers = control
        .list_workers(ListWorkersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .record;
    let platforms: Vec<_> = workers[0]
        .platforms
        .iter()
        .map(|p| format!("{}/{}/{}", p.os, p.architecture, p.variant))
        .collect();
    assert_eq!(platforms, ["linux/s390x/", "linux/arm/v6"]);
    assert_eq!(workers[0].labels["team"], "platform");
    assert_eq!(workers[0].labels[&format!("{LABEL}executor")], "containerd");
    drop(control);
    daemon.stop().await;
}

#[tokio::test]
async fn info_disk_usage_and_prune_answer() {
    let daemon = TestDaemon::start("info").await;
    let mut control = ControlClient::new(daemon.channel().await);
    let info = control
        .info(InfoRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.buildkit_version.unwrap().package, "nodekit");
    control
        .disk_usage(DiskUsageRequest::default())
        .await
        .unwrap();
    daemon.prune_all().await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_malformed_definition_is_refused_clearly() {
    let daemon = TestDaemon::start("malformed").await;
    let mut control = ControlClient::new(daemon.channel().await);
    let garbage = pb::Definition {
        def: vec![vec![0xff, 0x01, 0x02]],
        ..Default::default()
    };
    let error = control
        .solve(SolveRequest {
            r#ref: "malformed".into(),
            definition: Some(garbage),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
    assert!(error.message().contains("op 0"), "{}", error.message());

    // The daemon keeps serving.
    control
        .list_workers(ListWorkersRequest::default())
        .await
        .unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn an_unknown_exporter_or_frontend_is_refused() {
    let daemon = TestDaemon::start("refusals").await;
    let mut control = ControlClient::new(daemon.channel().await);
    let error = control
        .solve(SolveRequest {
            r#ref: "exporter".into(),
            exporter_deprecated: "gha".into(),
            definition: Some(Default::default()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unimplemented);
    assert!(error.message().contains("gha"), "{}", error.message());
    let error = control
        .solve(SolveRequest {
            r#ref: "frontend".into(),
            frontend: "nosuch.v0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(error.message().contains("nosuch.v0"), "{}", error.message());

    // What nodekitd would otherwise drop: a cache export, an attestation.
    let error = control
        .solve(SolveRequest {
            r#ref: "cache-export".into(),
            definition: Some(Default::default()),
            cache: Some(CacheOptions {
                exports: vec![CacheOptionsEntry {
                    r#type: "gha".into(),
                    attrs: [("scope".to_string(), "x".to_string())].into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains(
            "failed to configure gha cache exporter: nodekitd keeps no gha cache backend"
        ),
        "{}",
        error.message()
    );
    let error = control
        .solve(SolveRequest {
            r#ref: "attest".into(),
            frontend: "dockerfile.v0".into(),
            frontend_attrs: [("attest:sbom".to_string(), String::new())].into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        error.message().contains("attest:sbom"),
        "{}",
        error.message()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_restart_releases_the_leases_a_killed_run_left() {
    let daemon = TestDaemon::start("leftovers").await;
    let mut control = ControlClient::new(daemon.channel().await);
    let workers = control
        .list_workers(ListWorkersRequest::default())
        .await
        .unwrap();
    let id = workers.into_inner().record[0].id.clone();
    let dir = daemon.root.clone();
    daemon.stop().await;

    // What a killed run leaves: a lease of its own.
    let env = TestEnv::get();
    let worker = env.worker("leftovers").await;
    let owner = format!("nodekitd-{id}");
    let left =
        nodekitd::worker::Lease::create(worker.channel().clone(), worker.ctx(), "left", &owner)
            .await
            .unwrap();
    let left_id = left.id().to_string();
    std::mem::forget(left); // as if the process had died

    let restarted = TestDaemon::start_in("leftovers", dir).await;
    let leases = nodekit_test_support::Inventory::take(&worker).await.leases;
    assert!(
        !leases.contains(&left_id),
        "{left_id} is still there: {leases:?}"
    );
    restarted.stop().await;
}

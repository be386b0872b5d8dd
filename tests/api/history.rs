//! Build history: `ListenBuildHistory` (what `buildctl debug histories` and buildx's history
//! commands read), `UpdateBuildHistory` (pin, delete: `buildctl prune-histories`), a finished
//! build's logs through `Status` and the content service, records kept across restarts and
//! expired by `[history]`.

use std::time::Duration;

use futures::StreamExt;
use nodekit::build::BuildRequest;
use nodekit_proto::containerd::services::content::v1::content_client::ContentClient;
use nodekit_proto::containerd::services::content::v1::ReadContentRequest;
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::{
    BuildHistoryEvent, BuildHistoryEventType, BuildHistoryRecord, BuildHistoryRequest,
    SolveRequest, StatusRequest, StatusResponse, UpdateBuildHistoryRequest,
};
use nodekit_test_support::TestDaemon;
use tonic::transport::Channel;

use crate::helpers::{busybox, definition, logs, run_build};

fn request(build_ref: &str, script: &str) -> BuildRequest {
    let state = busybox().run(["sh", "-c", script]).root();
    BuildRequest {
        definition: Some(definition(&state)),
        build_ref: build_ref.into(),
        ..Default::default()
    }
}

/// Every event a `ListenBuildHistory` call with `request` sends until it ends.
async fn history(channel: Channel, request: BuildHistoryRequest) -> Vec<BuildHistoryEvent> {
    let mut control = ControlClient::new(channel);
    let response = control.listen_build_history(request).await.unwrap();
    assert!(response
        .metadata()
        .contains_key("buildkit-current-timestamp"));
    let mut stream = response.into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    events
}

/// The stored records, as `buildctl debug histories` asks for them.
async fn records(channel: Channel) -> Vec<BuildHistoryRecord> {
    let listing = BuildHistoryRequest {
        early_exit: true,
        ..Default::default()
    };
    history(channel, listing)
        .await
        .into_iter()
        .map(|event| {
            assert_eq!(event.r#type, BuildHistoryEventType::Complete as i32);
            event.record.unwrap()
        })
        .collect()
}

fn record<'a>(records: &'a [BuildHistoryRecord], build_ref: &str) -> &'a BuildHistoryRecord {
    records
        .iter()
        .find(|r| r.r#ref == build_ref)
        .unwrap_or_else(|| panic!("no record of {build_ref} in {records:?}"))
}

async fn update(channel: Channel, update: UpdateBuildHistoryRequest) -> Result<(), tonic::Status> {
    let mut control = ControlClient::new(channel);
    control.update_build_history(update).await.map(|_| ())
}

#[tokio::test]
async fn finished_builds_are_listed_with_their_outcome_and_steps() {
    let daemon = TestDaemon::start("history-list").await;
    assert!(records(daemon.channel().await).await.is_empty());
    let (ok, _) = run_build(&daemon, request("hist-ok", "echo from-the-step")).await;
    ok.unwrap();
    let (failed, _) = run_build(&daemon, request("hist-failed", "exit 3")).await;
    assert!(failed.is_err());
    // The same step again: its record counts it cached.
    run_build(&daemon, request("hist-cached", "echo from-the-step"))
        .await
        .0
        .unwrap();

    // An internal build (buildx's own) is not recorded.
    let internal = SolveRequest {
        r#ref: "hist-internal".into(),
        definition: Some(definition(&busybox())),
        internal: true,
        ..Default::default()
    };
    let mut control = ControlClient::new(daemon.channel().await);
    control.solve(internal).await.unwrap();

    let found = records(daemon.channel().await).await;
    assert_eq!(found.len(), 3, "{found:?}");
    let ok = record(&found, "hist-ok");
    assert!(ok.error.is_none());
    assert!(ok.created_at.is_some() && ok.completed_at.is_some());
    assert_eq!(ok.num_total_steps, 2, "{ok:?}");
    assert_eq!(ok.num_completed_steps, 2);
    assert_eq!(ok.num_cached_steps, 0);
    assert_eq!(
        ok.logs.as_ref().unwrap().media_type,
        "application/vnd.buildkit.status.v0"
    );
    let failed = record(&found, "hist-failed");
    let error = failed.error.as_ref().expect("the failure is kept");
    assert!(error.message.contains("exit code: 3"), "{error:?}");
    // The RUN step is cached (the image source is resolved each time).
    let cached = record(&found, "hist-cached");
    assert_eq!(cached.num_cached_steps, 1, "{cached:?}");

    // Filters and the limit, as buildkitd reads them.
    let failures = BuildHistoryRequest {
        early_exit: true,
        filter: vec!["status==error".into()],
        ..Default::default()
    };
    let failures = history(daemon.channel().await, failures).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].record.as_ref().unwrap().r#ref, "hist-failed");
    let newest = BuildHistoryRequest {
        early_exit: true,
        limit: 1,
        ..Default::default()
    };
    let newest = history(daemon.channel().await, newest).await;
    assert_eq!(newest[0].record.as_ref().unwrap().r#ref, "hist-cached");
    assert_eq!(newest.len(), 1);
    daemon.stop().await;
}

#[tokio::test]
async fn a_finished_build_s_logs_are_read_back() {
    let daemon = TestDaemon::start("history-logs").await;
    let (result, updates) = run_build(&daemon, request("hist-logs", "echo said-by-the-step")).await;
    result.unwrap();
    assert!(logs(&updates).contains("said-by-the-step"));

    // `buildctl debug logs REF` asks Status for a finished build.
    let mut control = ControlClient::new(daemon.channel().await);
    let status = StatusRequest {
        r#ref: "hist-logs".into(),
    };
    let replayed: Vec<StatusResponse> = control
        .status(status)
        .await
        .unwrap()
        .into_inner()
        .map(|update| update.unwrap())
        .collect()
        .await;
    assert!(logs(&replayed).contains("said-by-the-step"));

    // buildx reads the record's log blob through the content service.
    let found = records(daemon.channel().await).await;
    let descriptor = record(&found, "hist-logs").logs.clone().unwrap();
    let mut content = ContentClient::new(daemon.channel().await);
    let read = ReadContentRequest {
        digest: descriptor.digest.clone(),
        ..Default::default()
    };
    let mut blob = Vec::new();
    let mut stream = content.read(read).await.unwrap().into_inner();
    while let Some(chunk) = stream.next().await {
        blob.extend_from_slice(&chunk.unwrap().data);
    }
    assert_eq!(blob.len() as i64, descriptor.size);
    assert!(String::from_utf8_lossy(&blob).contains("said-by-the-step"));
    let unknown = ReadContentRequest {
        digest: format!("sha256:{}", "0".repeat(64)),
        ..Default::default()
    };
    let missing = content.read(unknown).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    daemon.stop().await;
}

#[tokio::test]
async fn records_are_pinned_deleted_and_kept_across_restarts() {
    let daemon = TestDaemon::start("history-update").await;
    for build_ref in ["hist-a", "hist-b"] {
        run_build(&daemon, request(build_ref, "true"))
            .await
            .0
            .unwrap();
    }
    let pin = UpdateBuildHistoryRequest {
        r#ref: "hist-a".into(),
        pinned: true,
        ..Default::default()
    };
    update(daemon.channel().await, pin).await.unwrap();
    let found = records(daemon.channel().await).await;
    let pinned = record(&found, "hist-a");
    assert!(pinned.pinned);
    assert_eq!(pinned.generation, 1);

    // What `buildctl prune-histories` does: delete every unpinned record.
    let delete = |build_ref: &str| UpdateBuildHistoryRequest {
        r#ref: build_ref.into(),
        delete: true,
        ..Default::default()
    };
    update(daemon.channel().await, delete("hist-b"))
        .await
        .unwrap();
    let missing = update(daemon.channel().await, delete("hist-b")).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);

    let dir = daemon.root.clone();
    daemon.stop().await;
    let daemon = TestDaemon::start_in("history-update", dir).await;
    let found = records(daemon.channel().await).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(record(&found, "hist-a").pinned);
    daemon.stop().await;
}

#[tokio::test]
async fn listeners_see_builds_start_and_complete() {
    let daemon = TestDaemon::start("history-live").await;
    let mut control = ControlClient::new(daemon.channel().await);
    let mut live = control
        .listen_build_history(BuildHistoryRequest::default())
        .await
        .unwrap()
        .into_inner();
    run_build(&daemon, request("hist-live", "true"))
        .await
        .0
        .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(30), live.next()).await;
        let event = next.expect("an event in time").unwrap().unwrap();
        assert_eq!(event.record.unwrap().r#ref, "hist-live");
        kinds.push(event.r#type);
    }
    assert_eq!(
        kinds,
        [
            BuildHistoryEventType::Started as i32,
            BuildHistoryEventType::Complete as i32
        ]
    );
    daemon.stop().await;
}

#[tokio::test]
async fn old_records_beyond_the_configured_count_expire() {
    let daemon = TestDaemon::start_with("history-expiry", |config| {
        config.cache.history = cachestore::HistoryRetention {
            max_age: Duration::ZERO,
            max_entries: 2,
        };
    })
    .await;
    for build_ref in ["hist-1", "hist-2", "hist-3", "hist-4"] {
        run_build(&daemon, request(build_ref, "true"))
            .await
            .0
            .unwrap();
    }
    let mut kept: Vec<String> = records(daemon.channel().await)
        .await
        .into_iter()
        .map(|r| r.r#ref)
        .collect();
    kept.sort();
    assert_eq!(kept, ["hist-3", "hist-4"]);
    daemon.stop().await;
}

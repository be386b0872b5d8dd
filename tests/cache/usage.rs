//! `du` and `prune` of one daemon's cache through the Control API.

use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::{DiskUsageRequest, PruneRequest, UsageRecord};
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::common::{build_dockerfile, context, unique};

pub(crate) async fn disk_usage(daemon: &TestDaemon, filter: &[&str]) -> Vec<UsageRecord> {
    let request = DiskUsageRequest {
        filter: filter.iter().map(|f| f.to_string()).collect(),
        age_limit: 0,
    };
    ControlClient::new(daemon.channel().await)
        .disk_usage(request)
        .await
        .expect("du")
        .into_inner()
        .record
}

pub(crate) async fn prune(daemon: &TestDaemon, request: PruneRequest) -> Vec<UsageRecord> {
    let mut stream = ControlClient::new(daemon.channel().await)
        .prune(request)
        .await
        .expect("prune")
        .into_inner();
    let mut removed = Vec::new();
    while let Some(record) = stream.message().await.expect("a pruned record") {
        removed.push(record);
    }
    removed
}

#[tokio::test]
async fn du_lists_the_steps_and_prune_removes_what_it_selects() {
    let daemon = TestDaemon::start("cache-usage").await;
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE > /one\nRUN echo two > /two\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    let nonce = unique();
    let args = [("NONCE", nonce.as_str())];
    build_dockerfile(&daemon, dir.path(), &args, None)
        .await
        .result
        .expect("build");
    let records = disk_usage(&daemon, &[]).await;
    assert_eq!(records.len(), 2, "{records:#?}");
    let two = records
        .iter()
        .find(|r| r.description.contains("echo two"))
        .expect("a record named after its step");
    assert_eq!(two.record_type, "regular");
    assert!(two.size > 0 && !two.in_use && two.created_at.is_some());
    assert_eq!(two.parents.len(), 1, "built on the first RUN's record");

    let filtered = disk_usage(&daemon, &["description~=echo two"]).await;
    assert_eq!(filtered.len(), 1);
    let bad = ControlClient::new(daemon.channel().await)
        .disk_usage(DiskUsageRequest {
            filter: vec!["description~=(".into()],
            age_limit: 0,
        })
        .await;
    assert!(bad.is_err(), "a bad filter is an error");

    let removed = prune(
        &daemon,
        PruneRequest {
            filter: vec![format!("id=={}", two.id)],
            all: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].id, two.id);
    let rebuilt = build_dockerfile(&daemon, dir.path(), &args, None).await;
    rebuilt.result.as_ref().expect("rebuild");
    assert_eq!(
        rebuilt.ran().len(),
        1,
        "only the pruned step runs: {:?}",
        rebuilt.ran()
    );

    let all = prune(
        &daemon,
        PruneRequest {
            all: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 2);
    assert!(disk_usage(&daemon, &[]).await.is_empty());
    daemon.stop().await;
}

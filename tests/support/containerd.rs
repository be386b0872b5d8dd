use std::collections::BTreeSet;
use std::process::Output;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::ListSnapshotsRequest;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    ListContainersRequest, ListImagesRequest, ListRequest, ListResourcesRequest, ListTasksRequest,
    ReadContentRequest,
};
use nodekitd::oci::chain_ids;
use nodekitd::worker::cache_leases::CACHE_OWNER_LABEL;
use nodekitd::worker::{leases::OWNER_LABEL, Worker};

use crate::TestEnv;

/// Runs `ctr` against the test containerd in its namespace, as the kubelet's tools would.
pub fn ctr(env: &TestEnv, args: &[&str]) -> Output {
    ctr_in(env, &env.namespace, args)
}

/// Runs `ctr` against the test containerd in `namespace`.
pub fn ctr_in(env: &TestEnv, namespace: &str, args: &[&str]) -> Output {
    std::process::Command::new("ctr")
        .arg("--address")
        .arg(&env.socket)
        .arg("-n")
        .arg(namespace)
        .args(args)
        .output()
        .expect("ctr runs")
}

/// Output of `cmd` in a container of `image` (`ctr run --rm`, for `platform` when given), as a
/// kubelet-side check of an exported image. containerd can lose the output of a process that
/// exits right after writing it (containerd/containerd#770, concourse/concourse#6775), so an
/// empty output of a successful run is retried a few times before it is believed.
pub fn run_in_image(image: &str, platform: Option<&str>, cmd: &[&str]) -> String {
    let env = TestEnv::get();
    run_in_namespace(&env.namespace, image, platform, cmd)
}

/// As [`run_in_image`], with an image of containerd's `namespace`.
pub fn run_in_namespace(
    namespace: &str,
    image: &str,
    platform: Option<&str>,
    cmd: &[&str],
) -> String {
    let env = TestEnv::get();
    let mut stdout = String::new();
    for _ in 0..3 {
        let id = format!("nodekit-test-{}", rand::random::<u32>());
        let mut args = vec!["run", "--rm"];
        if let Some(platform) = platform {
            args.extend(["--platform", platform]);
        }
        args.extend([image, id.as_str()]);
        args.extend_from_slice(cmd);
        let output = ctr_in(env, namespace, &args);
        assert!(
            output.status.success(),
            "ctr run {image} ({platform:?}): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !stdout.is_empty() {
            break;
        }
    }
    stdout
}

/// What nodekit could have left behind in containerd.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Leases labelled as nodekit's.
    pub leases: Vec<String>,
    /// Containers labelled as nodekit's.
    pub containers: Vec<String>,
    pub tasks: Vec<String>,
    /// Snapshots that are not committed (active or view).
    pub uncommitted_snapshots: Vec<String>,
    /// Committed snapshots that no image's layer chain names.
    pub orphan_snapshots: Vec<String>,
}

/// Snapshot names of cache mounts (`RUN --mount=type=cache`).
const CACHE_MOUNT_PREFIX: &str = "nodekit-cache-";

impl Inventory {
    pub async fn take(worker: &Worker) -> Inventory {
        let channel = worker.channel().clone();
        let ctx = worker.ctx();
        let leases = LeasesClient::new(channel.clone())
            .list(ctx.request(ListRequest {
                filters: vec![format!("labels.\"{OWNER_LABEL}\"")],
            }))
            .await
            .expect("lease list")
            .into_inner()
            .leases;
        let containers = ContainersClient::new(channel.clone())
            .list(ctx.request(ListContainersRequest {
                filters: vec![format!("labels.\"{OWNER_LABEL}\"")],
            }))
            .await
            .expect("container list")
            .into_inner()
            .containers;
        let tasks = TasksClient::new(channel.clone())
            .list(ctx.request(ListTasksRequest::default()))
            .await
            .expect("task list")
            .into_inner()
            .tasks;
        let snapshots = SnapshotsClient::new(channel.clone())
            .list(ctx.request(ListSnapshotsRequest {
                snapshotter: worker.snapshotter().to_string(),
                filters: vec![],
            }))
            .await
            .expect("snapshot list")
            .into_inner();
        let mut all = Vec::new();
        let mut snapshots = snapshots;
        while let Some(batch) = snapshots.message().await.expect("snapshot list") {
            all.extend(batch.info);
        }
        let mut chains = image_chains(worker).await;
        // The build cache keeps its records' snapshots (and so their parents) on purpose.
        let cached = cache_lease_snapshots(worker).await;
        chains.extend(ancestors(&all, |s| cached.contains(&s.name)));
        chains.extend(cached);
        // What cache mounts start from stays too: their snapshots are the parents' children.
        chains.extend(ancestors(&all, |s| s.name.starts_with(CACHE_MOUNT_PREFIX)));
        const COMMITTED: i32 = 3;
        Inventory {
            leases: leases.into_iter().map(|l| l.id).collect(),
            containers: containers.into_iter().map(|c| c.id).collect(),
            tasks: tasks.into_iter().map(|t| t.id).collect(),
            uncommitted_snapshots: all
                .iter()
                // Cache mounts are kept on purpose (GC roots, reused by later builds).
                .filter(|s| s.kind != COMMITTED && !s.name.starts_with(CACHE_MOUNT_PREFIX))
                .map(|s| s.name.clone())
                .collect(),
            orphan_snapshots: all
                .iter()
                .filter(|s| s.kind == COMMITTED && !chains.contains(&s.name))
                .map(|s| s.name.clone())
                .collect(),
        }
    }

    /// Waits (up to 10 s) until nothing is left, else fails. containerd's garbage collector
    /// runs less often as its database grows (its pause is kept to 2 % of the time), so each
    /// look is preceded by a collection of our own asking.
    pub async fn wait_clean(worker: &Worker) {
        for _ in 0..50 {
            collect_garbage(worker).await;
            if Inventory::take(worker).await.is_clean() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Inventory::take(worker).await.assert_clean();
    }

    fn is_clean(&self) -> bool {
        self.leases.is_empty()
            && self.containers.is_empty()
            && self.tasks.is_empty()
            && self.uncommitted_snapshots.is_empty()
            && self.orphan_snapshots.is_empty()
    }

    pub fn assert_clean(&self) {
        assert!(
            self.is_clean(),
            "nodekit left objects in containerd: {self:#?}"
        );
    }
}

/// Every chain ID of every platform manifest (whose config is present) of every image.
async fn image_chains(worker: &Worker) -> BTreeSet<String> {
    let images = ImagesClient::new(worker.channel().clone())
        .list(worker.ctx().request(ListImagesRequest::default()))
        .await
        .expect("image list")
        .into_inner()
        .images;
    let mut chains = BTreeSet::new();
    for image in images {
        let Some(target) = image.target else { continue };
        for config in configs_below(worker, &target.digest).await {
            let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            chains.extend(chain_ids(&diff_ids));
        }
    }
    chains
}

/// The image configs reachable from an index or manifest blob (missing blobs are skipped).
async fn configs_below(worker: &Worker, digest: &str) -> Vec<serde_json::Value> {
    let Some(blob) = read_json(worker, digest).await else {
        return Vec::new();
    };
    if let Some(manifests) = blob["manifests"].as_array() {
        let mut configs = Vec::new();
        for m in manifests {
            if let Some(d) = m["digest"].as_str() {
                configs.extend(Box::pin(configs_below(worker, d)).await);
            }
        }
        return configs;
    }
    match blob["config"]["digest"].as_str() {
        Some(config) => read_json(worker, config).await.into_iter().collect(),
        None => Vec::new(),
    }
}

async fn read_json(worker: &Worker, digest: &str) -> Option<serde_json::Value> {
    let mut stream = ContentClient::new(worker.channel().clone())
        .read(worker.ctx().request(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        }))
        .await
        .ok()?
        .into_inner();
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = stream.message().await {
        bytes.extend(chunk.data);
    }
    serde_json::from_slice(&bytes).ok()
}

/// Every snapshot below the snapshots `kept` selects.
fn ancestors(
    all: &[containerd_client::services::v1::snapshots::Info],
    kept: impl Fn(&containerd_client::services::v1::snapshots::Info) -> bool,
) -> BTreeSet<String> {
    let parent_of: std::collections::HashMap<&str, &str> = all
        .iter()
        .map(|s| (s.name.as_str(), s.parent.as_str()))
        .collect();
    let mut below = BTreeSet::new();
    for snapshot in all.iter().filter(|s| kept(s)) {
        let mut parent = snapshot.parent.as_str();
        while !parent.is_empty() && below.insert(parent.to_string()) {
            parent = parent_of.get(parent).copied().unwrap_or_default();
        }
    }
    below
}

/// The snapshots nodekit's build-cache leases hold.
async fn cache_lease_snapshots(worker: &Worker) -> BTreeSet<String> {
    let mut client = LeasesClient::new(worker.channel().clone());
    let leases = client
        .list(worker.ctx().request(ListRequest {
            filters: vec![format!("labels.\"{CACHE_OWNER_LABEL}\"")],
        }))
        .await
        .expect("lease list")
        .into_inner()
        .leases;
    let mut snapshots = BTreeSet::new();
    for lease in leases {
        let resources = client
            .list_resources(worker.ctx().request(ListResourcesRequest { id: lease.id }))
            .await
            .expect("lease resources")
            .into_inner()
            .resources;
        snapshots.extend(
            resources
                .into_iter()
                .filter(|r| r.r#type.starts_with("snapshots/"))
                .map(|r| r.id),
        );
    }
    snapshots
}

/// The ids of the leases labelled `label=value` (through ctr, as an operator would look).
pub fn leases_labelled(label: &str, value: &str) -> std::collections::HashSet<String> {
    leases_labelled_in(&TestEnv::get().namespace, label, value)
}

/// As [`leases_labelled`], in containerd's `namespace`.
pub fn leases_labelled_in(
    namespace: &str,
    label: &str,
    value: &str,
) -> std::collections::HashSet<String> {
    let output = ctr_in(TestEnv::get(), namespace, &["leases", "ls"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(&format!("{label}={value}")))
        .filter_map(|line| line.split_whitespace().next().map(String::from))
        .collect()
}

/// The ids of the containers the test daemon whose directory is `dir` owns (by the owner label
/// of its worker id), so other builds in flight on the same containerd do not count.
pub async fn daemon_containers(worker: &Worker, dir: &std::path::Path) -> Vec<String> {
    let id = nodekitd::api::load_or_create_worker_id(&dir.join("root")).unwrap();
    let list = ListContainersRequest {
        filters: vec![format!("labels.\"{OWNER_LABEL}\"==nodekitd-{id}")],
    };
    let listed = ContainersClient::new(worker.channel().clone())
        .list(worker.ctx().request(list))
        .await
        .unwrap()
        .into_inner();
    listed.containers.into_iter().map(|c| c.id).collect()
}

/// Runs containerd's garbage collector now: deleting a lease with `sync` waits for a collection.
async fn collect_garbage(worker: &Worker) {
    use containerd_client::services::v1::{CreateRequest, DeleteRequest};
    let mut leases = LeasesClient::new(worker.channel().clone());
    let id = format!("nodekit-test-gc-{}", rand::random::<u64>());
    let created = leases
        .create(worker.ctx().request(CreateRequest {
            id: id.clone(),
            labels: Default::default(),
        }))
        .await;
    if created.is_ok() {
        let _ = leases
            .delete(worker.ctx().request(DeleteRequest { id, sync: true }))
            .await;
    }
}

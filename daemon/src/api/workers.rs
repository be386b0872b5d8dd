//! The one worker nodekitd offers: the node's containerd, described as buildkitd describes its
//! containerd worker so that `buildctl debug workers` reads the same.

use std::path::Path;

use nodekit_proto::moby::buildkit::v1::types::{BuildkitVersion, GcPolicy, WorkerRecord};

use crate::config::{CacheConfig, Config};

use crate::worker::Worker;

const LABEL_PREFIX: &str = "org.mobyproject.buildkit.worker.";
const ID_FILE: &str = "worker-id";

/// The worker ID kept in `<root>/worker-id`, created on first start.
pub fn load_or_create_worker_id(root: &Path) -> std::io::Result<String> {
    let path = root.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = new_id();
            std::fs::write(&path, &id)?;
            Ok(id)
        }
    }
}

/// 25 characters of lower-case base-36, like BuildKit's identity IDs.
fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..25)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The worker as `debug workers` and frontends see it: the configured labels and platforms
/// (`[worker.containerd] labels`, `platforms`) over what the worker finds itself.
pub fn worker_record(id: &str, worker: &Worker, config: &Config) -> WorkerRecord {
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let labels = [
        ("executor", "containerd".to_string()),
        ("snapshotter", worker.snapshotter().to_string()),
        ("hostname", hostname),
        ("network", "host".to_string()),
        ("containerd.namespace", worker.ctx().namespace().to_string()),
        ("containerd.uuid", worker.containerd().uuid.clone()),
    ];
    let platforms = match &config.advertised.platforms {
        Some(configured) => configured.clone(),
        None => worker.config().emulation.runnable_platforms(),
    };
    WorkerRecord {
        id: id.to_string(),
        labels: labels
            .into_iter()
            .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), v))
            .chain(config.advertised.labels.clone())
            .collect(),
        platforms: platforms.iter().map(wire_platform).collect(),
        gc_policy: gc_policies(&config.cache, &config.root),
        buildkit_version: Some(BuildkitVersion {
            package: "nodekit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            revision: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub use crate::frontend::dockerfile::convert::wire_platform;

/// The GC rules in force, as `debug workers` shows them: the configured ones, else buildkitd's
/// defaults for the disk the daemon's root is on (none when GC is off).
fn gc_policies(cache: &CacheConfig, root: &Path) -> Vec<GcPolicy> {
    if !cache.gc {
        return Vec::new();
    }
    let disk = crate::solver::cache::disk_stats(root);
    let policies = if cache.policies.is_empty() {
        cachestore::GcPolicy::defaults(disk)
    } else {
        cache.policies.clone()
    };
    let bytes = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    policies
        .iter()
        .map(|p| p.to_rule(disk))
        .map(|rule| GcPolicy {
            all: rule.all,
            keep_duration: bytes(rule.keep_duration.as_nanos() as u64),
            filters: rule.filters,
            reserved_space: bytes(rule.reserved_space),
            max_used_space: bytes(rule.max_used_space),
            min_free_space: bytes(rule.min_free_space),
        })
        .collect()
}

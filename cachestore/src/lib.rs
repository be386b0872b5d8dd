//! nodekit's content-addressed build cache index.
//!
//! A pure library: keys, records, the redb index, GC policy, disk usage and counters. No gRPC and
//! no containerd in here; the daemon adapts it to the solver and to containerd:
//!
//! - [`key`]: [`CacheKey`] and the canonical, versioned [`KeyEncoder`] an op is keyed with.
//! - [`tree`]: the Merkle digest of a directory tree (what a `local://` source keys on).
//! - [`record`]: [`Record`], what a key resolves to (snapshot, lease, layer, size, times, ...).
//! - [`store`]: [`Store`], the redb file: lookups, inserts, removals, reconciliation.
//! - [`gc`]: buildkitd's GC policies and prune options, the plan (least recently used first,
//!   children before parents) and the sweep in bounded write transactions.
//! - [`history`]: finished builds' records (BuildKit's build history) and their logs, with
//!   buildkitd's retention.
//! - [`usage`]: `du` records (in use, shared, parents).
//! - [`filter`]: containerd-style filters as buildctl sends them (`type==regular`, `id~=^ab`).
//! - [`metrics`]: hit/miss and GC counters.
//! - [`remote`]: BuildKit's remote cache config for nodekit's records (registry, local, inline
//!   cache), built and parsed.
//! - [`bundle`]: records and their blobs as one versioned, checksummed stream (cache export and
//!   import between nodes).
//!
//! What the daemon keeps doing: existence checks of snapshots, leases (create before
//! [`Store::insert`], release after a record is removed), the order "snapshot committed, then
//! record inserted", and mapping LLB ops onto [`KeyEncoder`].

pub mod bundle;
pub mod error;
pub mod filter;
pub mod gc;
pub mod history;
pub mod key;
pub mod metrics;
pub mod record;
pub mod remote;
pub mod store;
pub mod tree;
pub mod usage;

pub use error::{Error, Result};
pub use filter::Filters;
pub use gc::{DiskSpace, DiskStats, GcPolicy, Plan, PlanContext, PruneRule, Swept};
pub use history::{HistoryEntry, HistoryRetention};
pub use key::{CacheKey, Fields, KeyEncoder};
pub use metrics::{Metrics, MetricsSnapshot, OpKind};
pub use record::{LayerDescriptor, Record, RecordKind};
pub use store::{Options, Reconciled, Store};
pub use tree::{tree_digest, tree_digest_of_entries, Selection, TreeDigest, TreeOptions};
pub use usage::{disk_usage, Marks, UsageRecord};

//! Cache mounts (`RUN --mount=type=cache`): writable snapshots kept across builds (and daemon
//! restarts) by cache id, marked as GC roots so containerd keeps them without a lease. Sharing
//! modes as BuildKit's: `shared` lets concurrent steps use one snapshot, `private` gives each
//! concurrent step its own, `locked` makes them take turns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use nodekit_proto::pb::CacheSharingOpt;
use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

use crate::Mounts;
use crate::{Worker, WorkerResult};

const GC_ROOT_LABEL: &str = "containerd.io/gc.root";
/// Every cache-mount snapshot's name starts so.
const PREFIX: &str = "nodekit-cache-";

pub struct CacheMounts {
    worker: Worker,
    /// Snapshot keys a `private` step is using now.
    busy: Arc<Mutex<HashSet<String>>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A cache snapshot in use by one step; released when dropped.
pub struct CacheMount {
    pub mounts: Mounts,
    key: String,
    busy: Option<Arc<Mutex<HashSet<String>>>>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Drop for CacheMount {
    fn drop(&mut self) {
        if let Some(busy) = &self.busy {
            busy.lock().remove(&self.key);
        }
    }
}

impl CacheMounts {
    pub fn new(worker: Worker) -> CacheMounts {
        CacheMounts {
            worker,
            busy: Arc::default(),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The cache `id` (first filled from `base`, a committed snapshot, if given).
    pub async fn acquire(
        &self,
        id: &str,
        sharing: CacheSharingOpt,
        base: Option<&str>,
    ) -> WorkerResult<CacheMount> {
        let family = family_key(id, base);
        // Two overlay mounts must not share an upper directory: with a base, take turns.
        let sharing = match (sharing, base) {
            (CacheSharingOpt::Shared, Some(_)) => CacheSharingOpt::Locked,
            (sharing, _) => sharing,
        };
        let (key, busy, turn) = match sharing {
            CacheSharingOpt::Shared => (family.clone(), None, None),
            CacheSharingOpt::Locked => (family.clone(), None, Some(self.turn(&family).await)),
            CacheSharingOpt::Private => {
                (self.claim_private(&family), Some(self.busy.clone()), None)
            }
        };
        // Built before opening, so a failed open still releases the claim.
        let mut cache = CacheMount {
            mounts: Mounts::default(),
            key,
            busy,
            _turn: turn,
        };
        cache.mounts = self.open(&cache.key, base).await?;
        Ok(cache)
    }

    async fn turn(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .entry(key.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// The first instance of `family` no other step is using, marked busy.
    fn claim_private(&self, family: &str) -> String {
        let mut busy = self.busy.lock();
        let key = (0..)
            .map(|n| {
                if n == 0 {
                    family.to_string()
                } else {
                    format!("{family}-{n}")
                }
            })
            .find(|key| !busy.contains(key))
            .unwrap_or_else(|| family.to_string());
        busy.insert(key.clone());
        key
    }

    /// The mounts of snapshot `key`, creating it on `base` the first time.
    async fn open(&self, key: &str, base: Option<&str>) -> WorkerResult<Mounts> {
        let snapshots = self.worker.snapshots();
        let ctx = self.worker.ctx();
        if snapshots.exists(ctx, key).await? {
            return snapshots.mounts(ctx, key).await.map(Mounts);
        }
        let labels = HashMap::from([(
            GC_ROOT_LABEL.to_string(),
            humantime::format_rfc3339(std::time::SystemTime::now()).to_string(),
        )]);
        match snapshots.prepare_labeled(ctx, key, base, labels).await {
            Ok(mounts) => Ok(Mounts(mounts)),
            // Another step created it a moment ago.
            Err(_) if snapshots.exists(ctx, key).await? => {
                snapshots.mounts(ctx, key).await.map(Mounts)
            }
            Err(error) => Err(error),
        }
    }
}

impl CacheMounts {
    /// Removes every cache-mount snapshot (only call it when no build runs); returns how many.
    pub async fn prune(&self) -> WorkerResult<usize> {
        let names = self.worker.snapshot_names().await?;
        let caches: Vec<&String> = names.iter().filter(|n| n.starts_with(PREFIX)).collect();
        for name in &caches {
            self.worker
                .snapshots()
                .remove(self.worker.ctx(), name)
                .await?;
        }
        Ok(caches.len())
    }
}

/// The snapshot name of cache `id` on `base`.
fn family_key(id: &str, base: Option<&str>) -> String {
    let hash = blake3::hash(format!("{id}\0{}", base.unwrap_or_default()).as_bytes());
    format!("{PREFIX}{}", &hash.to_hex()[..24])
}

#[cfg(test)]
mod tests {
    use super::family_key;

    #[test]
    fn cache_keys_depend_on_id_and_base() {
        assert_eq!(family_key("go", None), family_key("go", None));
        assert_ne!(family_key("go", None), family_key("npm", None));
        assert_ne!(family_key("go", None), family_key("go", Some("sha256:1")));
    }
}

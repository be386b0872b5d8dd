//! Local sources (`local://name`): the client's directory, synced through its session into a
//! copy kept per (shared key, name) so the next build transfers only what changed, then turned
//! into a committed snapshot. Identical content (by its blake3 tree digest) reuses the snapshot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::worker::CommittedLayer;

/// The kept copies, and snapshots of contents already seen.
pub struct LocalSources {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    layers: Mutex<HashMap<String, CommittedLayer>>,
}

/// Where one local source's copy and its sync state live.
pub struct LocalCopy {
    pub tree: PathBuf,
    pub state_file: PathBuf,
}

impl LocalSources {
    pub fn new(root: &Path) -> LocalSources {
        LocalSources {
            root: root.join("local-sources"),
            locks: Mutex::new(HashMap::new()),
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// The copy for `shared_key`/`name`, locked against concurrent syncs of the same copy.
    pub async fn lock(
        &self,
        shared_key: &str,
        name: &str,
    ) -> (LocalCopy, tokio::sync::OwnedMutexGuard<()>) {
        let key =
            blake3::hash(format!("{shared_key}\0{name}").as_bytes()).to_hex()[..32].to_string();
        let lock = self
            .locks
            .lock()
            .map(|mut locks| locks.entry(key.clone()).or_default().clone())
            .unwrap_or_default();
        let guard = lock.lock_owned().await;
        let dir = self.root.join(&key);
        let copy = LocalCopy {
            tree: dir.join("tree"),
            state_file: dir.join("state.json"),
        };
        (copy, guard)
    }

    /// The snapshot already made from content `digest`, if any.
    pub fn layer_for(&self, digest: &str) -> Option<CommittedLayer> {
        self.layers.lock().ok()?.get(digest).cloned()
    }

    pub fn remember(&self, digest: &str, layer: CommittedLayer) {
        if let Ok(mut layers) = self.layers.lock() {
            layers.insert(digest.to_string(), layer);
        }
    }
}

//! Local sources (`local://name`): the client's directory, synced through its session straight
//! into a snapshot. Per (shared key, name) the latest snapshot is kept (its result holds the
//! lease) with the sync state beside it, so the next sync starts from it: unchanged files are
//! neither sent nor copied, and an unchanged directory costs only the comparison.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::result::Ref;

/// The kept copies, one lock and one latest snapshot each.
pub struct LocalSources {
    root: PathBuf,
    copies: Mutex<HashMap<String, Arc<CopyState>>>,
}

#[derive(Default)]
struct CopyState {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// The content digest of the latest snapshot, and the snapshot.
    latest: Mutex<Option<(String, Ref)>>,
}

/// One local source's copy, locked against concurrent syncs while this lives.
pub struct LocalCopy {
    /// The receiver's record of the latest snapshot's files.
    pub state_file: PathBuf,
    state: Arc<CopyState>,
    _locked: tokio::sync::OwnedMutexGuard<()>,
}

impl LocalSources {
    pub fn new(root: &Path) -> LocalSources {
        LocalSources {
            root: root.join("local-sources"),
            copies: Mutex::new(HashMap::new()),
        }
    }

    /// The copy for `shared_key`/`name`, waiting for any other sync of it to finish.
    pub async fn lock(&self, shared_key: &str, name: &str) -> LocalCopy {
        let key =
            blake3::hash(format!("{shared_key}\0{name}").as_bytes()).to_hex()[..32].to_string();
        let state = self.copies.lock().entry(key.clone()).or_default().clone();
        let locked = state.lock.clone().lock_owned().await;
        let dir = self.root.join(&key);
        LocalCopy {
            state_file: dir.join("state.json"),
            state,
            _locked: locked,
        }
    }
}

impl LocalSources {
    /// Lets go of every kept snapshot, returning them.
    pub fn drain(&self) -> Vec<Ref> {
        let copies = self.copies.lock();
        copies
            .values()
            .filter_map(|state| state.latest.lock().take())
            .map(|(_, kept)| kept)
            .collect()
    }
}

impl LocalCopy {
    /// The kept snapshot, if it holds content `digest`.
    pub fn snapshot_of(&self, digest: &str) -> Option<Ref> {
        let latest = self.state.latest.lock();
        latest
            .as_ref()
            .filter(|(kept, _)| kept == digest)
            .map(|(_, result)| result.clone())
    }

    /// The latest kept snapshot and the content digest it holds.
    pub fn latest(&self) -> Option<(String, Ref)> {
        self.state.latest.lock().clone()
    }

    /// Lets go of the kept snapshot and the sync state describing it.
    pub fn forget(&self) {
        *self.state.latest.lock() = None;
        let _ = std::fs::remove_file(&self.state_file);
    }

    /// Keeps `result` as the snapshot of content `digest` (the previous one is let go).
    pub fn keep_snapshot(&self, digest: &str, result: &Ref) {
        *self.state.latest.lock() = Some((digest.to_string(), result.clone()));
    }
}

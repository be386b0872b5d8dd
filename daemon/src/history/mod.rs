//! Build history (BuildKit's `ListenBuildHistory` / `UpdateBuildHistory`): a record per build,
//! live while it runs, stored in the cache index's redb file once it ends (with its progress
//! log), pinned or deleted by clients, and expired by buildkitd's `[history]` rules.

mod filter;
pub mod record;
mod recording;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use cachestore::{HistoryEntry, HistoryRetention, Store};
use nodekit_proto::moby::buildkit::v1::{
    BuildHistoryEvent, BuildHistoryEventType, BuildHistoryRecord, BuildHistoryRequest,
    SolveRequest, StatusResponse, UpdateBuildHistoryRequest,
};
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::broadcast;
use tonic::Status;

use filter::HistoryFilters;
use record::{Ending, StatusLog};
pub use recording::Recording;

/// Events a slow listener may fall behind by before it is cut off.
const EVENT_BACKLOG: usize = 64;

pub struct BuildHistory {
    store: Arc<Store>,
    retention: HistoryRetention,
    active: Mutex<BTreeMap<String, BuildHistoryRecord>>,
    events: broadcast::Sender<BuildHistoryEvent>,
}

/// What `ListenBuildHistory` sends before live events, and whether live events follow.
pub struct Listening {
    pub first: Vec<BuildHistoryEvent>,
    pub live: Option<broadcast::Receiver<BuildHistoryEvent>>,
    pub reference: String,
}

impl BuildHistory {
    pub fn new(store: Arc<Store>, retention: HistoryRetention) -> BuildHistory {
        BuildHistory {
            store,
            retention,
            active: Mutex::default(),
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }

    /// A build has started (see [`Recording`], which also sees it end).
    fn started(&self, request: &SolveRequest) {
        let record = record::started(request, SystemTime::now());
        self.active
            .lock()
            .insert(record.r#ref.clone(), record.clone());
        self.emit(BuildHistoryEventType::Started, record);
    }

    /// A build has ended: its record is stored with its log, and older ones expire.
    pub async fn completed(
        self: &Arc<Self>,
        reference: &str,
        ending: Ending<'_>,
        updates: &[StatusResponse],
    ) {
        let Some(mut record) = self.active.lock().remove(reference) else {
            return;
        };
        let log = StatusLog::encode(updates);
        record::complete(&mut record, ending, updates, &log, SystemTime::now());
        let entry = entry_of(&record, vec![log.descriptor.digest.clone()]);
        let blobs = vec![(log.descriptor.digest.clone(), log.bytes)];
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.put_history(&entry, &blobs)).await;
        match stored {
            Ok(Ok(())) => self.emit(BuildHistoryEventType::Complete, record),
            Ok(Err(e)) => tracing::warn!(build = reference, "build history not kept: {e}"),
            Err(e) => tracing::warn!(build = reference, "build history not kept: {e}"),
        }
        self.expire().await;
    }

    /// Removes the records the retention rules no longer keep.
    pub async fn expire(self: &Arc<Self>) {
        let history = self.clone();
        let removed = tokio::task::spawn_blocking(move || history.expire_now()).await;
        match removed {
            Ok(Ok(removed)) if !removed.is_empty() => {
                tracing::debug!(count = removed.len(), "expired build history records");
            }
            Ok(Err(e)) => tracing::warn!("expiring build history: {e}"),
            _ => {}
        }
    }

    fn expire_now(&self) -> Result<Vec<String>, cachestore::Error> {
        let entries = self.store.history()?;
        let now = crate::solver::cache::index::now_ms();
        let expired = cachestore::history::expired(&entries, self.retention, now);
        for reference in &expired {
            if let Some(record) = self.delete_stored(reference)? {
                self.emit(BuildHistoryEventType::Deleted, record);
            }
        }
        Ok(expired)
    }

    /// The events `ListenBuildHistory` starts with (running builds, then stored records unless
    /// `active_only`), and the subscription to live ones unless `early_exit`.
    pub fn listen(&self, request: &BuildHistoryRequest) -> Result<Listening, Status> {
        if request.limit < 0 {
            return Err(Status::invalid_argument(format!(
                "invalid limit {}",
                request.limit
            )));
        }
        // Subscribed before anything is read, so no event falls between the two.
        let live = (!request.early_exit).then(|| self.events.subscribe());
        let wanted = |r: &BuildHistoryRecord| request.r#ref.is_empty() || r.r#ref == request.r#ref;
        let mut first: Vec<BuildHistoryEvent> = self
            .active
            .lock()
            .values()
            .filter(|r| wanted(r))
            .map(|r| event(BuildHistoryEventType::Started, r.clone()))
            .collect();
        if !request.active_only {
            let filters = HistoryFilters::parse(&request.filter, SystemTime::now())
                .map_err(Status::invalid_argument)?;
            let mut stored: Vec<BuildHistoryRecord> = self
                .stored_records()?
                .into_iter()
                .filter(|r| wanted(r) && filters.matches(r))
                .collect();
            newest_first_up_to(&mut stored, request.limit);
            first.extend(
                stored
                    .into_iter()
                    .map(|r| event(BuildHistoryEventType::Complete, r)),
            );
        }
        Ok(Listening {
            first,
            live,
            reference: request.r#ref.clone(),
        })
    }

    /// Pins, unpins or deletes a stored record (`Finalize` has nothing to wait for: records
    /// are complete when stored).
    pub async fn update(
        self: &Arc<Self>,
        request: UpdateBuildHistoryRequest,
    ) -> Result<(), Status> {
        let history = self.clone();
        tokio::task::spawn_blocking(move || history.update_now(&request))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
    }

    fn update_now(&self, request: &UpdateBuildHistoryRequest) -> Result<(), Status> {
        let reference = request.r#ref.as_str();
        if request.delete {
            let record = self.delete_stored(reference).map_err(internal)?;
            let record = record.ok_or_else(|| not_found(reference))?;
            self.emit(BuildHistoryEventType::Deleted, record);
            return Ok(());
        }
        if request.finalize {
            return match self.store.history_entry(reference).map_err(internal)? {
                Some(_) => Ok(()),
                None => Err(not_found(reference)),
            };
        }
        let entry = self.store.history_entry(reference).map_err(internal)?;
        let entry = entry.ok_or_else(|| not_found(reference))?;
        let mut record = decode(&entry).map_err(internal)?;
        if record.pinned == request.pinned {
            return Ok(());
        }
        record.pinned = request.pinned;
        record.generation += 1;
        let updated = entry_of(&record, entry.blobs);
        self.store.put_history(&updated, &[]).map_err(internal)?;
        self.emit(BuildHistoryEventType::Complete, record);
        Ok(())
    }

    /// The stored progress of a finished build, if it has a record.
    pub fn stored_progress(&self, reference: &str) -> Result<Option<Vec<StatusResponse>>, Status> {
        let Some(entry) = self.store.history_entry(reference).map_err(internal)? else {
            return Ok(None);
        };
        let record = decode(&entry).map_err(internal)?;
        let Some(logs) = record.logs else {
            return Ok(Some(Vec::new()));
        };
        let bytes = self.store.history_blob(&logs.digest).map_err(internal)?;
        Ok(Some(StatusLog::decode(&bytes.unwrap_or_default())))
    }

    /// A blob a record points at (its log), for the content service.
    pub fn blob(&self, digest: &str) -> Result<Option<Vec<u8>>, Status> {
        self.store.history_blob(digest).map_err(internal)
    }

    fn stored_records(&self) -> Result<Vec<BuildHistoryRecord>, Status> {
        let entries = self.store.history().map_err(internal)?;
        entries
            .iter()
            .map(|entry| decode(entry).map_err(internal))
            .collect()
    }

    fn delete_stored(
        &self,
        reference: &str,
    ) -> Result<Option<BuildHistoryRecord>, cachestore::Error> {
        let Some(entry) = self.store.history_entry(reference)? else {
            return Ok(None);
        };
        self.store.delete_history(reference)?;
        Ok(decode(&entry).ok())
    }

    fn emit(&self, kind: BuildHistoryEventType, record: BuildHistoryRecord) {
        // No listener is not an error.
        let _ = self.events.send(event(kind, record));
    }
}

fn event(kind: BuildHistoryEventType, record: BuildHistoryRecord) -> BuildHistoryEvent {
    BuildHistoryEvent {
        r#type: kind as i32,
        record: Some(record),
    }
}

/// Keeps the newest `limit` records (all when 0), newest first, as buildkitd does.
fn newest_first_up_to(records: &mut Vec<BuildHistoryRecord>, limit: i32) {
    if limit == 0 {
        return;
    }
    let created = |r: &BuildHistoryRecord| {
        r.created_at
            .as_ref()
            .map_or((0, 0), |t| (t.seconds, t.nanos))
    };
    records.sort_by_key(|r| std::cmp::Reverse(created(r)));
    records.truncate(limit as usize);
}

fn entry_of(record: &BuildHistoryRecord, blobs: Vec<String>) -> HistoryEntry {
    let completed_ms = record.completed_at.as_ref().map_or(0, |t| {
        (t.seconds.max(0) as u64) * 1000 + (t.nanos.max(0) as u64) / 1_000_000
    });
    HistoryEntry {
        reference: record.r#ref.clone(),
        completed_ms,
        pinned: record.pinned,
        record: record.encode_to_vec(),
        blobs,
    }
}

fn decode(entry: &HistoryEntry) -> Result<BuildHistoryRecord, cachestore::Error> {
    BuildHistoryRecord::decode(entry.record.as_slice()).map_err(|e| {
        cachestore::Error::CorruptRecord {
            key: format!("history entry {}", entry.reference),
            reason: e.to_string(),
        }
    })
}

fn internal(error: cachestore::Error) -> Status {
    Status::internal(format!("build history: {error}"))
}

fn not_found(reference: &str) -> Status {
    Status::not_found(format!("build history record {reference} not found"))
}

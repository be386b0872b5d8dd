//! The index: one redb file under the daemon root, mapping cache keys to [`Record`]s.
//!
//! Readers never block on writers (redb is MVCC: a read sees the last commit). Writes are
//! serialized by redb and each is one transaction: a record and its index entries (LRU order,
//! parent links, snapshot name) change together or not at all. Every commit is durable when it
//! returns, and written in quick-repair mode so that opening after a crash is as fast as after a
//! clean close.
//!
//! Hits ([`Store::touch`]) are batched in memory and written by [`Store::flush`], automatically
//! every [`TOUCH_BATCH`] hits, before GC and `du` read the order, and when the store is dropped;
//! [`Store::get`] already shows them. A crash loses at most the unflushed hit counts.
//!
//! Ordering the daemon keeps: commit the snapshot and take its lease, then [`Store::insert`];
//! [`Store::remove`], then release the removed records' leases. A crash between the two steps
//! leaves a lease no record holds, which [`Store::reconcile`] reports.

mod tables;

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::error::{Error, Result};
use crate::key::CacheKey;
use crate::metrics::Metrics;
use crate::record::{LayerDescriptor, Record};
use tables::{WriteTables, LINKS, META, META_BYTES, META_SCHEMA, RECORDS, SCHEMA, SNAPSHOTS};

/// Hits held in memory before [`Store::touch`] writes them.
pub const TOUCH_BATCH: usize = 1024;
/// The most records one write transaction removes (GC, reconciliation), so that an insert by a
/// running build never waits long.
pub const MAX_BATCH: usize = 1000;

/// Tuning for [`Store::open_with`].
#[derive(Clone, Debug)]
pub struct Options {
    /// redb's page cache, in bytes. It keeps every page written until it is full and then swaps
    /// old pages for new ones, each a block of its own in the daemon's heap, so the bigger it
    /// is the more of the heap it keeps resident over a long run (measured over 3,000 builds,
    /// glibc's thread caches off: anonymous memory flat at 5.3-5.8 MiB with 1 MiB, rising to 8.9
    /// with 4 MiB). The kernel's page cache holds the file as well, so a small one costs little:
    /// at 1,000,000 records lookups p50 4.5 µs with 1 MiB and 4.7 with 4 MiB (criterion 5.1 and
    /// 5.2 µs); a GC of 100,000 records 7.7 s with 1 MiB, 7.1 s with 4 MiB.
    pub cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: 1 << 20,
        }
    }
}

/// The cache index.
pub struct Store {
    db: Database,
    path: PathBuf,
    pending: Mutex<HashMap<CacheKey, Touch>>,
    metrics: Metrics,
}

#[derive(Clone, Copy, Debug, Default)]
struct Touch {
    last_used_ms: u64,
    hits: u64,
}

/// What [`Store::reconcile`] found.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// How many records named a snapshot that is gone, now removed (counted, not kept: the
    /// kubelet's GC can take a million records' snapshots at once).
    pub dropped: usize,
    /// nodekit-owned leases that no remaining record holds (including the dropped records'
    /// leases): the daemon releases them.
    pub orphan_leases: Vec<String>,
}

impl Store {
    /// Opens the index at `path`, creating it (but not its directory) if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, &Options::default())
    }

    /// [`Store::open`] with tuning.
    pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let db = open_db(&path, options)?;
        let store = Store {
            db,
            path,
            pending: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
        };
        store.check_schema()?;
        let (records, bytes) = store.sizes()?;
        store.metrics.set_size(records, bytes);
        Ok(store)
    }

    /// The redb database, for the tables kept beside the records (build history).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// The file the index lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The record stored under `key`, with its unflushed hits applied.
    pub fn get(&self, key: &CacheKey) -> Result<Option<Record>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let Some(value) = table.get(key.as_bytes())? else {
            return Ok(None);
        };
        let mut record = Record::decode(*key, value.value())?;
        self.apply_pending(&mut record);
        Ok(Some(record))
    }

    /// Notes a hit on `key` at `now_ms` (last used, hit count). Cheap: batched in memory, written
    /// every [`TOUCH_BATCH`] hits or by [`Store::flush`].
    pub fn touch(&self, key: &CacheKey, now_ms: u64) -> Result<()> {
        let full = {
            let mut pending = self.pending.lock();
            let t = pending.entry(*key).or_default();
            t.last_used_ms = t.last_used_ms.max(now_ms);
            t.hits += 1;
            pending.len() >= TOUCH_BATCH
        };
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the batched hits.
    pub fn flush(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.lock());
        if pending.is_empty() {
            return Ok(());
        }
        let written = self.write(|t| {
            for (key, touch) in &pending {
                if let Some(mut r) = t.get(key)? {
                    r.last_used_ms = r.last_used_ms.max(touch.last_used_ms);
                    r.hit_count += touch.hits;
                    t.put(&r)?;
                }
            }
            Ok(())
        });
        if written.is_err() {
            // Keep the hits for the next flush.
            let mut now = self.pending.lock();
            for (key, touch) in pending {
                let t = now.entry(key).or_default();
                t.last_used_ms = t.last_used_ms.max(touch.last_used_ms);
                t.hits += touch.hits;
            }
        }
        written
    }

    /// Stores `record` under `record.key`, replacing any record there.
    pub fn insert(&self, record: &Record) -> Result<()> {
        self.insert_many(std::slice::from_ref(record))
    }

    /// Stores every record in one transaction.
    pub fn insert_many(&self, records: &[Record]) -> Result<()> {
        self.write(|t| records.iter().try_for_each(|r| t.put(r)))
    }

    /// Stores, in one transaction, those of `records` whose key holds no record yet; returns
    /// the others (left out: what the node has already stays as it is). The records may come
    /// from anywhere (a file): the first error aborts the transaction, storing none.
    pub fn insert_absent(
        &self,
        records: impl IntoIterator<Item = Result<Record>>,
    ) -> Result<Vec<Record>> {
        self.write(|t| {
            let mut present = Vec::new();
            for record in records {
                let record = record?;
                if t.get(&record.key)?.is_some() {
                    present.push(record);
                } else {
                    t.put(&record)?;
                }
            }
            Ok(present)
        })
    }

    /// Records the layer blob computed for `key`'s snapshot; false when there is no such record.
    pub fn set_layer(&self, key: &CacheKey, layer: LayerDescriptor) -> Result<bool> {
        self.write(|t| match t.get(key)? {
            Some(mut r) => {
                r.layer = Some(layer);
                t.put(&r)?;
                Ok(true)
            }
            None => Ok(false),
        })
    }

    /// Removes the records under `keys` (in one transaction: pass at most [`MAX_BATCH`]),
    /// returning those that were there. Links to their children go with them.
    pub fn remove(&self, keys: &[CacheKey]) -> Result<Vec<Record>> {
        self.remove_if(keys, |_, _| true)
    }

    /// Removes those of `keys` for which `pred(record, has_children)` holds, in one
    /// transaction, returning them. `record` shows unflushed hits.
    pub fn remove_if(
        &self,
        keys: &[CacheKey],
        mut pred: impl FnMut(&Record, bool) -> bool,
    ) -> Result<Vec<Record>> {
        let removed = self.write(|t| {
            let mut out = Vec::new();
            for key in keys {
                let Some(mut r) = t.get(key)? else { continue };
                self.apply_pending(&mut r);
                if pred(&r, t.has_children(key)?) {
                    t.remove(key)?;
                    out.push(r);
                }
            }
            Ok(out)
        })?;
        let mut pending = self.pending.lock();
        for r in &removed {
            pending.remove(&r.key);
        }
        Ok(removed)
    }

    /// How many records the index holds.
    pub fn len(&self) -> Result<u64> {
        Ok(self.sizes()?.0)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The sum of the records' sizes.
    pub fn total_size(&self) -> Result<u64> {
        Ok(self.sizes()?.1)
    }

    /// Calls `f` with every record (in key order), from one consistent read.
    pub fn scan(&self, mut f: impl FnMut(Record) -> Result<()>) -> Result<()> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let mut record = Record::decode(CacheKey::from_bytes(*k.value()), v.value())?;
            self.apply_pending(&mut record);
            f(record)?;
        }
        Ok(())
    }

    /// [`Store::scan`] of the whole file, which tells a damaged one apart: a record or page
    /// that cannot be read (even one redb panics on) is an [`Error::CorruptFile`] naming it.
    /// The daemon's start reads every record this way once, so that a file whose header
    /// opens but whose records do not stops it, with the way out.
    pub fn checked_scan(&self, mut f: impl FnMut(Record)) -> Result<()> {
        let scanned = catch_unwind(AssertUnwindSafe(|| {
            self.scan(|record| {
                f(record);
                Ok(())
            })
        }));
        let reason = match scanned {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(panic) => panic_message(&panic),
        };
        Err(Error::CorruptFile {
            path: self.path.clone(),
            reason,
        })
    }

    /// Up to `limit` records in key order after `after` (from the first without), for reading
    /// a large index in bounded memory without holding one read transaction throughout.
    pub fn records_after(&self, after: Option<&CacheKey>, limit: usize) -> Result<Vec<Record>> {
        use std::ops::Bound;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let start = match after {
            Some(key) => Bound::Excluded(key.as_bytes()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for entry in table
            .range::<&[u8; 32]>((start, Bound::Unbounded))?
            .take(limit)
        {
            let (k, v) = entry?;
            let mut record = Record::decode(CacheKey::from_bytes(*k.value()), v.value())?;
            self.apply_pending(&mut record);
            out.push(record);
        }
        Ok(out)
    }

    /// Every record, in key order.
    pub fn records(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        self.scan(|r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// The records whose snapshot is `snapshot`.
    pub fn records_by_snapshot(&self, snapshot: &str) -> Result<Vec<Record>> {
        let keys = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(SNAPSHOTS)?;
            let mut keys = Vec::new();
            for entry in table.range(snapshot.as_bytes()..)? {
                let (k, _) = entry?;
                let k = k.value();
                if !k.starts_with(snapshot.as_bytes()) {
                    break;
                }
                if let Ok(bytes) = <[u8; 32]>::try_from(&k[snapshot.len()..]) {
                    keys.push(CacheKey::from_bytes(bytes));
                }
            }
            keys
        };
        let mut out = Vec::new();
        for key in keys {
            out.extend(self.get(&key)?);
        }
        Ok(out)
    }

    /// The keys of the records that name `key` as a parent.
    pub fn children_of(&self, key: &CacheKey) -> Result<Vec<CacheKey>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LINKS)?;
        let (lo, hi) = tables::link_range(key);
        let mut out = Vec::new();
        for entry in table.range::<&[u8; 64]>(&lo..=&hi)? {
            out.push(tables::link_child(entry?.0.value()));
        }
        Ok(out)
    }

    /// Drops the records whose snapshot is not in `existing_snapshots` (in batches of at most
    /// [`MAX_BATCH`]) and reports the `owned_leases` no remaining record holds.
    pub fn reconcile(
        &self,
        existing_snapshots: &HashSet<String>,
        owned_leases: &HashSet<String>,
    ) -> Result<Reconciled> {
        let mut lost = Vec::new();
        let mut held = HashSet::new();
        self.checked_scan(|r| {
            if existing_snapshots.contains(&r.snapshot) {
                held.insert(r.lease);
            } else {
                lost.push(r.key);
            }
        })?;
        let mut dropped = 0;
        for batch in lost.chunks(MAX_BATCH) {
            dropped += self.remove(batch)?.len();
        }
        let mut orphan_leases: Vec<String> = owned_leases
            .iter()
            .filter(|l| !held.contains(*l))
            .cloned()
            .collect();
        orphan_leases.sort();
        Ok(Reconciled {
            dropped,
            orphan_leases,
        })
    }

    /// Runs `f` over the tables in one write transaction and commits it.
    fn write<T>(&self, f: impl FnOnce(&mut WriteTables<'_>) -> Result<T>) -> Result<T> {
        let txn = self.begin_write()?;
        let (out, records, bytes) = {
            let mut tables = WriteTables::open(&txn)?;
            let out = f(&mut tables)?;
            let (records, bytes) = tables.finish()?;
            (out, records, bytes)
        };
        txn.commit()?;
        self.metrics.set_size(records, bytes);
        Ok(out)
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(true);
        Ok(txn)
    }

    fn sizes(&self) -> Result<(u64, u64)> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?.len()?;
        let bytes = txn
            .open_table(META)?
            .get(META_BYTES)?
            .map_or(0, |v| v.value());
        Ok((records, bytes))
    }

    fn check_schema(&self) -> Result<()> {
        let found = {
            let txn = self.db.begin_read()?;
            match txn.open_table(META) {
                Ok(meta) => meta.get(META_SCHEMA)?.map(|v| v.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            }
        };
        match found {
            Some(SCHEMA) => Ok(()),
            // A new file: create the tables and stamp the schema.
            None => self.write(|_| Ok(())),
            Some(found) => Err(Error::Schema {
                path: self.path.clone(),
                found,
                supported: SCHEMA,
            }),
        }
    }

    fn apply_pending(&self, r: &mut Record) {
        if let Some(t) = self.pending.lock().get(&r.key) {
            r.last_used_ms = r.last_used_ms.max(t.last_used_ms);
            r.hit_count += t.hits;
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort: a failure loses hit counts, never records.
        let _ = self.flush();
    }
}

/// Opens the redb file, turning a panic on a damaged file into an error.
fn open_db(path: &Path, options: &Options) -> Result<Database> {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
    }));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(source)) => Err(Error::Open {
            path: path.to_path_buf(),
            source,
        }),
        Err(panic) => Err(Error::CorruptFile {
            path: path.to_path_buf(),
            reason: panic_message(&panic),
        }),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "redb panicked while opening it".into())
}

#[cfg(test)]
mod tests;

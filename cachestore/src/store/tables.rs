//! The redb tables of the index and the write-side bookkeeping that keeps them consistent.
//!
//! | table       | key                                  | value            |
//! |-------------|--------------------------------------|------------------|
//! | `records`   | cache key (32 bytes)                 | stored [`Record`] |
//! | `lru`       | last used ms (u64 BE) ‖ key (40 B)   | ()               |
//! | `links`     | parent key ‖ child key (64 B)        | ()               |
//! | `snapshots` | snapshot name bytes ‖ key            | ()               |
//! | `meta`      | name (`schema`, `bytes`)             | u64              |
//!
//! Every write goes through [`WriteTables`], which updates all five together in one
//! transaction.

use redb::{ReadableTable, ReadableTableMetadata, Table, TableDefinition, WriteTransaction};

use crate::error::Result;
use crate::key::CacheKey;
use crate::record::Record;

pub(crate) const RECORDS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("records");
pub(crate) const LRU: TableDefinition<&[u8; 40], ()> = TableDefinition::new("lru");
pub(crate) const LINKS: TableDefinition<&[u8; 64], ()> = TableDefinition::new("links");
pub(crate) const SNAPSHOTS: TableDefinition<&[u8], ()> = TableDefinition::new("snapshots");
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The schema this build writes and reads.
pub(crate) const SCHEMA: u64 = 1;
pub(crate) const META_SCHEMA: &str = "schema";
pub(crate) const META_BYTES: &str = "bytes";

/// The `lru` key of a record last used at `ms`.
pub(crate) fn lru_key(ms: u64, key: &CacheKey) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&ms.to_be_bytes());
    k[8..].copy_from_slice(key.as_bytes());
    k
}

/// The `links` key of `child` under `parent`.
pub(crate) fn link_key(parent: &CacheKey, child: &CacheKey) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(parent.as_bytes());
    k[32..].copy_from_slice(child.as_bytes());
    k
}

/// The `links` key range of every child of `parent`.
pub(crate) fn link_range(parent: &CacheKey) -> ([u8; 64], [u8; 64]) {
    let mut lo = [0u8; 64];
    let mut hi = [0xffu8; 64];
    lo[..32].copy_from_slice(parent.as_bytes());
    hi[..32].copy_from_slice(parent.as_bytes());
    (lo, hi)
}

/// The child half of a `links` key.
pub(crate) fn link_child(k: &[u8; 64]) -> CacheKey {
    let mut c = [0u8; 32];
    c.copy_from_slice(&k[32..]);
    CacheKey::from_bytes(c)
}

/// The `snapshots` key of `key`'s snapshot.
pub(crate) fn snapshot_key(snapshot: &str, key: &CacheKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(snapshot.len() + 32);
    k.extend_from_slice(snapshot.as_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

/// The five tables, open in one write transaction, with the running byte total.
pub(crate) struct WriteTables<'t> {
    records: Table<'t, &'static [u8; 32], &'static [u8]>,
    lru: Table<'t, &'static [u8; 40], ()>,
    links: Table<'t, &'static [u8; 64], ()>,
    snapshots: Table<'t, &'static [u8], ()>,
    meta: Table<'t, &'static str, u64>,
    bytes: u64,
}

impl<'t> WriteTables<'t> {
    /// Opens (creating if needed) every table in `txn`.
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<WriteTables<'t>> {
        let meta = txn.open_table(META)?;
        let bytes = meta.get(META_BYTES)?.map_or(0, |v| v.value());
        Ok(WriteTables {
            records: txn.open_table(RECORDS)?,
            lru: txn.open_table(LRU)?,
            links: txn.open_table(LINKS)?,
            snapshots: txn.open_table(SNAPSHOTS)?,
            meta,
            bytes,
        })
    }

    /// Writes the byte total back; call before committing.
    pub(crate) fn finish(mut self) -> Result<(u64, u64)> {
        self.meta.insert(META_BYTES, self.bytes)?;
        self.meta.insert(META_SCHEMA, SCHEMA)?;
        Ok((self.records.len()?, self.bytes))
    }

    /// The record stored under `key`.
    pub(crate) fn get(&self, key: &CacheKey) -> Result<Option<Record>> {
        match self.records.get(key.as_bytes())? {
            Some(v) => Ok(Some(Record::decode(*key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Stores `r`, replacing (and unlinking) any record under the same key.
    pub(crate) fn put(&mut self, r: &Record) -> Result<()> {
        let encoded = r.encode()?;
        if let Some(old) = self.get(&r.key)? {
            self.unlink(&old)?;
        }
        self.records.insert(r.key.as_bytes(), encoded.as_slice())?;
        self.link(r)
    }

    /// Removes the record under `key` and every index entry of it, returning it.
    pub(crate) fn remove(&mut self, key: &CacheKey) -> Result<Option<Record>> {
        let Some(old) = self.get(key)? else {
            return Ok(None);
        };
        self.unlink(&old)?;
        self.records.remove(key.as_bytes())?;
        for child in self.children(key)? {
            self.links.remove(&link_key(key, &child))?;
        }
        Ok(Some(old))
    }

    /// Whether any record names `key` as a parent.
    pub(crate) fn has_children(&self, key: &CacheKey) -> Result<bool> {
        let (lo, hi) = link_range(key);
        Ok(self
            .links
            .range::<&[u8; 64]>(&lo..=&hi)?
            .next()
            .transpose()?
            .is_some())
    }

    fn children(&self, key: &CacheKey) -> Result<Vec<CacheKey>> {
        let (lo, hi) = link_range(key);
        let mut out = Vec::new();
        for entry in self.links.range::<&[u8; 64]>(&lo..=&hi)? {
            out.push(link_child(entry?.0.value()));
        }
        Ok(out)
    }

    fn link(&mut self, r: &Record) -> Result<()> {
        self.lru.insert(&lru_key(r.last_used_ms, &r.key), ())?;
        for p in &r.parents {
            self.links.insert(&link_key(p, &r.key), ())?;
        }
        self.snapshots
            .insert(snapshot_key(&r.snapshot, &r.key).as_slice(), ())?;
        self.bytes = self.bytes.saturating_add(r.size);
        Ok(())
    }

    fn unlink(&mut self, r: &Record) -> Result<()> {
        self.lru.remove(&lru_key(r.last_used_ms, &r.key))?;
        for p in &r.parents {
            self.links.remove(&link_key(p, &r.key))?;
        }
        self.snapshots
            .remove(snapshot_key(&r.snapshot, &r.key).as_slice())?;
        self.bytes = self.bytes.saturating_sub(r.size);
        Ok(())
    }
}

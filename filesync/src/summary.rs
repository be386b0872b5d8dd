//! What a receive produced: one record per entry, and a digest of the tree.

use std::collections::BTreeMap;

use nodekit_proto::fsutil::types::Stat;
use serde::{Deserialize, Serialize};

/// The kind of a synced entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file with its own content.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (stored, never followed).
    Symlink,
    /// A regular file sharing the inode of an earlier file (`linkname`).
    Hardlink,
    /// A named pipe.
    Fifo,
}

impl EntryKind {
    fn tag(self) -> u8 {
        match self {
            EntryKind::File => b'f',
            EntryKind::Dir => b'd',
            EntryKind::Symlink => b'l',
            EntryKind::Hardlink => b'h',
            EntryKind::Fifo => b'p',
        }
    }
}

/// One entry as received (the stat fields the sender sent) plus, for regular
/// files, the blake3 hash of the content now on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    /// Go `os.FileMode` bits, as on the wire.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size from the stat; 0 for directories and hardlinks.
    pub size: i64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mod_time: i64,
    /// Symlink target, or the earlier path a hardlink shares its inode with.
    pub linkname: String,
    /// The blake3 hash of the content, for [`EntryKind::File`] only. Kept as bytes: a context
    /// of many files keeps one entry per file in memory for as long as its copy is kept.
    pub hash: Option<blake3::Hash>,
}

impl Entry {
    pub(crate) fn from_stat(kind: EntryKind, stat: &Stat) -> Self {
        let size = match kind {
            EntryKind::File | EntryKind::Symlink => stat.size,
            _ => 0,
        };
        Entry {
            kind,
            mode: stat.mode,
            uid: stat.uid,
            gid: stat.gid,
            size,
            mod_time: stat.mod_time,
            linkname: stat.linkname.clone(),
            hash: None,
        }
    }
}

/// The result of [`crate::receive`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveSummary {
    /// `blake3:<hex>` over every entry's path, kind, mode, uid, gid, size,
    /// link name and content hash, in path order: it depends only on the
    /// tree, not on what was on disk before, the order of DATA packets or
    /// which files were transferred. Modification times are left out, as in
    /// BuildKit's content checksums, so touching a file keeps the digest.
    pub digest: String,
    /// Every entry now in `dest`, by its slash-separated relative path.
    pub entries: BTreeMap<String, Entry>,
    /// Paths whose content was requested and received, sorted.
    pub transferred: Vec<String>,
    /// Paths removed from `dest` because the sender no longer has them (the
    /// top of each removed subtree only), in removal order.
    pub deleted: Vec<String>,
    /// Regular files received in DATA packets.
    pub files_transferred: u64,
    /// Bytes of content received in DATA packets.
    pub bytes_transferred: u64,
    /// Regular files kept from the previous copy (stat unchanged).
    pub files_reused: u64,
    /// Sizes (from their stats) of the files kept.
    pub bytes_reused: u64,
    /// The listing was the one of the trusted base ([`crate::Listing::Unchanged`]):
    /// `entries` is empty, the tree is the base's.
    pub unchanged: bool,
}

/// The tree digest of [`ReceiveSummary::digest`]: every field is written
/// with a fixed width or a length prefix, so no two trees encode alike.
pub(crate) fn tree_digest(entries: &BTreeMap<String, Entry>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"nodekit-filesync-tree-v1\0");
    for (path, e) in entries {
        put_bytes(&mut h, path.as_bytes());
        h.update(&[e.kind.tag()]);
        h.update(&e.mode.to_le_bytes());
        h.update(&e.uid.to_le_bytes());
        h.update(&e.gid.to_le_bytes());
        h.update(&e.size.to_le_bytes());
        put_bytes(&mut h, e.linkname.as_bytes());
        let hex = e.hash.map(|hash| hash.to_hex());
        put_bytes(&mut h, hex.as_deref().unwrap_or("").as_bytes());
    }
    format!("blake3:{}", h.finalize().to_hex())
}

fn put_bytes(h: &mut blake3::Hasher, b: &[u8]) {
    h.update(&(b.len() as u64).to_le_bytes());
    h.update(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(hash: &str, mod_time: i64) -> Entry {
        Entry {
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 1,
            mod_time,
            linkname: String::new(),
            hash: Some(blake3::hash(hash.as_bytes())),
        }
    }

    #[test]
    fn digest_covers_content_and_paths_but_not_mtime() {
        let tree = |name: &str, hash: &str, t| BTreeMap::from([(name.to_string(), file(hash, t))]);
        let base = tree_digest(&tree("a", "00", 1));
        assert_eq!(base, tree_digest(&tree("a", "00", 2)));
        assert_ne!(base, tree_digest(&tree("b", "00", 1)));
        assert_ne!(base, tree_digest(&tree("a", "01", 1)));
        assert!(base.starts_with("blake3:"));
    }
}

//! The Merkle digest of a directory tree: what a `local://` source keys on.
//!
//! Content and metadata that a build can observe go in; timestamps never do. Symlinks are not
//! followed. Files are hashed on several threads.
//!
//! # Encoding, version 1 (byte level; integers big-endian)
//!
//! ```text
//! tree digest = DIR(the root's selected entries)      the root's own metadata is not included
//! DIR(es)     = BLAKE3( 0x73 u64(len) "nodekit-tree/v1"  u64(count)  entry* )
//!               entries sorted by name bytes
//! entry       = u64(len) name-bytes  type  u32(mode & 0o7777)  u32(uid)  u32(gid)  payload
//! type        = 'f' file | 'd' directory | 'l' symlink | 'c' char device | 'b' block device
//!             | 'p' fifo | 's' socket
//! payload     = f: BLAKE3(contents) (32 bytes)     d: DIR(its entries) (32 bytes)
//!             | l: u64(len) target-bytes          c, b: u64(major) u64(minor)
//!             | p, s: nothing
//! ```
//!
//! [`tree_digest`] walks a directory on disk; [`tree_digest_of_entries`] takes a pre-walked
//! list (as a file-sync stream delivers it); both give the same digest for the same tree.

use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The version tag every directory hash starts with.
pub const TREE_VERSION: &str = "nodekit-tree/v1";

/// A tree digest (32 bytes of BLAKE3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TreeDigest(pub [u8; 32]);

impl std::fmt::Display for TreeDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&blake3::Hash::from_bytes(self.0).to_hex())
    }
}

/// One entry of a tree: a path relative to the root (`a/b/c`), and what is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub node: Node,
}

/// An entry's metadata and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file and the BLAKE3 of its contents.
    File {
        digest: [u8; 32],
    },
    Dir,
    Symlink {
        target: Vec<u8>,
    },
    CharDevice {
        major: u64,
        minor: u64,
    },
    BlockDevice {
        major: u64,
        minor: u64,
    },
    Fifo,
    Socket,
}

/// What the selection callback decides for an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Keep the entry (and, for a directory, ask about each entry inside).
    Include,
    /// Leave the entry out (and, for a directory, everything inside).
    Exclude,
    /// For a directory: ask about each entry inside, and keep the directory only if one of
    /// them is kept. For anything else: leave it out.
    Descend,
}

/// Tuning for [`tree_digest`].
#[derive(Clone, Debug)]
pub struct TreeOptions {
    /// Threads hashing file contents (default: the machine's parallelism).
    pub threads: usize,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The digest of the tree under `root`, keeping what `select(relative path, metadata)` keeps.
pub fn tree_digest(
    root: &Path,
    options: &TreeOptions,
    select: impl Fn(&Path, &Metadata) -> Selection,
) -> Result<TreeDigest> {
    let mut walked = Vec::new();
    walk(root, Path::new(""), &select, &mut walked)?;
    let digests = hash_files(root, &walked, options.threads)?;
    let entries = walked
        .into_iter()
        .zip(digests)
        .map(|(mut e, d)| {
            if let (NodeKind::File { digest }, Some(d)) = (&mut e.node.kind, d) {
                *digest = d;
            }
            e
        })
        .collect();
    tree_digest_of_entries(entries)
}

/// The digest of a pre-walked tree. Every entry's parent directory must be in the list.
pub fn tree_digest_of_entries(entries: Vec<Entry>) -> Result<TreeDigest> {
    let mut items = entries
        .iter()
        .map(|e| Ok((components(&e.path)?, &e.node)))
        .collect::<Result<Vec<_>>>()?;
    items.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(TreeDigest(hash_dir(&items, 0)?))
}

/// The BLAKE3 of a file's contents.
pub fn file_digest(path: &Path) -> Result<[u8; 32]> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file).map_err(io)?;
    Ok(*hasher.finalize().as_bytes())
}

/// A sorted entry: its path's components and its node.
type Item<'a> = (Vec<&'a [u8]>, &'a Node);
/// A directory's child: name, node, and (for a directory) its digest.
type Child<'a> = (&'a [u8], &'a Node, Option<[u8; 32]>);
/// One thread's hashed files: (entry index, content digest).
type Hashed = Result<Vec<(usize, [u8; 32])>>;

/// The digest of the directory whose entries (at `depth`, with their subtrees) are `items`.
fn hash_dir(items: &[Item<'_>], depth: usize) -> Result<[u8; 32]> {
    let mut children = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let (comps, node) = &items[i];
        if comps.len() != depth + 1 {
            return Err(tree_error(comps, "its parent directory is not in the tree"));
        }
        let name = comps[depth];
        let mut j = i + 1;
        while j < items.len() && items[j].0.len() > depth + 1 && items[j].0[depth] == name {
            j += 1;
        }
        if j < items.len() && items[j].0.len() == depth + 1 && items[j].0[depth] == name {
            return Err(tree_error(comps, "listed twice"));
        }
        let sub = match node.kind {
            NodeKind::Dir => Some(hash_dir(&items[i + 1..j], depth + 1)?),
            _ if j > i + 1 => return Err(tree_error(&items[i + 1].0, "inside a non-directory")),
            _ => None,
        };
        children.push((name, *node, sub));
        i = j;
    }
    Ok(dir_digest(&children))
}

fn dir_digest(children: &[Child<'_>]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"s");
    h.update(&(TREE_VERSION.len() as u64).to_be_bytes());
    h.update(TREE_VERSION.as_bytes());
    h.update(&(children.len() as u64).to_be_bytes());
    for (name, node, sub) in children {
        h.update(&(name.len() as u64).to_be_bytes());
        h.update(name);
        put_node(&mut h, node, sub.as_ref());
    }
    *h.finalize().as_bytes()
}

fn put_node(h: &mut blake3::Hasher, node: &Node, sub: Option<&[u8; 32]>) {
    let tag = match node.kind {
        NodeKind::File { .. } => b'f',
        NodeKind::Dir => b'd',
        NodeKind::Symlink { .. } => b'l',
        NodeKind::CharDevice { .. } => b'c',
        NodeKind::BlockDevice { .. } => b'b',
        NodeKind::Fifo => b'p',
        NodeKind::Socket => b's',
    };
    h.update(&[tag]);
    h.update(&(node.mode & 0o7777).to_be_bytes());
    h.update(&node.uid.to_be_bytes());
    h.update(&node.gid.to_be_bytes());
    match &node.kind {
        NodeKind::File { digest } => {
            h.update(digest);
        }
        NodeKind::Dir => {
            h.update(sub.unwrap_or(&[0; 32]));
        }
        NodeKind::Symlink { target } => {
            h.update(&(target.len() as u64).to_be_bytes());
            h.update(target);
        }
        NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
            h.update(&major.to_be_bytes());
            h.update(&minor.to_be_bytes());
        }
        NodeKind::Fifo | NodeKind::Socket => {}
    }
}

/// The normal components of a relative path, as bytes.
fn components(path: &Path) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name.as_bytes()),
            Component::CurDir if out.is_empty() => {}
            _ => {
                return Err(Error::Tree {
                    path: path.display().to_string(),
                    reason: "not a plain relative path".into(),
                })
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Tree {
            path: path.display().to_string(),
            reason: "empty path (the root is not an entry)".into(),
        });
    }
    Ok(out)
}

fn tree_error(comps: &[&[u8]], reason: &str) -> Error {
    let path: Vec<String> = comps
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    Error::Tree {
        path: path.join("/"),
        reason: reason.into(),
    }
}

/// Walks `root/rel` in name order, appending kept entries (files with a zero digest for now).
/// Returns whether anything was kept.
fn walk(
    root: &Path,
    rel: &Path,
    select: &impl Fn(&Path, &Metadata) -> Selection,
    out: &mut Vec<Entry>,
) -> Result<bool> {
    let dir = root.join(rel);
    let io = |source| Error::Io {
        path: dir.clone(),
        source,
    };
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let before = out.len();
    for name in names {
        let path = rel.join(&name);
        let abs = root.join(&path);
        let meta = fs::symlink_metadata(&abs).map_err(|source| Error::Io {
            path: abs.clone(),
            source,
        })?;
        let choice = select(&path, &meta);
        if choice == Selection::Exclude || (choice == Selection::Descend && !meta.is_dir()) {
            continue;
        }
        let at = out.len();
        out.push(Entry {
            node: node_of(&abs, &meta)?,
            path: path.clone(),
        });
        if meta.is_dir() {
            let kept = walk(root, &path, select, out)?;
            if choice == Selection::Descend && !kept {
                out.truncate(at);
            }
        }
    }
    Ok(out.len() > before)
}

/// The node of a walked entry (files get their digest later).
fn node_of(abs: &Path, meta: &Metadata) -> Result<Node> {
    let ft = meta.file_type();
    let (major, minor) = split_dev(meta.rdev());
    let kind = if ft.is_file() {
        NodeKind::File { digest: [0; 32] }
    } else if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        let target = fs::read_link(abs).map_err(|source| Error::Io {
            path: abs.to_path_buf(),
            source,
        })?;
        NodeKind::Symlink {
            target: target.as_os_str().as_bytes().to_vec(),
        }
    } else if ft.is_char_device() {
        NodeKind::CharDevice { major, minor }
    } else if ft.is_block_device() {
        NodeKind::BlockDevice { major, minor }
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else {
        NodeKind::Socket
    };
    Ok(Node {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// Linux's `major()` and `minor()` of a `dev_t`.
fn split_dev(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    (major, minor)
}

/// The content digests of the walked files (None for other entries), on `threads` threads.
fn hash_files(root: &Path, entries: &[Entry], threads: usize) -> Result<Vec<Option<[u8; 32]>>> {
    let files: Vec<usize> = (0..entries.len())
        .filter(|&i| matches!(entries[i].node.kind, NodeKind::File { .. }))
        .collect();
    let next = AtomicUsize::new(0);
    let work = || -> Hashed {
        let mut done = Vec::new();
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = files.get(n) else {
                return Ok(done);
            };
            done.push((i, file_digest(&root.join(&entries[i].path))?));
        }
    };
    let threads = threads.clamp(1, files.len().max(1));
    let results: Vec<Hashed> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut results = vec![work()];
        for h in handles {
            results.push(h.join().unwrap_or_else(|_| {
                Err(Error::Tree {
                    path: root.display().to_string(),
                    reason: "a hashing thread panicked".into(),
                })
            }));
        }
        results
    });
    let mut digests = vec![None; entries.len()];
    for batch in results {
        for (i, d) in batch? {
            digests[i] = Some(d);
        }
    }
    Ok(digests)
}

#[cfg(test)]
mod tests;

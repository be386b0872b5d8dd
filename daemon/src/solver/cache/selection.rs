//! Narrower keys for ops that read only part of a local source: a FileOp copying `go.mod` from
//! the build context is keyed by `go.mod` alone, so editing another file of the context keeps
//! it cached. Only ever wider than what the op reads: when in doubt (a wildcard at the top, a
//! symlink on the way, the input used for more than copies), the whole source's key is used.

use cachestore::{CacheKey, KeyEncoder};
use nodekit_filesync::{Entry, EntryKind};
use nodekit_proto::pb::{file_action::Action, FileOp};

use crate::solver::result::{LocalContent, Ref};

/// Replaces, in `keys`, the key of each local-source input `file` only copies from by the key
/// of the paths it copies.
pub fn narrow_file_inputs(file: &FileOp, inputs: &[Ref], keys: &mut [CacheKey]) {
    for (index, input) in inputs.iter().enumerate() {
        let Some(content) = &input.content else {
            continue;
        };
        let Some(sources) = copy_sources(file, index as i64) else {
            continue;
        };
        if let Some(key) = selection_key(content, &sources) {
            keys[index] = key;
        }
    }
}

/// The `src` of every copy reading input `index`; None if the input is used any other way.
fn copy_sources(file: &FileOp, index: i64) -> Option<Vec<&str>> {
    let mut sources = Vec::new();
    for action in &file.actions {
        if action.input == index {
            return None;
        }
        if action.secondary_input != index {
            continue;
        }
        match &action.action {
            Some(Action::Copy(copy)) => sources.push(copy.src.as_str()),
            _ => return None,
        }
    }
    (!sources.is_empty()).then_some(sources)
}

/// The key of what `sources` select in `content`: for each, every entry at or below its
/// directory part before the first wildcard.
fn selection_key(content: &LocalContent, sources: &[&str]) -> Option<CacheKey> {
    let mut key = KeyEncoder::new("source.local.selection");
    for source in sources {
        let prefix = fixed_prefix(source)?;
        if through_symlink(content, &prefix) {
            return None;
        }
        key.str("path", &prefix);
        key.bytes("content", &subtree_digest(content, &prefix));
    }
    Some(key.finish())
}

/// The path up to the first component with a wildcard, relative, cleaned; None for the root.
fn fixed_prefix(source: &str) -> Option<String> {
    let cleaned = nodekit_llb::pathutil::clean(&format!("/{source}"));
    let fixed: Vec<&str> = cleaned
        .trim_start_matches('/')
        .split('/')
        .take_while(|part| !part.contains(['*', '?', '[', '\\']))
        .collect();
    let prefix = fixed.join("/");
    (!prefix.is_empty()).then_some(prefix)
}

/// Whether `path` or a directory above it is a symlink (a copy would follow it elsewhere).
fn through_symlink(content: &LocalContent, path: &str) -> bool {
    let mut at = String::new();
    path.split('/').any(|part| {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        content
            .get(&at)
            .is_some_and(|e| e.kind == EntryKind::Symlink)
    })
}

/// BLAKE3 over every entry at or below `prefix`, in path order (never times).
fn subtree_digest(content: &LocalContent, prefix: &str) -> [u8; 32] {
    let below = format!("{prefix}/");
    let mut hasher = blake3::Hasher::new();
    let entries = content
        .range(prefix.to_string()..)
        .take_while(|(path, _)| path.as_str() == prefix || path.starts_with(&below));
    for (path, entry) in entries {
        put(&mut hasher, path.as_bytes());
        put_entry(&mut hasher, entry);
    }
    *hasher.finalize().as_bytes()
}

fn put_entry(hasher: &mut blake3::Hasher, entry: &Entry) {
    let kind = match entry.kind {
        EntryKind::File => b'f',
        EntryKind::Dir => b'd',
        EntryKind::Symlink => b'l',
        EntryKind::Hardlink => b'h',
        EntryKind::Fifo => b'p',
    };
    hasher.update(&[kind]);
    for value in [entry.mode, entry.uid, entry.gid] {
        hasher.update(&value.to_le_bytes());
    }
    hasher.update(&entry.size.to_le_bytes());
    put(hasher, entry.linkname.as_bytes());
    let hex = entry.hash.map(|hash| hash.to_hex());
    put(hasher, hex.as_deref().unwrap_or_default().as_bytes());
}

fn put(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, hash: &str) -> Entry {
        Entry {
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 1,
            mod_time: 0,
            linkname: String::new(),
            hash: Some(blake3::hash(hash.as_bytes())),
        }
    }

    fn context(main: &str) -> LocalContent {
        LocalContent::from([
            ("go.mod".to_string(), entry(EntryKind::File, "aa")),
            ("src".to_string(), entry(EntryKind::Dir, "")),
            ("src/main.go".to_string(), entry(EntryKind::File, main)),
            ("link".to_string(), entry(EntryKind::Symlink, "")),
        ])
    }

    #[test]
    fn a_copy_of_one_file_ignores_changes_elsewhere() {
        let (before, after) = (context("01"), context("02"));
        let key = |c: &LocalContent, src: &str| selection_key(c, &[src]);
        assert_eq!(key(&before, "go.mod"), key(&after, "./go.mod"));
        assert_ne!(key(&before, "src"), key(&after, "src"));
        assert_ne!(key(&before, "src/*.go"), key(&after, "src/*.go"));
    }

    #[test]
    fn the_root_wildcards_at_the_top_and_symlinks_take_the_whole_source() {
        let content = context("01");
        assert_eq!(selection_key(&content, &["."]), None);
        assert_eq!(selection_key(&content, &["*.mod"]), None);
        assert_eq!(selection_key(&content, &["link/x"]), None);
        assert_eq!(fixed_prefix("/a/b*/c"), Some("a".to_string()));
    }
}

//! Validation of the received STAT sequence, before anything touches disk.
//!
//! Mirrors upstream's `Validator` (order and parents) and `Hardlinks` (link
//! targets): paths are relative and clean, every parent was listed earlier as
//! a directory, names grow strictly (byte-wise) within each directory in
//! depth-first order, and a hardlink names an earlier regular file.

use std::collections::HashMap;

use nodekit_proto::fsutil::types::Stat;

use crate::mode::{MODE_DIR, MODE_NAMED_PIPE, MODE_SYMLINK, MODE_TYPE};
use crate::summary::EntryKind;
use crate::{wirepath, SyncError};

/// A directory on the current depth-first path and the last name seen in it.
struct OpenDir {
    path: String,
    /// Empty before the first child: every real name sorts after it.
    last: String,
}

/// Checks STAT entries one by one, in arrival order.
pub(crate) struct Validator {
    /// The chain of directories from the root (`""`) to the current one.
    open: Vec<OpenDir>,
    /// Every accepted path and its kind (for parents and hardlink targets).
    seen: HashMap<String, EntryKind>,
    last_path: String,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            open: vec![OpenDir {
                path: String::new(),
                last: String::new(),
            }],
            seen: HashMap::new(),
            last_path: String::new(),
        }
    }
}

impl Validator {
    /// Validates the next entry and returns its kind.
    pub(crate) fn check(&mut self, stat: &Stat) -> Result<EntryKind, SyncError> {
        let path = stat.path.as_str();
        wirepath::check(path).map_err(|reason| SyncError::InvalidPath {
            path: path.to_string(),
            reason,
        })?;
        let kind = classify(stat)?;
        let (dir, base) = wirepath::split_parent(path);
        self.enter(path, dir)?;
        let Some(current) = self.open.last_mut() else {
            return Err(SyncError::Internal("the validator lost its root".into()));
        };
        if current.last.as_str() >= base {
            return Err(SyncError::OutOfOrder {
                path: path.to_string(),
                previous: self.last_path.clone(),
            });
        }
        current.last = base.to_string();
        if kind == EntryKind::Hardlink {
            self.check_hardlink(path, &stat.linkname)?;
        }
        self.seen.insert(path.to_string(), kind);
        if kind == EntryKind::Dir {
            self.open.push(OpenDir {
                path: path.to_string(),
                last: String::new(),
            });
        }
        self.last_path = path.to_string();
        Ok(kind)
    }

    /// Makes `dir` the current directory: it must be on the open chain
    /// (deeper directories are finished and closed).
    fn enter(&mut self, path: &str, dir: &str) -> Result<(), SyncError> {
        if let Some(pos) = self.open.iter().rposition(|d| d.path == dir) {
            self.open.truncate(pos + 1);
            return Ok(());
        }
        Err(match self.seen.get(dir) {
            // Listed, but we already walked past it.
            Some(EntryKind::Dir) => SyncError::OutOfOrder {
                path: path.to_string(),
                previous: self.last_path.clone(),
            },
            Some(_) => SyncError::ParentNotDirectory {
                path: path.to_string(),
                parent: dir.to_string(),
            },
            None => SyncError::MissingParent {
                path: path.to_string(),
            },
        })
    }

    fn check_hardlink(&self, path: &str, target: &str) -> Result<(), SyncError> {
        let ok = wirepath::check(target).is_ok() && self.seen.get(target) == Some(&EntryKind::File);
        if ok {
            Ok(())
        } else {
            Err(SyncError::InvalidHardlink {
                path: path.to_string(),
                target: target.to_string(),
            })
        }
    }
}

/// The kind of entry a stat describes, rejecting contradictory stats and
/// file types the receiver does not create (devices, sockets).
pub(crate) fn classify(stat: &Stat) -> Result<EntryKind, SyncError> {
    let invalid = |reason: &str| SyncError::InvalidStat {
        path: stat.path.clone(),
        reason: reason.to_string(),
    };
    if stat.size < 0 {
        return Err(invalid("negative size"));
    }
    let kind = match stat.mode & MODE_TYPE {
        0 if stat.linkname.is_empty() => EntryKind::File,
        // Upstream sends the inode's real size with a hardlink; it is ignored.
        0 => EntryKind::Hardlink,
        MODE_DIR => EntryKind::Dir,
        MODE_SYMLINK if stat.linkname.is_empty() => {
            return Err(invalid("symlink without a target"))
        }
        MODE_SYMLINK if stat.linkname.contains('\0') => {
            return Err(invalid("symlink target contains a NUL byte"))
        }
        MODE_SYMLINK => EntryKind::Symlink,
        MODE_NAMED_PIPE => EntryKind::Fifo,
        _ => {
            return Err(SyncError::UnsupportedType {
                path: stat.path.clone(),
                mode: stat.mode,
            })
        }
    };
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str) -> Stat {
        Stat {
            path: path.into(),
            mode: MODE_DIR | 0o755,
            ..Default::default()
        }
    }

    fn file(path: &str) -> Stat {
        Stat {
            path: path.into(),
            mode: 0o644,
            ..Default::default()
        }
    }

    fn run(stats: &[Stat]) -> Result<(), SyncError> {
        let mut v = Validator::default();
        stats.iter().try_for_each(|s| v.check(s).map(drop))
    }

    #[test]
    fn accepts_walk_order() {
        // "a" < "a-b" < "a.txt" byte-wise, and a's children come right after "a".
        let stats = [
            dir("a"),
            file("a/b"),
            dir("a/c"),
            file("a/c/d"),
            file("a/e"),
            file("a-b"),
            file("a.txt"),
            file("b"),
        ];
        run(&stats).unwrap();
    }

    #[test]
    fn rejects_children_after_leaving_dir() {
        let err = run(&[dir("a"), file("a.txt"), file("a/b")]).unwrap_err();
        assert!(matches!(err, SyncError::OutOfOrder { .. }), "{err}");
    }

    #[test]
    fn rejects_duplicates_and_descending_names() {
        assert!(matches!(
            run(&[file("b"), file("a")]),
            Err(SyncError::OutOfOrder { .. })
        ));
        assert!(matches!(
            run(&[file("a"), file("a")]),
            Err(SyncError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn rejects_missing_or_non_dir_parent() {
        assert!(matches!(
            run(&[file("a/b")]),
            Err(SyncError::MissingParent { .. })
        ));
        assert!(matches!(
            run(&[file("a"), file("a/b")]),
            Err(SyncError::ParentNotDirectory { .. })
        ));
    }

    #[test]
    fn hardlinks_need_an_earlier_file() {
        let link = |p: &str, t: &str| Stat {
            path: p.into(),
            mode: 0o644,
            linkname: t.into(),
            ..Default::default()
        };
        run(&[file("a"), link("b", "a")]).unwrap();
        assert!(matches!(
            run(&[link("a", "b"), file("b")]),
            Err(SyncError::InvalidHardlink { .. })
        ));
        assert!(matches!(
            run(&[dir("d"), link("e", "d")]),
            Err(SyncError::InvalidHardlink { .. })
        ));
        assert!(matches!(
            run(&[file("a"), link("b", "a"), link("c", "b")]),
            Err(SyncError::InvalidHardlink { .. })
        ));
    }
}

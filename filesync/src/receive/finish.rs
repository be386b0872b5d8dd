//! The last steps of a receive, once every entry and all content arrived:
//! hardlinks, directory metadata (children first, so creating entries does
//! not change a directory's mtime afterwards), and the sidecar state.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::AtFlags;

use super::safefs::{apply_meta_fd, lstat_at, Meta};
use super::tree::Tree;
use crate::summary::ReceiveSummary;
use crate::{wirepath, SyncError};

/// Completes the tree and returns the summary.
pub(crate) fn finish(mut tree: Tree, state_file: &Path) -> Result<ReceiveSummary, SyncError> {
    make_links(&mut tree)?;
    apply_dir_metadata(&tree)?;
    tree.record.new_state.save(state_file)?;
    Ok(tree.record.into_summary())
}

/// Creates every hardlink to its (earlier, regular) target. Neither side is
/// resolved through a symlink: both parents are opened component by
/// component without following links, and `linkat` does not follow the
/// target.
fn make_links(tree: &mut Tree) -> Result<(), SyncError> {
    let links = std::mem::take(&mut tree.record.links);
    for (path, target) in &links {
        let shown = tree.dirs.shown(path);
        let (dir, name) = wirepath::split_parent(path);
        let (target_dir, target_name) = wirepath::split_parent(target);
        let at = tree.dirs.open_dir(dir)?;
        let target_at = tree.dirs.open_dir(target_dir)?;
        nix::unistd::linkat(
            target_at.as_fd(),
            OsStr::new(target_name),
            at.as_fd(),
            OsStr::new(name),
            AtFlags::empty(),
        )
        .map_err(SyncError::io_with("create hardlink", &shown))?;
        // The new link changed the target's ctime: record it as it is now.
        let target_shown = tree.dirs.shown(target);
        if let Some(disk) = lstat_at(target_at.as_fd(), OsStr::new(target_name), &target_shown)? {
            if let Some(record) = tree.record.new_state.get_mut(target) {
                record.refresh(&disk);
            }
        }
    }
    Ok(())
}

/// Applies owner, mode and times to the directories, deepest first.
fn apply_dir_metadata(tree: &Tree) -> Result<(), SyncError> {
    for stat in tree.record.dirs.iter().rev() {
        let dir = tree.dirs.open_dir(&stat.path)?;
        let meta = Meta::from_stat(stat, tree.apply_owner);
        apply_meta_fd(dir.as_fd(), &meta, &tree.dirs.shown(&stat.path))?;
    }
    Ok(())
}

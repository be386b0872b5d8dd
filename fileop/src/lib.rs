//! LLB FileOp actions (mkdir, mkfile, rm, symlink, copy) performed on plain host directories,
//! with BuildKit's semantics (`solver/llbsolver/file`, fsutil's `copy`).
//!
//! Every path of an action is interpreted inside a root directory the way a process chrooted into
//! that root would see it: `..` stops at the root and symlinks (absolute or relative) resolve
//! inside the root, so nothing outside can be read or written. Error messages name paths as the
//! build sees them, never the host path of the root.
//!
//! # Copy semantics
//! - `src` and `dest` are cleaned; a trailing `/` (or `/.`) on `dest` creates it as a directory
//!   (with the parents), and the source is copied *into* it. Without the slash only the parent
//!   is created (with `createDestPath`; otherwise a missing parent is an error).
//! - A source directory is copied as a directory named after it into an existing destination
//!   directory; with `dirCopyContents` its contents are merged into the destination instead.
//!   A non-directory source lands inside an existing destination directory, else at `dest`.
//! - `followSymlink` follows a symlink named by `src` itself; symlinks below are copied as links.
//! - `allowWildcard` expands Go globs in `src`; no match is an error unless
//!   `allowEmptyWildcard`.
//! - `include_patterns` / `exclude_patterns` (dockerignore syntax) filter entries below a
//!   source directory; directories are created only on the way to included entries.
//! - `owner` sets the owner of everything copied and of created directories (otherwise the
//!   source ids are kept); `mode` (numeric, -1 = keep) or `modeStr` (`u+x`, `go-w`, `755`) set
//!   permissions; `timestamp` (ns, -1 = keep) sets atime and mtime.
//! - `alwaysReplaceExistingDestPaths` replaces destination entries of another type.
//! - Files hard-linked together in one source tree stay hard-linked in the copy.
//! - `attemptUnpackDockerCompatibility` extracts tar archives (plain, gzip, zstd; bzip2 and xz
//!   are [`FileOpError::Unsupported`]).

mod copy;
mod error;
mod meta;
mod mkdir;
mod mkfile;
mod resolve;
mod rm;
mod symlink;
pub mod userdb;
mod users;

use std::path::Path;

use nodekit_proto::pb::{file_action::Action, FileAction};

pub use copy::{copy, copy_limited};
pub use error::FileOpError;
pub use mkdir::mkdir;
pub use mkfile::mkfile;
pub use resolve::resolve_in_root;
pub use rm::rm;
pub use symlink::symlink;
pub use users::{NumericIdsOnly, PasswdResolver, UserResolver};

/// The host directories an action works on.
#[derive(Debug, Clone, Copy)]
pub struct ActionRoots<'a> {
    /// The action's input, modified in place: the destination of a copy.
    pub dest: &'a Path,
    /// The secondary input: the source of a copy. `None` copies from an empty directory
    /// (upstream's scratch), so only `/` exists.
    pub source: Option<&'a Path>,
}

/// Bounds on what one action may write, against hostile input (a decompression bomb).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Bytes an archive extraction may write (file contents, plus a tar block per entry);
    /// `None`: no limit (upstream's behaviour).
    pub unpack_bytes: Option<u64>,
    /// Set when the action's build is cancelled: an extraction stops at its next write (the
    /// action runs on a blocking thread that dropping its future does not stop).
    pub cancelled: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Performs one `FileAction` on `roots`, without limits.
pub fn apply(
    action: &FileAction,
    roots: ActionRoots<'_>,
    users: &dyn UserResolver,
) -> Result<(), FileOpError> {
    apply_limited(action, roots, users, &Limits::default())
}

/// Performs one `FileAction` on `roots` within `limits`.
pub fn apply_limited(
    action: &FileAction,
    roots: ActionRoots<'_>,
    users: &dyn UserResolver,
    limits: &Limits,
) -> Result<(), FileOpError> {
    match &action.action {
        Some(Action::Mkdir(op)) => mkdir(roots.dest, op, users),
        Some(Action::Mkfile(op)) => mkfile(roots.dest, op, users),
        Some(Action::Rm(op)) => rm(roots.dest, op),
        Some(Action::Symlink(op)) => symlink(roots.dest, op, users),
        Some(Action::Copy(op)) => match roots.source {
            Some(src) => copy_limited(src, roots.dest, op, users, limits),
            None => copy_from_scratch(roots.dest, op, users, limits),
        },
        None => Err(FileOpError::Invalid(
            "invalid action type <nil>".to_string(),
        )),
    }
}

/// A copy whose source is scratch: an empty private directory made for the call.
fn copy_from_scratch(
    dest: &Path,
    op: &nodekit_proto::pb::FileActionCopy,
    users: &dyn UserResolver,
    limits: &Limits,
) -> Result<(), FileOpError> {
    let scratch = scratch::ScratchDir::new()?;
    copy_limited(scratch.path(), dest, op, users, limits)
}

mod scratch {
    use std::fs;
    use std::os::unix::fs::DirBuilderExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::FileOpError;

    /// An empty directory removed on drop.
    pub(crate) struct ScratchDir(PathBuf);

    impl ScratchDir {
        pub(crate) fn new() -> Result<Self, FileOpError> {
            static SEQ: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "nodekit-fileop-scratch-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&path)
                .map_err(|e| FileOpError::os("mkdir", path.to_string_lossy(), e))?;
            Ok(ScratchDir(path))
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir(&self.0);
        }
    }
}

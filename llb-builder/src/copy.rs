//! The copy file action and its options (BuildKit's `llb.Copy` and `CopyInfo`).

use crate::file::{Chown, CopySource};

/// Copies `src` of a source (a state, or a chain of actions on one) to `dest`.
#[derive(Debug, Clone)]
pub struct Copy {
    pub(crate) source: CopySource,
    pub(crate) src: String,
    pub(crate) dest: String,
    pub(crate) info: Box<CopyInfo>,
}

/// How a copy behaves; every field defaults to off/empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct CopyInfo {
    /// Permissions of the copied files; None keeps the source's (written as -1).
    pub mode: Option<CopyMode>,
    pub follow_symlinks: bool,
    pub copy_dir_contents_only: bool,
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
    pub required_paths: Vec<String>,
    pub attempt_unpack: bool,
    pub create_dest_path: bool,
    pub allow_wildcard: bool,
    pub allow_empty_wildcard: bool,
    pub chown: Option<Chown>,
    pub created: Option<i64>,
    pub always_replace_existing_dest_paths: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum CopyMode {
    Bits(u32),
    Symbolic(String),
}

impl Copy {
    /// `src` (relative: to the source state's working directory) to `dest` (relative: to the
    /// target state's). A trailing `/` or `/.` on `dest` is kept.
    pub fn new(source: impl Into<CopySource>, src: &str, dest: &str) -> Copy {
        Copy {
            source: source.into(),
            src: src.to_string(),
            dest: dest.to_string(),
            info: Box::default(),
        }
    }

    /// Copy what symlinks point to rather than the links (for `src` itself).
    pub fn follow_symlinks(mut self, on: bool) -> Copy {
        self.info.follow_symlinks = on;
        self
    }

    /// For a directory `src`, copy its content, not the directory itself.
    pub fn copy_dir_contents_only(mut self, on: bool) -> Copy {
        self.info.copy_dir_contents_only = on;
        self
    }

    /// Unpack `src` if it is an archive (Dockerfile `ADD` semantics).
    pub fn attempt_unpack(mut self, on: bool) -> Copy {
        self.info.attempt_unpack = on;
        self
    }

    /// Create missing parent directories of `dest`.
    pub fn create_dest_path(mut self, on: bool) -> Copy {
        self.info.create_dest_path = on;
        self
    }

    /// Expand wildcards in `src`.
    pub fn allow_wildcard(mut self, on: bool) -> Copy {
        self.info.allow_wildcard = on;
        self
    }

    /// Don't fail when a wildcard matches nothing.
    pub fn allow_empty_wildcard(mut self, on: bool) -> Copy {
        self.info.allow_empty_wildcard = on;
        self
    }

    /// Replace existing paths at the destination even if their type differs.
    pub fn always_replace_existing_dest_paths(mut self, on: bool) -> Copy {
        self.info.always_replace_existing_dest_paths = on;
        self
    }

    /// The owner of the copied files.
    pub fn chown(mut self, owner: Chown) -> Copy {
        self.info.chown = Some(owner);
        self
    }

    /// Permission bits of the copied files (default: keep the source's).
    pub fn mode(mut self, mode: u32) -> Copy {
        self.info.mode = Some(CopyMode::Bits(mode));
        self
    }

    /// Symbolic permissions (`u+x,g-w`) applied to the copied files.
    pub fn mode_str(mut self, mode: &str) -> Copy {
        self.info.mode = Some(CopyMode::Symbolic(mode.to_string()));
        self
    }

    /// Only copy paths matching these patterns.
    pub fn include_patterns(mut self, patterns: &[String]) -> Copy {
        self.info.include_patterns = patterns.to_vec();
        self
    }

    /// Don't copy paths matching these patterns (adds to earlier ones).
    pub fn exclude_patterns(mut self, patterns: &[String]) -> Copy {
        self.info.exclude_patterns.extend_from_slice(patterns);
        self
    }

    /// Paths that must exist (with include patterns).
    pub fn required_paths(mut self, paths: &[String]) -> Copy {
        self.info.required_paths = paths.to_vec();
        self
    }

    /// The modification time to set, in nanoseconds since the Unix epoch.
    pub fn created(mut self, unix_nanos: i64) -> Copy {
        self.info.created = Some(unix_nanos);
        self
    }
}

//! The recursive copy of one source entry (fsutil's `copier`): include/exclude filtering,
//! delayed creation of parent directories, merge into existing directories.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use nodekit_patterns::MatchInfo;

use super::options::Options;
use crate::error::FileOpError;
use crate::meta::remove_all;
use crate::resolve::shown;

/// A source directory whose copy may still have to be created (when an include pattern
/// matches something below it).
struct ParentDir {
    src: PathBuf,
    dst: PathBuf,
    copied: bool,
}

/// Whether an entry passed the patterns, and the match state handed to its children.
struct Filter {
    include: bool,
    excluded: bool,
    inc: MatchInfo,
    exc: MatchInfo,
}

/// Copies one source tree; lives for one source of an action.
pub(crate) struct Copier<'a> {
    pub(super) opts: &'a Options,
    src_root: &'a Path,
    dest_root: &'a Path,
    /// First copy of each multiply-linked source inode, to link later ones to.
    pub(super) inodes: HashMap<(u64, u64), PathBuf>,
    parents: Vec<ParentDir>,
}

impl<'a> Copier<'a> {
    pub(crate) fn new(opts: &'a Options, src_root: &'a Path, dest_root: &'a Path) -> Self {
        Copier {
            opts,
            src_root,
            dest_root,
            inodes: HashMap::new(),
            parents: Vec::new(),
        }
    }

    pub(super) fn shown_src(&self, p: &Path) -> String {
        shown(self.src_root, p)
    }

    pub(super) fn shown_dest(&self, p: &Path) -> String {
        shown(self.dest_root, p)
    }

    /// Copies `src` (host path) to `target`, the top of a copy.
    pub(crate) fn copy_root(&mut self, src: &Path, target: &Path) -> Result<(), FileOpError> {
        let none = MatchInfo::default();
        self.copy(src, "", target, false, &none, &none)
    }

    fn filter(&self, comps: &str, inc: &MatchInfo, exc: &MatchInfo) -> Filter {
        let (include, inc) = match (&self.opts.include, comps.is_empty()) {
            (Some(m), false) => m.matches_with_parent(comps, inc),
            _ => (true, MatchInfo::default()),
        };
        let (excluded, exc) = match (&self.opts.exclude, comps.is_empty()) {
            (Some(m), false) => m.matches_with_parent(comps, exc),
            _ => (false, MatchInfo::default()),
        };
        Filter {
            include: include && !excluded,
            excluded,
            inc,
            exc,
        }
    }

    /// Copies `src` to `target`. `comps` is the path below the top source (empty for the top,
    /// which the patterns never filter); `overwrite` is false only for the top, whose existing
    /// directory keeps its metadata.
    fn copy(
        &mut self,
        src: &Path,
        comps: &str,
        target: &Path,
        overwrite: bool,
        inc: &MatchInfo,
        exc: &MatchInfo,
    ) -> Result<(), FileOpError> {
        let f = self.filter(comps, inc, exc);
        if !f.include && self.opts.include.is_none() && !self.opts.exclusions() {
            return Ok(());
        }
        let fi = self.lstat_src(src)?;
        if !f.include && !fi.is_dir() {
            return Ok(());
        }
        let target_fi = self.lstat_target(target)?;
        if f.include {
            self.remove_target_if_needed(target, &fi, target_fi.as_ref())?;
            self.create_parent_dirs(overwrite)?;
        }
        let ft = fi.file_type();
        let mut copy_info = f.include;
        let mut restore_time = false;
        if ft.is_dir() {
            let created = self.copy_dir(src, comps, target, &fi, overwrite, &f)?;
            if !overwrite {
                copy_info = created;
                restore_time = !created;
            }
        } else {
            self.ensure_empty_file_target(target)?;
            if ft.is_file() {
                self.copy_regular(src, target, &fi)?;
            } else if ft.is_symlink() {
                self.copy_symlink(src, target)?;
            } else {
                self.copy_special(target, &fi)?;
            }
        }
        if copy_info {
            self.copy_file_info(&fi, src, target)?;
        } else if restore_time && target_fi.is_some() {
            self.copy_file_timestamp(&fi, target)?;
        }
        Ok(())
    }

    fn lstat_src(&self, src: &Path) -> Result<Metadata, FileOpError> {
        fs::symlink_metadata(src).map_err(|e| {
            let p = self.shown_src(src);
            FileOpError::os("lstat", p.clone(), e).context(format!("failed to stat {p}"))
        })
    }

    fn lstat_target(&self, target: &Path) -> Result<Option<Metadata>, FileOpError> {
        match fs::symlink_metadata(target) {
            Ok(md) => Ok(Some(md)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                let p = self.shown_dest(target);
                Err(FileOpError::os("lstat", p.clone(), e).context(format!("failed to stat {p}")))
            }
        }
    }

    /// With alwaysReplaceExistingDestPaths, removes an existing target unless both are
    /// directories (which merge).
    fn remove_target_if_needed(
        &self,
        target: &Path,
        fi: &Metadata,
        target_fi: Option<&Metadata>,
    ) -> Result<(), FileOpError> {
        match target_fi {
            Some(t) if self.opts.always_replace && !(fi.is_dir() && t.is_dir()) => {
                remove_all(target)
                    .map_err(|e| FileOpError::os("unlinkat", self.shown_dest(target), e))
            }
            _ => Ok(()),
        }
    }

    /// Creates the copies of parent directories delayed by include patterns.
    fn create_parent_dirs(&mut self, overwrite: bool) -> Result<(), FileOpError> {
        for i in 0..self.parents.len() {
            if self.parents[i].copied {
                continue;
            }
            let (src, dst) = (self.parents[i].src.clone(), self.parents[i].dst.clone());
            let fi = self.lstat_src(&src)?;
            if !fi.is_dir() {
                let p = self.shown_src(&src);
                return Err(FileOpError::Invalid(format!("{p} is not a directory")));
            }
            if self.copy_directory_only(&dst, &fi, overwrite)? {
                self.copy_file_info(&fi, &src, &dst)?;
            }
            self.parents[i].copied = true;
        }
        Ok(())
    }

    /// Copies a directory and what is below it; returns whether the directory was created.
    fn copy_dir(
        &mut self,
        src: &Path,
        comps: &str,
        dst: &Path,
        fi: &Metadata,
        overwrite: bool,
        f: &Filter,
    ) -> Result<bool, FileOpError> {
        let created = f.include && self.copy_directory_only(dst, fi, overwrite)?;
        self.parents.push(ParentDir {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            copied: f.include,
        });
        let res = self.copy_children(src, comps, dst, f);
        self.parents.pop();
        res.map(|()| created)
    }

    fn copy_children(
        &mut self,
        src: &Path,
        comps: &str,
        dst: &Path,
        f: &Filter,
    ) -> Result<(), FileOpError> {
        if f.excluded && !self.opts.exclusions() {
            return Ok(());
        }
        let read_err = |e| {
            let p = self.shown_src(src);
            FileOpError::os("open", p.clone(), e).context(format!("failed to read {p}"))
        };
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(read_err)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        names.sort();
        for name in names {
            let lossy = name.to_string_lossy();
            let child = if comps.is_empty() {
                lossy.into_owned()
            } else {
                format!("{comps}/{lossy}")
            };
            self.copy(
                &src.join(&name),
                &child,
                &dst.join(&name),
                true,
                &f.inc,
                &f.exc,
            )?;
        }
        Ok(())
    }
}

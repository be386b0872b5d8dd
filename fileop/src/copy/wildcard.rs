//! Wildcard sources (`allowWildcard`): Go `filepath.Match` globs in the components of a path,
//! expanded the way fsutil's `ResolveWildcards` does.

use std::fs;
use std::path::Path;

use nodekit_patterns::{contains_wildcards, glob_match};

use crate::error::FileOpError;
use crate::resolve::{clean, resolve_str, shown};

/// Splits a path before its first component holding a wildcard: `/src/*/x` -> (`/src`, `*/x`).
/// Both parts are cleaned; the second is empty when there is no wildcard.
pub(crate) fn split_wildcards(p: &str) -> (String, String) {
    let cleaned = clean(p);
    let mut found = false;
    let (mut p1, mut p2) = (Vec::new(), Vec::new());
    for part in cleaned.split('/') {
        found = found || contains_wildcards(part);
        let part = if part.is_empty() { "/" } else { part };
        if found {
            p2.push(part);
        } else {
            p1.push(part);
        }
    }
    (join(&p1), join(&p2))
}

/// Go's `filepath.Join` of already split parts.
fn join(parts: &[&str]) -> String {
    let parts: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        String::new()
    } else {
        clean(&parts.join("/"))
    }
}

/// Expands the wildcards of `src` (a cleaned absolute path) inside `root`.
///
/// A path without wildcards is returned as is (cleaned). Otherwise the part before the first
/// wildcard component is resolved inside the root (its last component followed only with
/// `follow_links`) and walked in name order without following symlinks; every entry whose path
/// relative to it matches the rest is returned, relative to `root` (a matching directory is not
/// searched further). A missing base directory is an error; no match is an empty list.
pub(crate) fn resolve_wildcards(
    root: &Path,
    src: &str,
    follow_links: bool,
) -> Result<Vec<String>, FileOpError> {
    let (d1, d2) = split_wildcards(src);
    if d2.is_empty() {
        return Ok(vec![d1]);
    }
    let base = resolve_str(root, &d1, follow_links)?;
    let md =
        fs::symlink_metadata(&base).map_err(|e| FileOpError::os("lstat", shown(root, &base), e))?;
    let mut walk = Walk {
        root,
        pattern: &d2,
        max_slashes: max_slashes(&d2),
        out: Vec::new(),
    };
    if md.is_dir() {
        walk.dir(&base, "")?;
    }
    Ok(walk.out)
}

/// How many `/` a name matching `pattern` can hold: each literal `/` and each character class
/// (which may match a `/`) can account for one; `*` and `?` never match it.
fn max_slashes(pattern: &str) -> usize {
    pattern.chars().filter(|c| *c == '/' || *c == '[').count()
}

struct Walk<'a> {
    root: &'a Path,
    pattern: &'a str,
    max_slashes: usize,
    out: Vec<String>,
}

impl Walk<'_> {
    /// Visits the entries of `dir`, whose path relative to the walk's base is `rel`.
    fn dir(&mut self, dir: &Path, rel: &str) -> Result<(), FileOpError> {
        let open_err = |e| FileOpError::os("open", shown(self.root, dir), e);
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(open_err)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(open_err)?;
        names.sort();
        for name in names {
            let host = dir.join(&name);
            let name = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            let Ok(md) = fs::symlink_metadata(&host) else {
                continue;
            };
            if glob_match(self.pattern, &child_rel).unwrap_or(false) {
                let in_root = shown(self.root, &host);
                self.out.push(in_root.trim_start_matches('/').to_string());
            } else if md.is_dir() && child_rel.matches('/').count() < self.max_slashes {
                self.dir(&host, &child_rel)?;
            }
        }
        Ok(())
    }
}

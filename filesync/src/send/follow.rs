//! `follow_paths`: resolve symlinks named by the receiver into extra include
//! paths (upstream `FollowLinks`). A followed path and every symlink on the
//! way are included, and so is what they point to. Link targets are read
//! as paths inside the root: an absolute target `/x` means `<root>/x`, and
//! `..` cannot climb above the root.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;

use crate::{wirepath, SyncError};
use nodekit_patterns::{contains_wildcards, glob_match};

/// Symlink chains longer than this are not followed further (loops are
/// already cut by the `resolved` set; this bounds pathological fan-out).
const MAX_DEPTH: usize = 64;

/// Resolves `paths` under `root`. `None` means the root itself was named, so
/// nothing is to be filtered.
pub(crate) fn follow_links(
    root: &Path,
    paths: &[String],
) -> Result<Option<Vec<String>>, SyncError> {
    let mut resolver = Resolver {
        root,
        resolved: BTreeSet::new(),
    };
    for p in paths {
        resolver.append(p, 0)?;
    }
    let sorted: Vec<String> = resolver.resolved.into_iter().collect();
    Ok(dedupe_paths(&sorted))
}

/// Drops paths inside the previous path (input expected sorted); `None` when
/// the root (`.`) is among them.
pub(crate) fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    let mut last = String::new();
    for p in paths {
        if p == "." {
            return None;
        }
        if p.starts_with(&format!("{last}/")) {
            continue;
        }
        out.push(p.clone());
        last = p.clone();
    }
    Some(out)
}

struct Resolver<'a> {
    root: &'a Path,
    resolved: BTreeSet<String>,
}

impl Resolver<'_> {
    /// Walks `p` component by component; at the first symlink, records it
    /// and continues from each of its targets with the rest of the path.
    fn append(&mut self, p: &str, depth: usize) -> Result<(), SyncError> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let mut rest = inside_root(p);
        let mut current = String::from(".");
        loop {
            let (first, remainder) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
            current = if current == "." {
                first.to_string()
            } else {
                format!("{current}/{first}")
            };
            let remainder = remainder.to_string();
            let targets = self.read_symlink(&current, true)?;
            if (remainder.is_empty() || !targets.is_empty()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if !targets.is_empty() {
                self.resolved.insert(current);
                for target in targets {
                    self.append(&wirepath::join(&target, &remainder), depth + 1)?;
                }
                return Ok(());
            }
            if remainder.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
            rest = remainder;
        }
    }

    /// The root-relative targets of `p` if it is a symlink (several when the
    /// last component is a wildcard matching several symlinks).
    fn read_symlink(&self, p: &str, allow_wildcard: bool) -> Result<Vec<String>, SyncError> {
        let (dir, base) = wirepath::split_parent(p);
        if allow_wildcard && contains_wildcards(base) {
            let mut out = Vec::new();
            for name in self.list_dir(dir)? {
                // Like upstream, a malformed glob simply matches nothing.
                if glob_match(base, &name).unwrap_or(false) {
                    out.extend(self.read_symlink(&wirepath::join(dir, &name), false)?);
                }
            }
            return Ok(out);
        }
        if p == "." {
            return Ok(Vec::new());
        }
        let local = self.root.join(p);
        let meta = match std::fs::symlink_metadata(&local) {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(SyncError::io("stat", &local, e)),
        };
        if !meta.file_type().is_symlink() {
            return Ok(Vec::new());
        }
        let link =
            std::fs::read_link(&local).map_err(SyncError::io_with("read symlink", &local))?;
        let link = link
            .to_str()
            .ok_or_else(|| SyncError::NonUtf8Path { path: link.clone() })?;
        let link = wirepath::clean(link);
        if link.starts_with('/') {
            Ok(vec![link])
        } else {
            Ok(vec![wirepath::join("/", &wirepath::join(dir, &link))])
        }
    }

    /// Sorted UTF-8 names in a root-relative directory (empty if missing).
    fn list_dir(&self, dir: &str) -> Result<Vec<String>, SyncError> {
        let local = self.root.join(dir);
        let entries = match std::fs::read_dir(&local) {
            Ok(e) => e,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(SyncError::io("read directory", &local, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(SyncError::io_with("read directory", &local))?;
            // Names that cannot be sent cannot be followed either.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Cleans a followed path as if rooted, so `..` cannot leave the root, and
/// returns it relative (`.` for the root itself).
fn inside_root(p: &str) -> String {
    let rooted = wirepath::clean(&format!("/{p}"));
    match rooted.trim_start_matches('/') {
        "" => ".".to_string(),
        rel => rel.to_string(),
    }
}

fn is_not_found(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_symlink_chains_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/real"), "x").unwrap();
        symlink("sub/real", root.join("Dockerfile")).unwrap();
        symlink("/sub", root.join("abs")).unwrap();
        symlink("../../../sub", root.join("up")).unwrap();

        let got = follow_links(root, &["Dockerfile".into()]).unwrap().unwrap();
        assert_eq!(got, ["Dockerfile", "sub/real"]);

        let got = follow_links(root, &["abs/real".into(), "up".into()])
            .unwrap()
            .unwrap();
        assert_eq!(got, ["abs", "sub", "up"]);

        let got = follow_links(root, &["Docker*".into()]).unwrap().unwrap();
        assert_eq!(got, ["Docker*", "sub/real"]);

        assert_eq!(follow_links(root, &[".".into()]).unwrap(), None);
    }

    #[test]
    fn symlink_loops_terminate() {
        let dir = tempfile::tempdir().unwrap();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        let got = follow_links(dir.path(), &["a".into()]).unwrap().unwrap();
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn dedupes_nested_paths() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedupe_paths(&v(&["a", "a/b", "ab", "c"])),
            Some(v(&["a", "ab", "c"]))
        );
        assert_eq!(dedupe_paths(&v(&["a", "."])), None);
    }
}

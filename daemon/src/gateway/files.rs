//! Reading a result's files for a frontend (`ReadFile`, `ReadDir`, `StatFile`): paths resolve
//! inside the mounted result as if it were `/`, so no symlink reaches the host.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nodekit_proto::fsutil::types::Stat;

use crate::solver::SolveError;

/// A byte range of a file; a length of 0 reads to the end, as upstream's ReadFile does.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadRange {
    pub offset: u64,
    pub length: u64,
}

/// A file's stat in fsutil's wire form.
pub type FileStat = Stat;

/// Reads `path` (or a range of it) from the result mounted at `root`.
pub fn read_file(root: &Path, path: &str, range: Option<ReadRange>) -> Result<Vec<u8>, SolveError> {
    let host = resolve(root, path, true)?;
    let mut file = std::fs::File::open(&host).map_err(|e| io_error("open", path, e))?;
    let mut data = Vec::new();
    match range {
        Some(range) => {
            file.seek(SeekFrom::Start(range.offset))
                .map_err(|e| io_error("seek", path, e))?;
            let limit = if range.length == 0 {
                u64::MAX
            } else {
                range.length
            };
            file.take(limit).read_to_end(&mut data)
        }
        None => file.read_to_end(&mut data),
    }
    .map_err(|e| io_error("read", path, e))?;
    Ok(data)
}

/// The entries of directory `path`, optionally only those whose name matches `pattern`.
pub fn read_dir(root: &Path, path: &str, pattern: &str) -> Result<Vec<FileStat>, SolveError> {
    let host = resolve(root, path, true)?;
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(&host).map_err(|e| io_error("readdir", path, e))? {
        let entry = entry.map_err(|e| io_error("readdir", path, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !pattern.is_empty() && !name_matches(pattern, &name)? {
            continue;
        }
        entries.push(stat_of(&entry.path(), &name)?);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// The stat of `path` itself (a final symlink is not followed, as upstream's StatFile).
pub fn stat_file(root: &Path, path: &str) -> Result<FileStat, SolveError> {
    let host = resolve(root, path, false)?;
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    stat_of(&host, &name)
}

fn resolve(root: &Path, path: &str, follow_final: bool) -> Result<PathBuf, SolveError> {
    nodekit_fileop::resolve_in_root(root, path, follow_final)
        .map_err(|e| SolveError::Other(e.to_string()))
}

fn name_matches(pattern: &str, name: &str) -> Result<bool, SolveError> {
    nodekit_patterns::glob_match(pattern, name)
        .map_err(|e| SolveError::InvalidDefinition(format!("pattern {pattern:?}: {e}")))
}

fn stat_of(host: &Path, name: &str) -> Result<FileStat, SolveError> {
    let meta = std::fs::symlink_metadata(host).map_err(|e| io_error("lstat", name, e))?;
    let linkname = if meta.file_type().is_symlink() {
        std::fs::read_link(host)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Stat {
        path: name.to_string(),
        mode: nodekit_filesync::mode::go_mode_from_unix(meta.mode()),
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size() as i64,
        mod_time: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        linkname,
        devmajor: nix::sys::stat::major(meta.rdev()) as i64,
        devminor: nix::sys::stat::minor(meta.rdev()) as i64,
        ..Default::default()
    })
}

fn io_error(op: &str, path: &str, error: std::io::Error) -> SolveError {
    SolveError::Other(format!("{op} {path}: {error}"))
}

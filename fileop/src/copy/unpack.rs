//! `attemptUnpackDockerCompatibility` (Dockerfile `ADD` of a local archive): a source that is a
//! tar archive, possibly compressed, is extracted into the destination instead of copied.

use std::fs::{self, File};
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;

use super::options::Options;
use super::untar::{extract, Budget};
use crate::error::FileOpError;
use crate::meta::mkdir_all;
use crate::resolve::{resolve_str, shown};
use crate::Limits;

/// The compression of an archive, from its magic bytes (as go-archive's `DetectCompression`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

fn detect(magic: &[u8]) -> Compression {
    const TABLE: [(&[u8], Compression); 4] = [
        (&[0x1f, 0x8b, 0x08], Compression::Gzip),
        (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
        (b"BZh", Compression::Bzip2),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
    ];
    TABLE
        .iter()
        .find(|(m, _)| magic.starts_with(m))
        .map_or(Compression::None, |(_, c)| *c)
}

/// A reader of the decompressed stream.
fn decompressed(file: File, c: Compression, path: &str) -> Result<Box<dyn Read>, FileOpError> {
    let reader = BufReader::new(file);
    match c {
        Compression::None => Ok(Box::new(reader)),
        Compression::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(reader))),
        Compression::Zstd => zstd::Decoder::with_buffer(reader)
            .map(|d| Box::new(d) as Box<dyn Read>)
            .map_err(|e| FileOpError::os("open", path, e)),
        Compression::Bzip2 | Compression::Xz => Err(FileOpError::Unsupported {
            what: format!("extracting {c:?} compressed archive {path}"),
        }),
    }
}

/// Opens `host` (a regular file) positioned at its start, with its compression.
fn open_source(host: &Path) -> Option<(File, Compression)> {
    let md = fs::symlink_metadata(host).ok()?;
    if !md.is_file() {
        return None;
    }
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(host)
        .ok()?;
    let mut magic = Vec::with_capacity(8);
    (&mut file).take(8).read_to_end(&mut magic).ok()?;
    file.rewind().ok()?;
    Some((file, detect(&magic)))
}

/// Whether the stream starts with a valid tar header.
fn is_tar(reader: Box<dyn Read>) -> bool {
    let mut archive = tar::Archive::new(reader);
    let first = archive.entries().ok().and_then(|mut e| e.next());
    matches!(first, Some(Ok(_)))
}

/// Extracts source `s` into `dest_path` when it is an archive; `Ok(false)` when it is not (the
/// caller then copies it). Owner and timestamp apply to the destination directories created;
/// with an owner every extracted entry gets it, otherwise the archive's ids are kept.
pub(super) fn unpack(
    opts: &Options,
    limits: &Limits,
    src_root: &Path,
    s: &str,
    dest_root: &Path,
    dest_path: &str,
) -> Result<bool, FileOpError> {
    let src_host = resolve_str(src_root, s, true)?;
    let shown_src = shown(src_root, &src_host);
    let Some((file, compression)) = open_source(&src_host) else {
        return Ok(false);
    };
    let probe = file
        .try_clone()
        .map_err(|e| FileOpError::os("open", &*shown_src, e))?;
    if !is_tar(decompressed(probe, compression, &shown_src)?) {
        return Ok(false);
    }
    let mut file = file;
    file.rewind()
        .map_err(|e| FileOpError::os("seek", &*shown_src, e))?;
    let reader = decompressed(file, compression, &shown_src)?;
    let dest = resolve_str(dest_root, dest_path, true)?;
    mkdir_all(dest_root, &dest, 0o755, opts.owner, opts.ts.as_ref())?;
    let budget = Budget::new(limits);
    extract(reader, dest_root, &dest, opts.owner, budget)
        .map_err(|e| e.context(format!("failed to extract {shown_src}")))?;
    Ok(true)
}

//! A step's layer straight from its overlay upper directory (or, with no parent, its whole
//! directory): the work is proportional to what the step changed, not to the size of the tree
//! below it, as with BuildKit's overlay differ. Overlay whiteouts (0/0 character devices)
//! become `.wh.` files and opaque directories `.wh..wh..opq`, as the OCI layer format has them.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use containerd_client::types::Mount;
use sha2::{Digest, Sha256};
use tar::{Builder, EntryType, Header, HeaderMode};

/// Extended attributes kept in layers (overlay's own `trusted.overlay.*` never are).
const KEPT_XATTRS: [&str; 1] = ["security.capability"];
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The directory holding exactly what a step changed, when the snapshot's mounts show it: an
/// overlay's `upperdir`, or the bind-mounted directory of a snapshot without a parent.
pub fn changes_dir(mounts: &[Mount], has_parent: bool) -> Option<PathBuf> {
    let [mount] = mounts else {
        return None;
    };
    match mount.r#type.as_str() {
        "overlay" => overlay_option(mount, "upperdir").map(PathBuf::from),
        "bind" if !has_parent => Some(PathBuf::from(&mount.source)),
        _ => None,
    }
}

/// The directory of a committed snapshot itself (what its layer holds), from the mounts of a
/// read-only view on it: containerd's overlay snapshotter binds that directory when it is the
/// whole stack and otherwise lists it first among the overlay's lower directories.
pub fn snapshot_dir_in_view(mounts: &[Mount]) -> Option<PathBuf> {
    let [mount] = mounts else {
        return None;
    };
    match mount.r#type.as_str() {
        "overlay" => overlay_option(mount, "lowerdir")
            .and_then(|dirs| dirs.split(':').next())
            .map(PathBuf::from),
        "bind" => Some(PathBuf::from(&mount.source)),
        _ => None,
    }
}

/// The value of option `key=` of an overlay mount.
fn overlay_option<'m>(mount: &'m Mount, key: &str) -> Option<&'m str> {
    mount
        .options
        .iter()
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
}

/// Writes the layer tar of `changes` to `out` (in 1 MiB writes); returns its sha256 digest and
/// size. The tar is a function of the directory alone (names sorted, no access or change times),
/// so writing it again later gives the same bytes.
pub fn write_layer<W: Write>(changes: &Path, out: W) -> io::Result<(String, u64)> {
    // The buffer also serves std's copy of file contents: reads go straight into it.
    let buffered = io::BufWriter::with_capacity(1 << 20, HashingWriter::new(out));
    let mut builder = Builder::new(buffered);
    builder.mode(HeaderMode::Complete);
    builder.follow_symlinks(false);
    let mut layer = Layer {
        builder,
        inodes: HashMap::new(),
    };
    layer.dir_contents(changes, Path::new(""))?;
    let writer = layer
        .builder
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    Ok((
        format!("sha256:{}", hex::encode(writer.hasher.finalize())),
        writer.written,
    ))
}

/// The digest and size of the layer tar of `changes`, without writing it anywhere.
pub fn hash_layer(changes: &Path) -> io::Result<(String, u64)> {
    write_layer(changes, io::sink())
}

/// The tar block size: every entry's content is padded to it.
const BLOCK: u64 = 512;

struct Layer<W: Write> {
    builder: Builder<io::BufWriter<HashingWriter<W>>>,
    /// Files with several links already written, by (device, inode): later links point there.
    inodes: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Layer<W> {
    /// Writes the entries of directory `dir` (at `rel` in the layer), sorted by name.
    fn dir_contents(&mut self, dir: &Path, rel: &Path) -> io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(at(rel))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            self.entry(&dir.join(&name), &rel.join(&name))?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &Path) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(path).map_err(at(rel))?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            return self.whiteout(rel, &meta);
        }
        let mut header = Header::new_gnu();
        header.set_metadata_in_mode(&meta, HeaderMode::Complete);
        self.append_xattrs(path)?;
        if kind.is_dir() {
            header.set_size(0);
            self.builder.append_data(&mut header, rel, io::empty())?;
            if xattr(path, OPAQUE_XATTR).is_some_and(|v| v == b"y") {
                self.opaque(rel, &meta)?;
            }
            return self.dir_contents(path, rel);
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(path).map_err(at(rel))?;
            return self.builder.append_link(&mut header, rel, target);
        }
        if kind.is_file() {
            return self.file(path, rel, &meta, header);
        }
        // FIFOs and devices: the header says it all.
        header.set_size(0);
        self.builder.append_data(&mut header, rel, io::empty())
    }

    fn file(
        &mut self,
        path: &Path,
        rel: &Path,
        meta: &Metadata,
        mut header: Header,
    ) -> io::Result<()> {
        if meta.nlink() > 1 {
            let inode = (meta.dev(), meta.ino());
            if let Some(first) = self.inodes.get(&inode) {
                header.set_entry_type(EntryType::Link);
                header.set_size(0);
                let first = first.clone();
                return self.builder.append_link(&mut header, rel, first);
            }
            self.inodes.insert(inode, rel.to_path_buf());
        }
        let file = File::open(path).map_err(at(rel))?;
        // The header (and any long-name entries) through tar, the content from here: tar's own
        // copy goes through an 8 KiB buffer and copies every byte once more (a profile of a
        // 512 MiB layer showed that copy as its largest cost); io::copy into the BufWriter reads
        // straight into its buffer.
        self.builder.append_data(&mut header, rel, io::empty())?;
        let size = header.size()?;
        let out = self.builder.get_mut();
        let copied = io::copy(&mut file.take(size), out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while its layer was written", path.display()),
            ));
        }
        let padding = (BLOCK - size % BLOCK) % BLOCK;
        out.write_all(&[0; BLOCK as usize][..padding as usize])
    }

    /// A deleted entry: an empty `.wh.<name>` file beside where it was.
    fn whiteout(&mut self, rel: &Path, meta: &Metadata) -> io::Result<()> {
        let name = rel.file_name().unwrap_or_default().as_bytes();
        let mut marker = b".wh.".to_vec();
        marker.extend_from_slice(name);
        let path = rel.with_file_name(std::ffi::OsStr::from_bytes(&marker));
        self.marker(&path, meta)
    }

    /// A directory whose lower contents are hidden: `.wh..wh..opq` inside it.
    fn opaque(&mut self, rel: &Path, meta: &Metadata) -> io::Result<()> {
        self.marker(&rel.join(".wh..wh..opq"), meta)
    }

    fn marker(&mut self, path: &Path, meta: &Metadata) -> io::Result<()> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o600);
        header.set_size(0);
        header.set_mtime(meta.mtime().max(0) as u64);
        self.builder.append_data(&mut header, path, io::empty())
    }

    fn append_xattrs(&mut self, path: &Path) -> io::Result<()> {
        let records: Vec<(String, Vec<u8>)> = KEPT_XATTRS
            .iter()
            .filter_map(|name| Some((format!("SCHILY.xattr.{name}"), xattr(path, name)?)))
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }
}

/// An error reading the layer's entry `rel`, naming it (a path too long for the kernel, say).
fn at(rel: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |error| io::Error::new(error.kind(), format!("/{}: {error}", rel.display()))
}

/// The value of extended attribute `name` of `path` (not following symlinks), if set.
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).ok().flatten()
}

/// Counts and hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_and_parentless_snapshots_show_their_changes() {
        let overlay = Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec![
                "lowerdir=/l".into(),
                "upperdir=/u/fs".into(),
                "workdir=/u/work".into(),
            ],
        };
        assert_eq!(changes_dir(&[overlay], true), Some(PathBuf::from("/u/fs")));
        let bind = Mount {
            r#type: "bind".into(),
            source: "/s/fs".into(),
            target: String::new(),
            options: vec!["rbind".into(), "rw".into()],
        };
        assert_eq!(
            changes_dir(std::slice::from_ref(&bind), false),
            Some(PathBuf::from("/s/fs"))
        );
        assert_eq!(
            changes_dir(&[bind], true),
            None,
            "a bind with a parent is the whole tree"
        );
    }

    #[test]
    fn a_view_shows_the_directory_of_the_snapshot_it_is_on() {
        let overlay = Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec![
                "index=off".into(),
                "lowerdir=/s/3/fs:/s/2/fs:/s/1/fs".into(),
            ],
        };
        assert_eq!(
            snapshot_dir_in_view(&[overlay]),
            Some(PathBuf::from("/s/3/fs"))
        );
        let bind = Mount {
            r#type: "bind".into(),
            source: "/s/1/fs".into(),
            target: String::new(),
            options: vec!["ro".into(), "rbind".into()],
        };
        assert_eq!(
            snapshot_dir_in_view(&[bind]),
            Some(PathBuf::from("/s/1/fs"))
        );
        assert_eq!(snapshot_dir_in_view(&[]), None);
    }

    #[test]
    fn writing_a_layer_again_gives_the_same_bytes_and_hashing_it_the_same_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/big"), vec![7u8; 3 << 20]).unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        let mut first = Vec::new();
        let written = write_layer(dir.path(), &mut first).unwrap();
        let mut second = Vec::new();
        assert_eq!(write_layer(dir.path(), &mut second).unwrap(), written);
        assert_eq!(first, second);
        assert_eq!(hash_layer(dir.path()).unwrap(), written);
        assert_eq!(written.1, first.len() as u64);
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&first)));
        assert_eq!(written.0, digest);
    }

    #[test]
    fn a_layer_lists_files_links_and_whiteouts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/b.txt"), "b").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::hard_link(dir.path().join("a.txt"), dir.path().join("c.txt")).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.path().join("s")).unwrap();
        nix::sys::stat::mknod(
            &dir.path().join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        let out = tempfile::tempfile().unwrap();
        let (digest, size) = write_layer(dir.path(), out.try_clone().unwrap()).unwrap();
        assert!(digest.starts_with("sha256:") && size > 0);
        use std::io::Seek;
        let mut out = out;
        out.rewind().unwrap();
        let mut archive = tar::Archive::new(out);
        let entries: Vec<(String, EntryType, String)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut content = String::new();
                e.read_to_string(&mut content).unwrap();
                let path = e.path().unwrap().display().to_string();
                (path, e.header().entry_type(), content)
            })
            .collect();
        let entry = |path: &str, kind, content: &str| (path.to_string(), kind, content.to_string());
        assert_eq!(
            entries,
            vec![
                entry("a.txt", EntryType::Regular, "a"),
                entry("c.txt", EntryType::Link, ""),
                entry("d", EntryType::Directory, ""),
                entry("d/b.txt", EntryType::Regular, "b"),
                entry(".wh.gone", EntryType::Regular, ""),
                entry("s", EntryType::Symlink, ""),
            ]
        );
    }
}

//! Shared helpers: temp roots, proto builders, metadata accessors.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nodekit_proto::pb::{
    user_opt::User, ChownOpt, FileActionCopy, FileActionMkDir, FileActionMkFile, FileActionRm,
    FileActionSymlink, NamedUserOpt, UserOpt,
};

/// A temp dir holding a `root` directory (so tests can check nothing escapes it).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("mkdir root");
        Sandbox { dir, root }
    }

    /// Host path of `p` inside the root.
    pub fn p(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// Host path of `p` outside the root (in the temp dir).
    pub fn outside(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn write(&self, p: &str, data: &str) {
        let path = self.p(p);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir parents");
        }
        fs::write(path, data).expect("write");
    }

    pub fn mkdir(&self, p: &str) {
        fs::create_dir_all(self.p(p)).expect("mkdir");
    }

    pub fn symlink(&self, target: &str, p: &str) {
        std::os::unix::fs::symlink(target, self.p(p)).expect("symlink");
    }

    pub fn read(&self, p: &str) -> String {
        fs::read_to_string(self.p(p)).expect("read")
    }

    pub fn exists(&self, p: &str) -> bool {
        fs::symlink_metadata(self.p(p)).is_ok()
    }

    pub fn meta(&self, p: &str) -> fs::Metadata {
        fs::symlink_metadata(self.p(p)).expect("lstat")
    }

    pub fn mode(&self, p: &str) -> u32 {
        self.meta(p).permissions().mode() & 0o7777
    }

    pub fn chmod(&self, p: &str, mode: u32) {
        fs::set_permissions(self.p(p), fs::Permissions::from_mode(mode)).expect("chmod");
    }

    pub fn mtime(&self, p: &str) -> (i64, i64) {
        let m = self.meta(p);
        (m.mtime(), m.mtime_nsec())
    }

    pub fn ids(&self, p: &str) -> (u32, u32) {
        let m = self.meta(p);
        (m.uid(), m.gid())
    }

    /// Sorted list of every path below the root, with a trailing `/` on directories.
    pub fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).expect("readdir") {
        let e = e.expect("entry");
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        if e.file_type().expect("type").is_dir() {
            out.push(format!("{rel}/"));
            walk(root, &path, out);
        } else {
            out.push(rel);
        }
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn cp(src: &str, dest: &str) -> FileActionCopy {
    FileActionCopy {
        src: src.to_string(),
        dest: dest.to_string(),
        mode: -1,
        timestamp: -1,
        create_dest_path: true,
        ..Default::default()
    }
}

pub fn mkdir(path: &str, mode: i32, parents: bool) -> FileActionMkDir {
    FileActionMkDir {
        path: path.to_string(),
        mode,
        make_parents: parents,
        owner: None,
        timestamp: -1,
    }
}

pub fn mkfile(path: &str, mode: i32, data: &str) -> FileActionMkFile {
    FileActionMkFile {
        path: path.to_string(),
        mode,
        data: data.as_bytes().to_vec(),
        owner: None,
        timestamp: -1,
    }
}

pub fn rm(path: &str, allow_not_found: bool, wildcard: bool) -> FileActionRm {
    FileActionRm {
        path: path.to_string(),
        allow_not_found,
        allow_wildcard: wildcard,
    }
}

pub fn ln(old: &str, new: &str) -> FileActionSymlink {
    FileActionSymlink {
        oldpath: old.to_string(),
        newpath: new.to_string(),
        owner: None,
        timestamp: -1,
    }
}

pub fn by_id(id: u32) -> Option<UserOpt> {
    Some(UserOpt {
        user: Some(User::ById(id)),
    })
}

pub fn by_name(name: &str, input: i64) -> Option<UserOpt> {
    Some(UserOpt {
        user: Some(User::ByName(NamedUserOpt {
            name: name.to_string(),
            input,
        })),
    })
}

pub fn chown(user: Option<UserOpt>, group: Option<UserOpt>) -> Option<ChownOpt> {
    Some(ChownOpt { user, group })
}

/// 2021-01-01T00:00:00.5Z in Unix nanoseconds.
pub const TS: i64 = 1_609_459_200_500_000_000;

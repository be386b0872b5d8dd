//! Copy: modes, timestamps, owners, hard links, special files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;
use nodekit_fileop::{copy, FileOpError, NumericIdsOnly, PasswdResolver};

const U: NumericIdsOnly = NumericIdsOnly;

fn source() -> Sandbox {
    let s = Sandbox::new();
    s.write("dir/f", "F");
    s.write("dir/sub/x", "X");
    s.chmod("dir/f", 0o640);
    s.chmod("dir/sub/x", 0o755);
    s.chmod("dir/sub", 0o700);
    s
}

#[test]
fn source_mode_and_times_kept() {
    let (src, dst) = (source(), Sandbox::new());
    let ts = nix::sys::time::TimeSpec::new(1_000_000, 7);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &src.p("dir/f"),
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    copy(&src.root, &dst.root, &cp("/dir", "/out"), &U).unwrap();
    assert_eq!(dst.mode("out/f"), 0o640);
    assert_eq!(dst.mode("out/sub"), 0o700);
    assert_eq!(dst.mode("out/sub/x"), 0o755);
    assert_eq!(dst.mtime("out/f"), (1_000_000, 7));
    assert_eq!(dst.mtime("out/sub"), src.mtime("dir/sub"));
}

#[test]
fn numeric_mode_override() {
    let (src, dst) = (source(), Sandbox::new());
    let mut op = cp("/dir", "/a/b/out");
    op.mode = 0o2751;
    copy(&src.root, &dst.root, &op, &U).unwrap();
    assert_eq!(
        dst.mode("a"),
        0o751,
        "created parents get the mode without special bits"
    );
    assert_eq!(dst.mode("a/b/out/f"), 0o2751);
    assert_eq!(dst.mode("a/b/out/sub"), 0o2751);
    assert_eq!(dst.mode("a/b/out/sub/x"), 0o2751);
}

#[test]
fn symbolic_mode() {
    let (src, dst) = (source(), Sandbox::new());
    let mut op = cp("/dir", "/out");
    op.mode_str = "go-rwx,u+x".to_string();
    copy(&src.root, &dst.root, &op, &U).unwrap();
    assert_eq!(dst.mode("out/f"), 0o700);
    assert_eq!(dst.mode("out/sub/x"), 0o700);
    let mut op = cp("/dir/f", "/g");
    op.mode_str = "a+X".to_string();
    copy(&src.root, &dst.root, &op, &U).unwrap();
    assert_eq!(
        dst.mode("g"),
        0o640,
        "X only adds x to dirs and executables"
    );
    op.mode_str = "u+q".to_string();
    let e = copy(&src.root, &dst.root, &op, &U).unwrap_err();
    assert!(matches!(e, FileOpError::InvalidMode { .. }), "{e}");
}

#[test]
fn timestamp_everywhere() {
    let (src, dst) = (source(), Sandbox::new());
    let mut op = cp("/dir", "/p/q/out");
    op.timestamp = TS;
    copy(&src.root, &dst.root, &op, &U).unwrap();
    let want = (1_609_459_200, 500_000_000);
    for p in [
        "p",
        "p/q",
        "p/q/out",
        "p/q/out/f",
        "p/q/out/sub",
        "p/q/out/sub/x",
    ] {
        assert_eq!(dst.mtime(p), want, "{p}");
        assert_eq!(dst.meta(p).atime(), want.0, "{p}");
    }
}

#[test]
fn existing_top_dir_keeps_mode_gets_time() {
    let (src, dst) = (source(), Sandbox::new());
    dst.mkdir("out");
    dst.chmod("out", 0o711);
    let mut op = cp("/dir", "/out");
    op.dir_copy_contents = true;
    op.timestamp = TS;
    op.mode = 0o600;
    copy(&src.root, &dst.root, &op, &U).unwrap();
    assert_eq!(dst.mode("out"), 0o711);
    assert_eq!(dst.mtime("out"), (1_609_459_200, 500_000_000));
    assert_eq!(dst.mode("out/f"), 0o600);
}

#[test]
fn hardlinks_preserved() {
    let (src, dst) = (source(), Sandbox::new());
    std::fs::hard_link(src.p("dir/f"), src.p("dir/sub/f2")).unwrap();
    copy(&src.root, &dst.root, &cp("/dir", "/out"), &U).unwrap();
    let (a, b) = (dst.meta("out/f"), dst.meta("out/sub/f2"));
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    assert_ne!(a.ino(), src.meta("dir/f").ino());
}

#[test]
fn fifo_copied() {
    let (src, dst) = (source(), Sandbox::new());
    nix::unistd::mkfifo(
        &src.p("dir/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    copy(&src.root, &dst.root, &cp("/dir", "/out"), &U).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(dst.meta("out/pipe").file_type().is_fifo());
    assert_eq!(dst.mode("out/pipe"), 0o640);
}

#[test]
fn chown_by_id_and_kept_ids() {
    if !is_root() {
        return;
    }
    let (src, dst) = (source(), Sandbox::new());
    std::os::unix::fs::lchown(src.p("dir/f"), Some(1001), Some(1002)).unwrap();
    copy(&src.root, &dst.root, &cp("/dir", "/kept"), &U).unwrap();
    assert_eq!(dst.ids("kept/f"), (1001, 1002));
    let mut op = cp("/dir", "/a/owned");
    op.owner = chown(by_id(500), by_id(600));
    copy(&src.root, &dst.root, &op, &U).unwrap();
    for p in ["a", "a/owned", "a/owned/f", "a/owned/sub/x"] {
        assert_eq!(dst.ids(p), (500, 600), "{p}");
    }
}

/// A root with passwd and group files.
fn user_root() -> Sandbox {
    let s = Sandbox::new();
    s.write(
        "etc/passwd",
        "root:x:0:0::/root:/bin/sh\n  app:x:1500:1600::/home/app:/bin/sh\n",
    );
    s.write("etc/group", "root:x:0:\nstaff:x:2500:app\n");
    s
}

#[test]
fn chown_by_name() {
    if !is_root() {
        return;
    }
    let (src, dst, users) = (source(), Sandbox::new(), user_root());
    let resolver = PasswdResolver::new(&users.root);
    let mut op = cp("/dir/f", "/f");
    op.owner = chown(by_name("app", 0), None);
    copy(&src.root, &dst.root, &op, &resolver).unwrap();
    assert_eq!(dst.ids("f"), (1500, 1600));
    op.owner = chown(by_name("app", 0), by_name("staff", 0));
    copy(&src.root, &dst.root, &op, &resolver).unwrap();
    assert_eq!(dst.ids("f"), (1500, 2500));
    // Unknown names fall back like BuildKit: user 0:0, group unchanged ...
    op.owner = chown(by_name("nobody", 0), by_name("nogroup", 0));
    copy(&src.root, &dst.root, &op, &resolver).unwrap();
    assert_eq!(dst.ids("f"), (0, 0));
    // ... unless the resolver is strict.
    let strict = PasswdResolver::new(&users.root).strict(true);
    let e = copy(&src.root, &dst.root, &op, &strict).unwrap_err();
    assert!(matches!(e, FileOpError::UnknownUser { .. }), "{e}");
}

#[test]
fn chown_by_name_per_input() {
    if !is_root() {
        return;
    }
    let (src, dst, users) = (source(), Sandbox::new(), user_root());
    let resolver = PasswdResolver::per_input([(3, users.root.clone())]);
    let mut op = cp("/dir/f", "/f");
    op.owner = chown(by_name("app", 3), None);
    copy(&src.root, &dst.root, &op, &resolver).unwrap();
    assert_eq!(dst.ids("f"), (1500, 1600));
    op.owner = chown(by_name("app", 1), None);
    let e = copy(&src.root, &dst.root, &op, &resolver).unwrap_err();
    assert_eq!(e.to_string(), "invalid missing user mount");
    op.owner = chown(by_name("app", -1), None);
    let e = copy(&src.root, &dst.root, &op, &resolver).unwrap_err();
    assert_eq!(e.to_string(), "invalid user index: -1");
}

#[test]
fn passwd_symlink_confined() {
    if !is_root() {
        return;
    }
    // /etc/passwd of the user root is a link leaving the root: it resolves inside instead.
    let (src, dst, users) = (source(), Sandbox::new(), Sandbox::new());
    std::fs::write(users.outside("passwd"), "app:x:4242:4242::/:/bin/sh\n").unwrap();
    users.mkdir("etc");
    users.symlink("../../passwd", "etc/passwd");
    let mut op = cp("/dir/f", "/f");
    op.owner = chown(by_name("app", 0), None);
    copy(&src.root, &dst.root, &op, &PasswdResolver::new(&users.root)).unwrap();
    assert_eq!(dst.ids("f"), (0, 0));
}

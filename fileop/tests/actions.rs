//! mkdir, mkfile, rm and symlink.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::*;
use nodekit_fileop::{mkdir as do_mkdir, mkfile as do_mkfile, rm as do_rm, symlink as do_ln};
use nodekit_fileop::{FileOpError, NumericIdsOnly};

const U: NumericIdsOnly = NumericIdsOnly;

#[test]
fn mkdir_exact_mode_and_parents() {
    let s = Sandbox::new();
    do_mkdir(&s.root, &mkdir("/a/b/c", 0o750, true), &U).unwrap();
    for p in ["a", "a/b", "a/b/c"] {
        assert!(s.meta(p).is_dir());
        assert_eq!(s.mode(p), 0o750, "{p}");
    }
    // Existing directories are fine and untouched.
    s.chmod("a/b", 0o700);
    do_mkdir(&s.root, &mkdir("/a/b", 0o755, true), &U).unwrap();
    do_mkdir(&s.root, &mkdir("/a/b", 0o755, false), &U).unwrap();
    assert_eq!(s.mode("a/b"), 0o700);
    // Mode bits beyond 0o777 are ignored.
    do_mkdir(&s.root, &mkdir("/s", 0o4777, false), &U).unwrap();
    assert_eq!(s.mode("s"), 0o777);
}

#[test]
fn mkdir_errors() {
    let s = Sandbox::new();
    let e = do_mkdir(&s.root, &mkdir("/x/y", 0o755, false), &U).unwrap_err();
    assert_eq!(e.to_string(), "mkdir /x/y: no such file or directory");
    assert!(e.is_not_found());
    s.write("f", "data");
    let e = do_mkdir(&s.root, &mkdir("/f", 0o755, true), &U).unwrap_err();
    assert_eq!(e.to_string(), "mkdir /f: not a directory");
    let e = do_mkdir(&s.root, &mkdir("/f/g", 0o755, true), &U).unwrap_err();
    assert_eq!(e.to_string(), "lstat /f/g: not a directory");
    // Without makeParents an existing file is accepted silently, as upstream.
    do_mkdir(&s.root, &mkdir("/f", 0o755, false), &U).unwrap();
    assert_eq!(s.read("f"), "data");
}

#[test]
fn mkdir_owner_and_timestamp() {
    let s = Sandbox::new();
    let mut op = mkdir("/o/p", 0o755, true);
    op.timestamp = TS;
    if is_root() {
        op.owner = chown(by_id(1234), by_id(99));
    }
    do_mkdir(&s.root, &op, &U).unwrap();
    // Only the leaf keeps the timestamp: like upstream, parents are not fixed up afterwards.
    assert_eq!(s.mtime("o/p"), (1_609_459_200, 500_000_000));
    assert_ne!(s.mtime("o"), (1_609_459_200, 500_000_000));
    if is_root() {
        assert_eq!(s.ids("o/p"), (1234, 99));
    }
}

#[test]
fn mkfile_mode_overwrite_and_symlink() {
    let s = Sandbox::new();
    do_mkfile(&s.root, &mkfile("/f", 0o640, "one"), &U).unwrap();
    assert_eq!(s.read("f"), "one");
    assert_eq!(s.mode("f"), 0o640);
    // Overwrite truncates and keeps the existing mode (os.WriteFile).
    do_mkfile(&s.root, &mkfile("/f", 0o777, "2"), &U).unwrap();
    assert_eq!(s.read("f"), "2");
    assert_eq!(s.mode("f"), 0o640);
    // A symlink is followed inside the root.
    s.mkdir("d");
    s.symlink("/d/target", "link");
    do_mkfile(&s.root, &mkfile("/link", 0o600, "via link"), &U).unwrap();
    assert_eq!(s.read("d/target"), "via link");
    assert!(s.meta("link").file_type().is_symlink());
}

#[test]
fn mkfile_errors_and_timestamp() {
    let s = Sandbox::new();
    let e = do_mkfile(&s.root, &mkfile("/no/f", 0o644, ""), &U).unwrap_err();
    assert_eq!(e.to_string(), "open /no/f: no such file or directory");
    s.mkdir("d");
    let e = do_mkfile(&s.root, &mkfile("/d", 0o644, ""), &U).unwrap_err();
    assert_eq!(e.to_string(), "open /d: is a directory");
    let mut op = mkfile("/t", 0o644, "x");
    op.timestamp = TS;
    do_mkfile(&s.root, &op, &U).unwrap();
    assert_eq!(s.mtime("t"), (1_609_459_200, 500_000_000));
}

#[test]
fn rm_files_dirs_and_not_found() {
    let s = Sandbox::new();
    s.write("d/a/b", "x");
    s.write("f", "x");
    do_rm(&s.root, &rm("/d", false, false)).unwrap();
    do_rm(&s.root, &rm("f", false, false)).unwrap();
    assert!(!s.exists("d") && !s.exists("f"));
    let e = do_rm(&s.root, &rm("/missing", false, false)).unwrap_err();
    assert_eq!(e.to_string(), "stat /missing: no such file or directory");
    do_rm(&s.root, &rm("/missing", true, false)).unwrap();
    do_rm(&s.root, &rm("/missing/deeper", true, false)).unwrap();
    let e = do_rm(&s.root, &rm("/", true, false)).unwrap_err();
    assert!(matches!(e, FileOpError::Invalid(_)));
}

#[test]
fn rm_symlink_removes_link_only() {
    let s = Sandbox::new();
    s.write("keep/file", "x");
    s.symlink("/keep", "link");
    do_rm(&s.root, &rm("/link", false, false)).unwrap();
    assert!(!s.exists("link"));
    assert_eq!(s.read("keep/file"), "x");
    // Through a symlinked parent: removes inside the target.
    s.symlink("keep", "alias");
    do_rm(&s.root, &rm("/alias/file", false, false)).unwrap();
    assert!(!s.exists("keep/file"));
}

#[test]
fn rm_wildcard() {
    let s = Sandbox::new();
    for f in ["d/a.txt", "d/b.txt", "d/c.md", "d/sub/x.txt"] {
        s.write(f, "x");
    }
    do_rm(&s.root, &rm("/d/*.txt", false, true)).unwrap();
    assert_eq!(s.tree(), ["d/", "d/c.md", "d/sub/", "d/sub/x.txt"]);
    // No match is fine; a missing base directory is not.
    do_rm(&s.root, &rm("/d/*.none", false, true)).unwrap();
    let e = do_rm(&s.root, &rm("/nope/*", true, true)).unwrap_err();
    assert_eq!(e.to_string(), "lstat /nope: no such file or directory");
    do_rm(&s.root, &rm("/d/*", false, true)).unwrap();
    assert_eq!(s.tree(), ["d/"]);
}

#[test]
fn symlink_created_verbatim() {
    let s = Sandbox::new();
    let mut op = ln("../../../etc/passwd", "/l");
    op.timestamp = TS;
    do_ln(&s.root, &op, &U).unwrap();
    let target = std::fs::read_link(s.p("l")).unwrap();
    assert_eq!(target.to_str(), Some("../../../etc/passwd"));
    assert_eq!(s.mtime("l"), (1_609_459_200, 500_000_000));
    // An existing link at newpath is followed (upstream resolves newpath completely).
    let e = do_ln(&s.root, &ln("x", "/l"), &U).unwrap_err();
    assert_eq!(
        e.to_string(),
        "symlink x /etc/passwd: no such file or directory"
    );
    s.write("f", "");
    let e = do_ln(&s.root, &ln("x", "/f"), &U).unwrap_err();
    assert_eq!(e.to_string(), "symlink x /f: file exists");
    let e = do_ln(&s.root, &ln("x", "/no/l"), &U).unwrap_err();
    assert_eq!(e.to_string(), "symlink x /no/l: no such file or directory");
}

#[test]
fn symlink_owner() {
    if !is_root() {
        return;
    }
    let s = Sandbox::new();
    let mut op = ln("t", "/l");
    op.owner = chown(by_id(7), None);
    do_ln(&s.root, &op, &U).unwrap();
    assert_eq!(s.ids("l"), (7, 7));
}

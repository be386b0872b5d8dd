//! Unit tests of the parent module.
use super::*;
use std::os::unix::fs::symlink;

#[test]
fn clean_matches_go() {
    assert_eq!(clean(""), ".");
    assert_eq!(clean("/"), "/");
    assert_eq!(clean("/../../x"), "/x");
    assert_eq!(clean("a/../../x"), "../x");
    assert_eq!(clean("a//b/./c/"), "a/b/c");
    assert_eq!(clean_abs("../../etc/passwd"), "/etc/passwd");
    assert_eq!(clean_keep_trailing("foo/"), "/foo/");
    assert_eq!(clean_keep_trailing("foo/."), "/foo/.");
    assert_eq!(clean_keep_trailing("/."), "/.");
    assert_eq!(clean_keep_trailing("/"), "/");
    assert_eq!(split_last("/a/b"), ("/a", "b"));
    assert_eq!(split_last("/a"), ("/", "a"));
    assert_eq!(split_last("/"), ("/", ""));
    assert_eq!(base_name("/foo/"), "foo");
    assert_eq!(base_name("/foo/."), ".");
    assert_eq!(base_name("/"), "/");
    assert_eq!(base_name("a/b"), "b");
}

#[test]
fn resolves_inside_root() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/file"), b"x").unwrap();
    symlink("/a/b", root.join("abs")).unwrap();
    symlink("../../../..", root.join("a/up")).unwrap();
    symlink("b", root.join("a/rel")).unwrap();
    symlink("loop", root.join("loop")).unwrap();

    let r = |p: &str, f: bool| resolve_str(&root, p, f).unwrap();
    assert_eq!(r("/abs/c", false), root.join("a/b/c"));
    assert_eq!(r("/abs", true), root.join("a/b"));
    assert_eq!(r("/abs", false), root.join("abs"));
    assert_eq!(r("/a/up/x", false), root.join("x"));
    assert_eq!(r("/a/rel/../file", true), root.join("a/file"));
    assert_eq!(r("../../../x", true), root.join("x"));
    assert_eq!(r("/missing/../a", true), root.join("a"));
    let e = resolve_str(&root, "/loop", true).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ELOOP));
    let e = resolve_str(&root, "/a/file/x", true).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOTDIR));
}

//! Copy: where things land (trailing slashes, directories, contents, wildcards, symlinks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::*;
use nodekit_fileop::{copy, NumericIdsOnly};
use nodekit_proto::pb::FileActionCopy;

const U: NumericIdsOnly = NumericIdsOnly;

/// Source sandbox with `/a.txt`, `/dir/x`, `/dir/sub/y`.
fn source() -> Sandbox {
    let s = Sandbox::new();
    s.write("a.txt", "A");
    s.write("dir/x", "X");
    s.write("dir/sub/y", "Y");
    s
}

fn run(
    src: &Sandbox,
    dst: &Sandbox,
    op: &FileActionCopy,
) -> Result<(), nodekit_fileop::FileOpError> {
    copy(&src.root, &dst.root, op, &U)
}

#[test]
fn file_to_file_and_into_dirs() {
    let (src, dst) = (source(), Sandbox::new());
    run(&src, &dst, &cp("/a.txt", "/b.txt")).unwrap();
    run(&src, &dst, &cp("a.txt", "new/")).unwrap();
    dst.mkdir("existing");
    run(&src, &dst, &cp("/a.txt", "/existing")).unwrap();
    run(&src, &dst, &cp("/a.txt", "/deep/er/name")).unwrap();
    assert_eq!(
        dst.tree(),
        [
            "b.txt",
            "deep/",
            "deep/er/",
            "deep/er/name",
            "existing/",
            "existing/a.txt",
            "new/",
            "new/a.txt"
        ]
    );
    assert_eq!(dst.read("new/a.txt"), "A");
    // Overwrite an existing file.
    dst.write("b.txt", "old content that is longer");
    run(&src, &dst, &cp("/a.txt", "/b.txt")).unwrap();
    assert_eq!(dst.read("b.txt"), "A");
}

#[test]
fn dir_itself_versus_contents() {
    let src = source();
    // Missing destination: the directory is copied to that name either way.
    let dst = Sandbox::new();
    run(&src, &dst, &cp("/dir", "/out")).unwrap();
    assert_eq!(dst.tree(), ["out/", "out/sub/", "out/sub/y", "out/x"]);
    // Existing destination: the directory goes inside ...
    let dst = Sandbox::new();
    dst.mkdir("out");
    run(&src, &dst, &cp("/dir", "/out")).unwrap();
    assert_eq!(
        dst.tree(),
        [
            "out/",
            "out/dir/",
            "out/dir/sub/",
            "out/dir/sub/y",
            "out/dir/x"
        ]
    );
    // ... unless dirCopyContents merges the contents.
    let dst = Sandbox::new();
    dst.write("out/keep", "k");
    let mut op = cp("/dir", "/out");
    op.dir_copy_contents = true;
    run(&src, &dst, &op).unwrap();
    assert_eq!(
        dst.tree(),
        ["out/", "out/keep", "out/sub/", "out/sub/y", "out/x"]
    );
}

#[test]
fn trailing_slash_on_dest() {
    let src = source();
    let dst = Sandbox::new();
    run(&src, &dst, &cp("/dir", "/out/")).unwrap();
    assert_eq!(
        dst.tree(),
        [
            "out/",
            "out/dir/",
            "out/dir/sub/",
            "out/dir/sub/y",
            "out/dir/x"
        ]
    );
    let dst = Sandbox::new();
    let mut op = cp("/dir/", "/out/");
    op.dir_copy_contents = true;
    run(&src, &dst, &op).unwrap();
    assert_eq!(dst.tree(), ["out/", "out/sub/", "out/sub/y", "out/x"]);
    // "/." as source: base is ".", so an existing destination receives the contents.
    let dst = Sandbox::new();
    dst.mkdir("out");
    run(&src, &dst, &cp("/dir/.", "/out")).unwrap();
    assert_eq!(dst.tree(), ["out/", "out/sub/", "out/sub/y", "out/x"]);
}

#[test]
fn whole_root_to_root() {
    let src = source();
    let dst = Sandbox::new();
    let mut op = cp("/", "/");
    op.dir_copy_contents = true;
    run(&src, &dst, &op).unwrap();
    assert_eq!(dst.tree(), src.tree());
}

#[test]
fn create_dest_path_false() {
    let (src, dst) = (source(), Sandbox::new());
    let mut op = cp("/a.txt", "/a/b/c");
    op.create_dest_path = false;
    let e = run(&src, &dst, &op).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to stat /a/b/c: lstat /a/b: no such file or directory"
    );
    assert!(e.is_not_found());
    dst.mkdir("a/b");
    run(&src, &dst, &op).unwrap();
    assert_eq!(dst.read("a/b/c"), "A");
}

#[test]
fn missing_source() {
    let (src, dst) = (source(), Sandbox::new());
    let e = run(&src, &dst, &cp("/nope", "/x")).unwrap_err();
    assert_eq!(e.to_string(), "lstat /nope: no such file or directory");
    assert!(e.is_not_found());
}

#[test]
fn wildcards() {
    let src = source();
    src.write("b.txt", "B");
    src.write("c.md", "C");
    let dst = Sandbox::new();
    let mut op = cp("/*.txt", "/out/");
    op.allow_wildcard = true;
    run(&src, &dst, &op).unwrap();
    assert_eq!(dst.tree(), ["out/", "out/a.txt", "out/b.txt"]);
    // A matching directory is copied as a directory into the destination.
    let mut op = cp("/d*", "/o2/");
    op.allow_wildcard = true;
    run(&src, &dst, &op).unwrap();
    assert!(dst.exists("o2/dir/sub/y"));
    // Nested patterns match whole relative paths.
    let mut op = cp("/dir/*/y", "/o3/");
    op.allow_wildcard = true;
    run(&src, &dst, &op).unwrap();
    assert_eq!(dst.read("o3/y"), "Y");
}

#[test]
fn wildcard_without_match() {
    let (src, dst) = (source(), Sandbox::new());
    let mut op = cp("/*.none", "/out/");
    op.allow_wildcard = true;
    let e = run(&src, &dst, &op).unwrap_err();
    assert_eq!(e.to_string(), "/*.none not found");
    op.allow_empty_wildcard = true;
    run(&src, &dst, &op).unwrap();
    assert!(dst.tree().is_empty());
    // Without allowWildcard the pattern is a plain (missing) name.
    let e = run(&src, &dst, &cp("/*.txt", "/x")).unwrap_err();
    assert_eq!(e.to_string(), "lstat /*.txt: no such file or directory");
}

#[test]
fn follow_symlink_on_and_off() {
    let src = source();
    src.symlink("dir", "link");
    src.symlink("/a.txt", "flink");
    let dst = Sandbox::new();
    run(&src, &dst, &cp("/link", "/nofollow")).unwrap();
    assert_eq!(
        std::fs::read_link(dst.p("nofollow")).unwrap().to_str(),
        Some("dir")
    );
    let mut op = cp("/link", "/follow");
    op.follow_symlink = true;
    run(&src, &dst, &op).unwrap();
    assert_eq!(dst.read("follow/sub/y"), "Y");
    let mut op = cp("/flink", "/ffile");
    op.follow_symlink = true;
    run(&src, &dst, &op).unwrap();
    assert!(dst.meta("ffile").is_file());
    // Symlinks below the source are always copied as links.
    src.symlink("../a.txt", "dir/rel");
    run(&src, &dst, &cp("/dir", "/tree")).unwrap();
    assert_eq!(
        std::fs::read_link(dst.p("tree/rel")).unwrap().to_str(),
        Some("../a.txt")
    );
    // Parent symlinks of the source are always followed.
    run(&src, &dst, &cp("/link/x", "/viaparent")).unwrap();
    assert_eq!(dst.read("viaparent"), "X");
}

#[test]
fn type_conflicts() {
    let src = source();
    let dst = Sandbox::new();
    dst.mkdir("out/x/inner");
    let mut op = cp("/dir", "/out");
    op.dir_copy_contents = true;
    let e = run(&src, &dst, &op).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot replace to directory /out/x with file"
    );
    let dst = Sandbox::new();
    dst.write("out/sub", "file");
    let e = run(&src, &dst, &op).unwrap_err();
    assert_eq!(e.to_string(), "cannot copy to non-directory: /out/sub");
    // alwaysReplaceExistingDestPaths replaces both.
    op.always_replace_existing_dest_paths = true;
    run(&src, &dst, &op).unwrap();
    let dst2 = Sandbox::new();
    dst2.mkdir("out/x/inner");
    run(&src, &dst2, &op).unwrap();
    assert_eq!(dst.read("out/sub/y"), "Y");
    assert_eq!(dst2.read("out/x"), "X");
}

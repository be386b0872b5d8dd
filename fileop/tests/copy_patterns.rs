//! Copy: include and exclude patterns.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::*;
use nodekit_fileop::{copy, FileOpError, NumericIdsOnly};
use nodekit_proto::pb::FileActionCopy;

fn source() -> Sandbox {
    let s = Sandbox::new();
    for f in [
        "a.txt",
        "b.md",
        "sub/c.txt",
        "sub/d.md",
        "sub/deep/e.txt",
        "other/f.go",
        "x/y/z",
    ] {
        s.write(&format!("src/{f}"), f);
    }
    s
}

fn run(inc: &[&str], exc: &[&str]) -> Vec<String> {
    let (src, dst) = (source(), Sandbox::new());
    let mut op: FileActionCopy = cp("/src", "/out");
    op.include_patterns = inc.iter().map(|s| s.to_string()).collect();
    op.exclude_patterns = exc.iter().map(|s| s.to_string()).collect();
    copy(&src.root, &dst.root, &op, &NumericIdsOnly).unwrap();
    dst.tree()
}

#[test]
fn include_only_matching() {
    assert_eq!(run(&["*.txt"], &[]), ["out/", "out/a.txt"]);
    assert_eq!(
        run(&["**/*.txt"], &[]),
        [
            "out/",
            "out/a.txt",
            "out/sub/",
            "out/sub/c.txt",
            "out/sub/deep/",
            "out/sub/deep/e.txt"
        ]
    );
    // A matching directory brings everything below it.
    assert_eq!(
        run(&["other"], &[]),
        ["out/", "out/other/", "out/other/f.go"]
    );
    // Parents are created only on the way to a match.
    assert_eq!(
        run(&["x/*/z"], &[]),
        ["out/", "out/x/", "out/x/y/", "out/x/y/z"]
    );
}

#[test]
fn exclude_and_exceptions() {
    assert_eq!(
        run(&[], &["sub", "*.md"]),
        [
            "out/",
            "out/a.txt",
            "out/other/",
            "out/other/f.go",
            "out/x/",
            "out/x/y/",
            "out/x/y/z"
        ]
    );
    assert_eq!(
        run(&[], &["sub", "!sub/deep"]),
        [
            "out/",
            "out/a.txt",
            "out/b.md",
            "out/other/",
            "out/other/f.go",
            "out/sub/",
            "out/sub/deep/",
            "out/sub/deep/e.txt",
            "out/x/",
            "out/x/y/",
            "out/x/y/z"
        ]
    );
    assert_eq!(
        run(&["sub"], &["**/*.md"]),
        [
            "out/",
            "out/sub/",
            "out/sub/c.txt",
            "out/sub/deep/",
            "out/sub/deep/e.txt"
        ]
    );
}

#[test]
fn patterns_do_not_filter_a_file_source() {
    let (src, dst) = (source(), Sandbox::new());
    let mut op = cp("/src/b.md", "/b.md");
    op.exclude_patterns = vec!["*.md".to_string()];
    copy(&src.root, &dst.root, &op, &NumericIdsOnly).unwrap();
    assert_eq!(dst.tree(), ["b.md"]);
}

#[test]
fn bad_pattern() {
    let (src, dst) = (source(), Sandbox::new());
    let mut op = cp("/src", "/out");
    op.include_patterns = vec!["[".to_string()];
    let e = copy(&src.root, &dst.root, &op, &NumericIdsOnly).unwrap_err();
    assert!(
        matches!(
            e,
            FileOpError::InvalidPatterns {
                kind: "includepatterns",
                ..
            }
        ),
        "{e}"
    );
}

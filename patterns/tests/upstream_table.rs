//! moby/patternmatcher's test table (`TestMatches` and friends), run against
//! every way of matching: with parent checks, with chained parent results,
//! and with empty parent results.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use nodekit_patterns::{clean_path, MatchInfo, PatternError, PatternMatcher};

const SINGLE: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "file/", true),
    ("**/", "file", true),
    ("**/", "file/", true),
    ("**", "/", true),
    ("**/", "/", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**", "dir/file/", true),
    ("**/", "dir/file/", true),
    ("**/**", "dir/file", true),
    ("**/**", "dir/file/", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/file/", true),
    ("dir/**", "dir/dir2/file", true),
    ("dir/**", "dir/dir2/file/", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/*", "dir/dir2/file/", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file/", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/file*.txt", "dir/dir/file.txt", true),
    ("**/file*.txt*", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc.def", "abcZdef", false),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("a\\\\", "a\\", true),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def", true),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("a\\*b", "a*b", true),
];

const MULTI: &[(&[&str], &str, bool)] = &[
    (&["**", "!util/docker/web"], "util/docker/web/foo", false),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        true,
    ),
    (
        &[
            "**",
            "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        ],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (&["docs", "!docs/README.md"], "docs/README.md", false),
    (&["docs/", "!docs/README.md"], "docs/README.md", false),
    (&["docs/*", "!docs/README.md"], "docs/README.md", false),
    (&["*.go", "!fileutils.go"], "fileutils.go", false),
    (&["!fileutils.go", "*.go"], "fileutils.go", true),
    (&["*"], "fileutils.go", true),
    (&[], "any/path/there", false),
];

/// Every case as (patterns, path, expected).
fn all_cases() -> Vec<(Vec<&'static str>, &'static str, bool)> {
    let single = SINGLE.iter().map(|&(p, t, want)| (vec![p], t, want));
    let multi = MULTI.iter().map(|&(p, t, want)| (p.to_vec(), t, want));
    single.chain(multi).collect()
}

/// Upstream's parent list: `filepath.Dir(path)` split at `/` and joined
/// back one component at a time (nothing when the dir is `.`).
fn parents(path: &str) -> Vec<String> {
    let dir = clean_path(path.rfind('/').map_or("", |i| &path[..=i]));
    if dir == "." {
        return Vec::new();
    }
    let parts: Vec<&str> = dir.split('/').collect();
    (1..=parts.len()).map(|n| parts[..n].join("/")).collect()
}

#[test]
fn matches_or_parent_matches() {
    for (patterns, path, want) in all_cases() {
        let m = PatternMatcher::new(&patterns).unwrap();
        assert_eq!(m.matches(path), want, "patterns {patterns:?} path {path:?}");
    }
}

#[test]
fn matches_using_parent_results() {
    for (patterns, path, want) in all_cases() {
        let m = PatternMatcher::new(&patterns).unwrap();
        let mut info = MatchInfo::default();
        for parent in parents(path) {
            info = m.matches_with_parent(&parent, &info).1;
        }
        assert_eq!(
            m.matches_with_parent(path, &info).0,
            want,
            "patterns {patterns:?} path {path:?}"
        );
    }
}

#[test]
fn matches_using_parent_results_without_context() {
    for (patterns, path, want) in all_cases() {
        let m = PatternMatcher::new(&patterns).unwrap();
        let got = m.matches_with_parent(path, &MatchInfo::default()).0;
        assert_eq!(got, want, "patterns {patterns:?} path {path:?}");
    }
}

#[test]
fn cleaned_patterns_and_flags() {
    let m = PatternMatcher::new(&["docs", "config", ""]).unwrap();
    assert_eq!(m.patterns().len(), 2);
    assert!(!m.has_exclusions());
    for p in [["docs", "  !docs/README.md"], ["docs", "!docs/README.md  "]] {
        let m = PatternMatcher::new(&p).unwrap();
        assert!(m.has_exclusions());
        assert_eq!(m.patterns()[1].text(), "docs/README.md");
        assert!(m.patterns()[1].is_exclusion());
    }
    let m = PatternMatcher::new(&["./a//b/"]).unwrap();
    assert_eq!(m.patterns()[0].text(), "a/b");
    assert!(PatternMatcher::new(&[" ", "\t"]).unwrap().is_empty());
}

#[test]
fn rejects_bad_patterns() {
    assert_eq!(
        PatternMatcher::new(&["!"]).unwrap_err(),
        PatternError::IllegalExclusion
    );
    for bad in [
        "[",
        "a[",
        "[]a]",
        "[-x]",
        "[x-]",
        "\\",
        "[a-b-c]",
        "[^bc",
        "[Local-Only]/",
    ] {
        let err = PatternMatcher::new(&[bad]).unwrap_err();
        assert!(
            matches!(err, PatternError::BadPattern { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn go_match_table_through_matcher() {
    // Upstream's TestMatch runs filepath.Match's table through `Matches`,
    // which also tries the parent directory ("a*" matches "ab/c" via "ab").
    let cases: &[(&str, &str, bool)] = &[
        ("abc", "abc", true),
        ("*", "abc", true),
        ("a*", "ab/c", true),
        ("a*/b", "abc/b", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("ab[^e-g]", "abc", true),
        ("a?b", "a☺b", true),
        ("a???b", "a☺b", false),
        ("[a-ζ]*", "α", true),
        ("[\\]a]", "]", true),
        ("[x\\-]", "-", true),
        ("*x", "xxx", true),
    ];
    for &(pattern, path, want) in cases {
        let m = PatternMatcher::new(&[pattern]).unwrap();
        assert_eq!(m.matches(path), want, "pattern {pattern:?} path {path:?}");
    }
}

#[test]
fn exceptions_inside_excluded_dirs() {
    let m = PatternMatcher::new(&["docs", "!docs/keep"]).unwrap();
    let (dir, info) = m.matches_with_parent("docs", &MatchInfo::default());
    assert!(dir);
    assert!(m.matches_with_parent("docs/x", &info).0);
    let (keep, keep_info) = m.matches_with_parent("docs/keep", &info);
    assert!(!keep);
    assert!(!m.matches_with_parent("docs/keep/inner", &keep_info).0);
    // A MatchInfo of the wrong length is ignored, not trusted.
    let other = PatternMatcher::new(&["x"]).unwrap();
    let (_, foreign) = other.matches_with_parent("x", &MatchInfo::default());
    assert!(!m.matches_with_parent("docs/keep", &foreign).0);
}

#[test]
fn unicode_names() {
    let m = PatternMatcher::new(&["héllo*", "**/日本?.txt"]).unwrap();
    assert!(m.matches("héllo wörld ☃.txt"));
    assert!(m.matches("a/b/日本語.txt"));
    assert!(!m.matches("a/b/日本語語.txt"));
}

#[test]
fn suffix_fast_path_quirks() {
    // `**foo` is a plain suffix test upstream, so it also matches `xfoo`.
    assert!(PatternMatcher::new(&["**foo"]).unwrap().matches("xfoo"));
    let m = PatternMatcher::new(&["**/foo"]).unwrap();
    assert!(m.matches("foo"));
    assert!(!m.matches("xfoo"));
}

#[test]
fn patterns_display_with_exclamation() {
    let m = PatternMatcher::new(&["!a/b"]).unwrap();
    assert_eq!(m.patterns()[0].to_string(), "!a/b");
    assert_eq!(m.patterns()[0].text(), "a/b");
}

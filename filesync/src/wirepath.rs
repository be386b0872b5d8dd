//! Slash-separated wire paths: validation, splitting, joining.

pub(crate) use nodekit_patterns::clean_path as clean;

/// Go's `path.Join`: joins the non-empty elements with `/` and cleans.
pub(crate) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(b),
        (false, true) => clean(a),
        (false, false) => clean(&format!("{a}/{b}")),
    }
}

/// Checks that a received path is relative, clean and stays inside the
/// destination. Returns the reason when it is not.
pub(crate) fn check(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.contains('\0') {
        return Err("contains a NUL byte");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    for comp in path.split('/') {
        match comp {
            ".." => return Err("contains a `..` component"),
            "." => return Err("contains a `.` component (not clean)"),
            "" => return Err("contains an empty component (not clean)"),
            _ => {}
        }
    }
    Ok(())
}

/// Splits `a/b/c` into (`a/b`, `c`); a top-level name has parent `""`.
pub(crate) fn split_parent(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_matches_go() {
        assert_eq!(join("/", "../x"), "/x");
        assert_eq!(join("a", "b/../c"), "a/c");
        assert_eq!(join("", "b"), "b");
        assert_eq!(join("a", ""), "a");
    }

    #[test]
    fn check_rejects_escapes() {
        assert!(check("a/b c/ü").is_ok());
        for bad in [
            "", "/a", "..", "../a", "a/../b", "a/..", "a//b", "a/", "./a", ".", "a\0b",
        ] {
            assert!(check(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn splits_parent() {
        assert_eq!(split_parent("a/b/c"), ("a/b", "c"));
        assert_eq!(split_parent("c"), ("", "c"));
    }
}

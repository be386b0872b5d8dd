//! Go's `path.Clean` (which is `filepath.Clean` on unix).

/// Lexically cleans a slash-separated path like Go's `path.Clean`: collapses
/// repeated `/`, drops `.` components, resolves `..` against the preceding
/// component (a rooted path cannot go above `/`), removes a trailing `/`,
/// and returns `.` for an empty result.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_clean() {
        let cases = [
            ("", "."),
            (".", "."),
            ("a/b", "a/b"),
            ("a//b/", "a/b"),
            ("./a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/../..", ".."),
            ("../a/..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("//a", "/a"),
            ("**/", "**"),
            ("!./foo", "!./foo"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean_path({input:?})");
        }
    }
}

//! Lexical slash-path helpers with Go's `path.Clean` / `path.Join` semantics, so paths in built
//! ops match what BuildKit's Go client writes.

/// Go's `path.Clean`: the shortest equivalent path, purely lexically.
pub fn clean(p: &str) -> String {
    nodekit_patterns::clean_path(p)
}

/// Go's `path.Join`: joins the elements from the first non-empty one and cleans the result.
pub fn join(elems: &[&str]) -> String {
    match elems.iter().position(|e| !e.is_empty()) {
        Some(first) => clean(&elems[first..].join("/")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{clean, join};

    #[test]
    fn clean_matches_go() {
        let cases = [
            ("", "."),
            ("/", "/"),
            ("a/b/../c", "a/c"),
            ("/../a", "/a"),
            ("../../a", "../../a"),
            ("a/../..", ".."),
            ("//a//b/./", "/a/b"),
            ("a/", "a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn join_matches_go() {
        assert_eq!(join(&["/", "app", "x"]), "/app/x");
        assert_eq!(join(&["", "a"]), "a");
        assert_eq!(join(&["", ""]), "");
        assert_eq!(join(&["/w", "/abs"]), "/w/abs");
    }
}

//! JSON arrays of strings encoded exactly as Go's `encoding/json` does (HTML-safe escaping),
//! so attribute values match BuildKit's client byte for byte.

use std::fmt::Write as _;

/// `["a","b"]` with Go's escaping.
pub(crate) fn string_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(","))
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => escape(&mut out, ch),
            c if (c as u32) < 0x20 => escape(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn escape(out: &mut String, ch: char) {
    let _ = write!(out, "\\u{:04x}", ch as u32);
}

#[cfg(test)]
mod tests {
    use super::string_array;

    #[test]
    fn escapes_like_go() {
        let items = vec![
            "*.go".to_string(),
            "a\"b\\c".to_string(),
            "<&>\u{1}\n".to_string(),
        ];
        assert_eq!(
            string_array(&items),
            r#"["*.go","a\"b\\c","\u003c\u0026\u003e\u0001\n"]"#
        );
        let parsed: Vec<String> = serde_json::from_str(&string_array(&items)).unwrap();
        assert_eq!(parsed, items);
    }
}

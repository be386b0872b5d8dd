//! gRPC metadata keys of BuildKit's `moby.filesync.v1` services, and the
//! value encoding clients use for non-ASCII values.
//!
//! A client that has any non-ASCII value under a key URL-query-escapes all
//! the values of that key and adds `<key>-encoded: 1`; see
//! [`encode_values`] and [`decode_values`].

/// Which local directory the daemon asks for (`context`, `dockerfile`, ...).
pub const DIR_NAME: &str = "dir-name";
/// Include patterns for the sender's walk (multi-valued).
pub const INCLUDE_PATTERNS: &str = "include-patterns";
/// Exclude (dockerignore) patterns for the sender's walk (multi-valued).
pub const EXCLUDE_PATTERNS: &str = "exclude-patterns";
/// Paths whose symlinks the sender resolves into include patterns.
pub const FOLLOW_PATHS: &str = "followpaths";
/// Deprecated (removed upstream in 2023): `true` asked old clients to use
/// the daemon's exclude patterns over their own `.dockerignore`. Newer
/// clients ignore it; the daemon need not send it.
pub const OVERRIDE_EXCLUDES: &str = "override-excludes";
/// `FileSend/DiffCopy`: index of the exporter the stream belongs to.
pub const EXPORTER_ID: &str = "buildkit-attachable-exporter-id";
/// `FileSend/DiffCopy`: prefix of exporter metadata keys.
pub const EXPORTER_META_PREFIX: &str = "exporter-md-";
/// Set to `1` by clients able to receive multi-platform local exports.
pub const EXPORTER_MULTI_PLATFORM: &str = "buildkit-exporter-multi-platform";
/// Suffix of the key that marks a key's values as query-escaped.
pub const ENCODED_SUFFIX: &str = "-encoded";

/// The key that says whether `key`'s values are escaped (`<key>-encoded`).
pub fn encoded_key(key: &str) -> String {
    format!("{key}{ENCODED_SUFFIX}")
}

/// Whether a `<key>-encoded` value means "encoded" (Go `strconv.ParseBool`).
pub fn is_encoded(flag: &str) -> bool {
    matches!(flag, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Encodes a key's values for a header as upstream clients do: when any
/// value has a non-ASCII character, every value is query-escaped and the
/// second result is `true` (then send `<key>-encoded: 1` too).
pub fn encode_values(values: &[String]) -> (Vec<String>, bool) {
    if values.iter().all(|v| v.is_ascii()) {
        return (values.to_vec(), false);
    }
    (values.iter().map(|v| query_escape(v)).collect(), true)
}

/// Decodes a key's values; `encoded` is [`is_encoded`] of its
/// `<key>-encoded` value. Fails on malformed escapes or non-UTF-8 results.
pub fn decode_values(values: &[String], encoded: bool) -> Result<Vec<String>, crate::SyncError> {
    if !encoded {
        return Ok(values.to_vec());
    }
    values
        .iter()
        .map(|v| {
            query_unescape(v).ok_or_else(|| {
                crate::SyncError::InvalidOptions(format!(
                    "header value {v:?} is not valid query escaping"
                ))
            })
        })
        .collect()
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`; `None` on a malformed `%` or non-UTF-8 bytes.
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_values_are_left_alone() {
        let v = vec!["*.md".to_string(), "a b".to_string()];
        assert_eq!(encode_values(&v), (v.clone(), false));
    }

    #[test]
    fn non_ascii_values_round_trip() {
        let v = vec!["dïr/*".to_string(), "a b+c".to_string()];
        let (enc, encoded) = encode_values(&v);
        assert!(encoded);
        assert_eq!(enc, ["d%C3%AFr%2F%2A", "a+b%2Bc"]);
        assert_eq!(decode_values(&enc, true).unwrap(), v);
        assert!(decode_values(&["%zz".to_string()], true).is_err());
        assert!(is_encoded("1") && !is_encoded("0"));
        assert_eq!(encoded_key(INCLUDE_PATTERNS), "include-patterns-encoded");
    }
}

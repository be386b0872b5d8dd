//! Op digests: `sha256:` + lower-case hex of the op's bytes.

/// The digest BuildKit gives an op: `sha256:` and the hex sha256 of its encoded bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    nodekit_oci::sha256_digest(bytes)
}

/// A digest shortened for messages: `sha256:` and the first 12 hex digits.
pub(crate) fn short(digest: &str) -> String {
    const KEEP: usize = "sha256:".len() + 12;
    match digest.get(..KEEP) {
        Some(head) if digest.len() > KEEP + 1 => format!("{head}…"),
        _ => digest.to_string(),
    }
}

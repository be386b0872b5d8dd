use oci_client::Reference;

use crate::worker::error::{WorkerError, WorkerResult};

/// Parses an image reference the way containerd's CRI names images: `busybox` becomes
/// `docker.io/library/busybox:latest`.
pub fn normalize_reference(text: &str) -> WorkerResult<Reference> {
    let reference: Reference =
        text.trim()
            .parse()
            .map_err(|e: oci_client::ParseError| WorkerError::InvalidReference {
                reference: text.to_string(),
                reason: e.to_string(),
            })?;
    Ok(reference)
}

/// The image-store name of a reference: `registry/repo:tag` or `registry/repo@digest`.
pub fn store_name(reference: &Reference) -> String {
    reference.whole()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_expand_like_docker_and_cri() {
        let r = normalize_reference("busybox").unwrap();
        assert_eq!(store_name(&r), "docker.io/library/busybox:latest");
        let r = normalize_reference("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/app");
    }

    #[test]
    fn malformed_references_are_rejected_with_the_input() {
        let error = normalize_reference("UPPER/Case:tag").unwrap_err();
        assert!(error.to_string().contains("UPPER/Case:tag"), "{error}");
    }
}

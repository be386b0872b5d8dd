//! Image references as the worker hands them to the registry client: parsed and normalized by
//! the one parser (`nodekit_oci::Reference`, Docker's rules), `busybox` is
//! `docker.io/library/busybox:latest`.

use nodekit_oci::Reference as ImageReference;
use oci_spec::distribution::Reference;

use crate::error::{WorkerError, WorkerResult};

/// Parses an image reference the way containerd's CRI names images: `busybox` becomes
/// `docker.io/library/busybox:latest`.
pub fn normalize_reference(text: &str) -> WorkerResult<Reference> {
    let parsed = ImageReference::parse_with_default_tag(text.trim()).map_err(|reason| {
        WorkerError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        }
    })?;
    let ImageReference {
        domain,
        path,
        tag,
        digest,
    } = parsed;
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => Reference::with_tag_and_digest(domain, path, tag, digest),
        (None, Some(digest)) => Reference::with_digest(domain, path, digest),
        (tag, None) => Reference::with_tag(domain, path, tag.unwrap_or_default()),
    })
}

/// The image-store name of a reference: `registry/repo:tag` or `registry/repo@digest`.
pub fn store_name(reference: &Reference) -> String {
    reference.whole()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn references_reach_the_registry_client_whole() {
        let whole = |text: &str| store_name(&normalize_reference(text).unwrap());
        assert_eq!(whole(" busybox "), "docker.io/library/busybox:latest");
        let r = normalize_reference("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("1"));
        let r = normalize_reference(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(DIGEST)));
        let r = normalize_reference(&format!("reg:5000/app:1.0@{DIGEST}")).unwrap();
        assert_eq!(r.whole(), format!("reg:5000/app:1.0@{DIGEST}"));
    }

    #[test]
    fn a_malformed_reference_is_refused_naming_it() {
        let error = normalize_reference("UPPER/Case:tag").unwrap_err();
        assert!(error.to_string().contains("UPPER/Case:tag"), "{error}");
    }
}

//! Image references, parsed and normalized as Docker's distribution/reference does it
//! (`ParseNormalizedNamed`): `busybox` is `docker.io/library/busybox:latest`.
//!
//! Parsed here rather than with oci-spec's `Reference::from_str`: that compiles one large
//! Unicode regex on first use and keeps 5 MiB of heap for the daemon's lifetime, a quarter of
//! an idle nodekitd. The grammar is small enough to check by hand.

use oci_client::Reference;

use crate::worker::error::{WorkerError, WorkerResult};

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Parses an image reference the way containerd's CRI names images: `busybox` becomes
/// `docker.io/library/busybox:latest`.
pub fn normalize_reference(text: &str) -> WorkerResult<Reference> {
    parse(text.trim()).map_err(|reason| WorkerError::InvalidReference {
        reference: text.to_string(),
        reason: reason.to_string(),
    })
}

/// The image-store name of a reference: `registry/repo:tag` or `registry/repo@digest`.
pub fn store_name(reference: &Reference) -> String {
    reference.whole()
}

fn parse(text: &str) -> Result<Reference, &'static str> {
    if text.is_empty() {
        return Err("repository name must have at least one component");
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(check_digest(digest)?)),
        None => (text, None),
    };
    // A colon after the last slash starts the tag; one before it is a registry's port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(check_tag(&rest[last_slash + i + 1..])?),
        ),
        None => (rest, None),
    };
    let (domain, path) = split_domain(name)?;
    check_path(&path)?;
    if path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err("repository name must not be more than 255 characters");
    }
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => Reference::with_tag_and_digest(domain, path, tag, digest),
        (None, Some(digest)) => Reference::with_digest(domain, path, digest),
        (tag, None) => Reference::with_tag(domain, path, tag.unwrap_or(DEFAULT_TAG.into())),
    })
}

/// The registry and the repository path of `name` (Go's `splitDockerDomain`): the first
/// component is a registry if it has a dot or a colon, is `localhost`, or has upper case.
fn split_domain(name: &str) -> Result<(String, String), &'static str> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            check_domain(first)?;
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = match domain.as_str() {
        LEGACY_DEFAULT_DOMAIN => DEFAULT_DOMAIN.to_string(),
        _ => domain,
    };
    let path = match domain == DEFAULT_DOMAIN && !path.contains('/') {
        true => format!("{OFFICIAL_REPOSITORY_PREFIX}{path}"),
        false => path,
    };
    Ok((domain, path))
}

/// `host[:port]`, the host dot-separated labels of letters, digits and inner hyphens.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    const BAD: &str = "invalid reference format: bad registry host";
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(BAD);
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    match host.split('.').all(label_ok) {
        true => Ok(()),
        false => Err(BAD),
    }
}

/// Slash-separated components of lower-case letters and digits, joined inside a component by
/// one `.`, one or two `_`, or any number of `-`.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    match path.split('/').all(component_ok) {
        true => Ok(()),
        false => Err("invalid reference format"),
    }
}

fn component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
    }
    true
}

/// A word character, then up to 127 of word characters, dots and hyphens.
fn check_tag(tag: &str) -> Result<String, &'static str> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= TAG_LENGTH_MAX
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    match ok {
        true => Ok(tag.to_string()),
        false => Err("invalid tag format"),
    }
}

/// `sha256:<64 hex>` (or sha384, sha512 with their lengths).
fn check_digest(digest: &str) -> Result<String, &'static str> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or("invalid checksum digest format")?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("invalid checksum digest format");
    }
    match hex.len() == length {
        true => Ok(digest.to_string()),
        false => Err("invalid checksum digest length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn whole(text: &str) -> String {
        store_name(&normalize_reference(text).unwrap())
    }

    #[test]
    fn short_names_expand_like_docker_and_cri() {
        assert_eq!(whole("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            whole("index.docker.io/busybox:1"),
            "docker.io/library/busybox:1"
        );
        assert_eq!(whole("team/app"), "docker.io/team/app:latest");
        let r = normalize_reference("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(
            whole("localhost/a_b__c.d-e---f"),
            "localhost/a_b__c.d-e---f:latest"
        );
        assert_eq!(whole("nodekit.test/busybox:1"), "nodekit.test/busybox:1");
    }

    #[test]
    fn digests_and_tags_are_kept() {
        let r = normalize_reference(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(DIGEST)));
        let r = normalize_reference(&format!("reg:5000/app:1.0@{DIGEST}")).unwrap();
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.whole(), format!("reg:5000/app:1.0@{DIGEST}"));
    }

    #[test]
    fn malformed_references_are_rejected_with_the_input() {
        let error = normalize_reference("UPPER/Case:tag").unwrap_err();
        assert!(error.to_string().contains("UPPER/Case:tag"), "{error}");
        for bad in [
            "",
            "app:",
            "app:-tag",
            "a//b",
            "-app",
            "app-",
            "a..b",
            "a___b",
            "app@sha256:abc",
            "app@md5:0123456789abcdef0123456789abcdef",
            "bad host!/app",
            "reg:port/app",
            "Bad Name",
            "app:t@g",
        ] {
            assert!(normalize_reference(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("a/{}", "b".repeat(260));
        assert!(normalize_reference(&long).is_err());
    }
}

//! Image references, parsed and normalized as Docker's distribution/reference does it
//! (`ParseNormalizedNamed`, then `TagNameOnly`): `busybox` is `docker.io/library/busybox:latest`.
//!
//! Hand-written rather than oci-spec's `Reference::from_str`: that compiles one large Unicode
//! regex on first use and keeps 5 MiB of heap for the daemon's lifetime, a quarter of an idle
//! nodekitd. The grammar is small enough to check by hand.

use std::fmt;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// A normalized image reference: registry domain, repository path, tag and digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub domain: String,
    /// `library/busybox`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a text is not an image reference (Docker's wording where it has one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(pub String);

impl Reference {
    /// The name without tag or digest (`docker.io/library/busybox`), Docker's `TrimNamed`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Docker's `ParseNormalizedNamed`: the registry and `library/` filled in, the tag and
    /// digest as given (none added).
    pub fn parse_normalized(text: &str) -> Result<Reference, ReferenceError> {
        parse(text).map_err(ReferenceError)
    }

    /// As [`Reference::parse_normalized`], then Docker's `TagNameOnly`: `latest` when the
    /// reference has neither tag nor digest. The form image stores name images by.
    pub fn parse_with_default_tag(text: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Reference::parse_normalized(text)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(reference)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn parse(text: &str) -> Result<Reference, String> {
    if text.is_empty() {
        return Err("repository name must have at least one component".into());
    }
    if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        ));
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
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!(
            "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        ));
    }
    Ok(Reference {
        domain,
        path,
        tag,
        digest,
    })
}

/// The registry and the repository path of `name` (Go's `splitDockerDomain`): the first
/// component is a registry if it has a dot or a colon, is `localhost`, or has upper case.
fn split_domain(name: &str) -> Result<(String, String), String> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            check_domain(first)?;
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, name),
    };
    let domain = match domain {
        LEGACY_DEFAULT_DOMAIN => DEFAULT_DOMAIN,
        _ => domain,
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_REPOSITORY_PREFIX}{path}")
    } else {
        path.to_string()
    };
    Ok((domain.to_string(), path))
}

/// `host[:port]`: dot-separated labels of letters, digits and inner hyphens, or a bracketed
/// IPv6 address; the port all digits.
fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = match domain.rfind(':') {
        Some(i) if !domain[i..].contains(']') => (&domain[..i], Some(&domain[i + 1..])),
        _ => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = is_ipv6(host) || (!host.is_empty() && host.split('.').all(is_label));
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(format!(
            "invalid reference format: bad registry host {domain:?}"
        ))
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn is_ipv6(host: &str) -> bool {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
}

/// Slash-separated components of lower-case letters and digits, joined inside a component by
/// one `.`, one or two `_`, or any number of `-`.
fn check_path(path: &str) -> Result<(), String> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "invalid reference format: repository name ({path}) must be lowercase"
        ));
    }
    match path.split('/').find(|c| !is_path_component(c)) {
        Some(bad) => Err(format!(
            "invalid reference format: {bad:?} is not a valid repository path component"
        )),
        None => Ok(()),
    }
}

fn is_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    alnum(first)
        && alnum(last)
        && component
            .split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            .all(|sep| matches!(sep, "" | "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

/// A word character, then up to 127 of word characters, dots and hyphens.
fn check_tag(tag: &str) -> Result<String, String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= TAG_LENGTH_MAX
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(tag.to_string())
    } else {
        Err(format!(
            "invalid reference format: {tag:?} is not a valid tag"
        ))
    }
}

/// `sha256:` + 64, `sha384:` + 96 or `sha512:` + 128 lower-case hex digits.
fn check_digest(digest: &str) -> Result<String, String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("invalid checksum digest format {digest:?}"))?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algorithm:?}")),
    };
    let hex_ok = hex.len() == length && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex_ok {
        Ok(digest.to_string())
    } else {
        Err(format!("invalid checksum digest {digest:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn whole(text: &str) -> String {
        Reference::parse_with_default_tag(text)
            .map(|r| r.to_string())
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn short_names_expand_like_docker_and_cri() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/busybox:1", "docker.io/library/busybox:1"),
            ("team/app", "docker.io/team/app:latest"),
            ("moby/buildkit:v0.13", "docker.io/moby/buildkit:v0.13"),
            ("ghcr.io/a/b/c", "ghcr.io/a/b/c:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            (
                "localhost/a_b__c.d-e---f",
                "localhost/a_b__c.d-e---f:latest",
            ),
            ("my_reg/app__x", "docker.io/my_reg/app__x:latest"),
            ("nodekit.test/busybox:1", "nodekit.test/busybox:1"),
            ("[::1]:5000/app", "[::1]:5000/app:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(whole(input), want, "{input}");
        }
        let r = Reference::parse_normalized("127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/app", Some("1"))
        );
    }

    #[test]
    fn digests_and_tags_are_kept() {
        let r = Reference::parse_with_default_tag(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (None, Some(DIGEST))
        );
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{DIGEST}"));
        let r = Reference::parse_normalized(&format!("reg:5000/app:1.0@{DIGEST}")).unwrap();
        assert_eq!(r.to_string(), format!("reg:5000/app:1.0@{DIGEST}"));
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.tag, None, "parse_normalized adds no tag");
    }

    #[test]
    fn malformed_references_are_rejected() {
        for bad in [
            "",
            "app:",
            "app:-tag",
            "a//b",
            "-app",
            "app-",
            "bad-/name",
            "a..b",
            "a___b",
            "app@sha256:abc",
            "app@md5:0123456789abcdef0123456789abcdef",
            &format!("app@sha256:{}", "A".repeat(64)),
            "bad host!/app",
            "reg:port/app",
            "example.com:port/app",
            "Bad Name",
            "BusyBox",
            "UPPER/Case:tag",
            "app:t@g",
            &"a".repeat(64),
            &format!("a/{}", "b".repeat(260)),
        ] {
            assert!(
                Reference::parse_normalized(bad).is_err(),
                "{bad:?} was accepted"
            );
        }
        let error = Reference::parse_normalized("UPPER/Case:tag").unwrap_err();
        assert!(error.to_string().contains("must be lowercase"), "{error}");
    }
}

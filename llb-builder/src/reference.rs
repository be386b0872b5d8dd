//! Docker image reference normalisation, as `github.com/distribution/reference`'s
//! `ParseNormalizedNamed` + `TagNameOnly` do it for BuildKit's `llb.Image`:
//! `busybox` -> `docker.io/library/busybox:latest`.

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_MAX: usize = 255;

/// Normalises an image reference to its full form (domain, repository path, tag or digest;
/// `:latest` when it has neither), or says why it is not a valid reference.
pub fn normalize_image_ref(reference: &str) -> Result<String, String> {
    if reference.len() == 64
        && reference
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("a 64-digit hexadecimal string is an image id, not a repository name".into());
    }
    let (domain, remainder) = split_domain(reference);
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return Err(format!("repository name ({remote}) must be lowercase"));
    }
    let full = format!("{domain}/{remainder}");
    let parsed = Parsed::parse(&full)?;
    Ok(parsed.with_default_tag())
}

/// Splits off the registry domain (BuildKit's `splitDockerDomain`).
fn split_domain(name: &str) -> (&str, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (first, rest.to_string()),
        _ => (DEFAULT_DOMAIN, name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN;
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_PREFIX}{remainder}");
    }
    (domain, remainder)
}

fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
}

/// A reference split into name, tag and digest, each checked against the grammar.
struct Parsed<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> Parsed<'a> {
    fn parse(full: &'a str) -> Result<Parsed<'a>, String> {
        let (name_tag, digest) = match full.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (full, None),
        };
        let last_slash = name_tag.rfind('/').unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(colon) => (
                &name_tag[..last_slash + colon],
                Some(&name_tag[last_slash + colon + 1..]),
            ),
            None => (name_tag, None),
        };
        check_name(name)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        Ok(Parsed { name, tag, digest })
    }

    fn with_default_tag(&self) -> String {
        match (self.tag, self.digest) {
            (None, None) => format!("{}:latest", self.name),
            (Some(tag), None) => format!("{}:{tag}", self.name),
            (None, Some(digest)) => format!("{}@{digest}", self.name),
            (Some(tag), Some(digest)) => format!("{}:{tag}@{digest}", self.name),
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.len() > NAME_MAX {
        return Err(format!(
            "repository name must not be more than {NAME_MAX} characters"
        ));
    }
    let mut components = name.split('/');
    let first = components.next().unwrap_or_default();
    if !(is_domain(first) || is_path_component(first)) {
        return Err(format!("{first:?} is not a valid registry domain"));
    }
    match components.find(|c| !is_path_component(c)) {
        Some(bad) => Err(format!("{bad:?} is not a valid repository path component")),
        None => Ok(()),
    }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or runs of `-`.
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    c.split(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        .all(|sep| matches!(sep, "" | "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

/// `host[:port]`: dot-separated labels (or a bracketed IPv6 address) and an optional port.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.rfind(':') {
        Some(i) if !domain[i..].contains(']') => (&domain[..i], Some(&domain[i + 1..])),
        _ => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && (is_ipv6(host) || (!host.is_empty() && host.split('.').all(is_label)))
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

fn is_ipv6(host: &str) -> bool {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
}

/// `[\w][\w.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = bytes.first().is_some_and(|&b| word(b))
        && bytes.len() <= 128
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    ok.then_some(())
        .ok_or_else(|| format!("{tag:?} is not a valid tag"))
}

/// `sha256:` + 64, `sha384:` + 96 or `sha512:` + 128 lower-case hex digits.
fn check_digest(digest: &str) -> Result<(), String> {
    let hex_len = match digest.split_once(':') {
        Some(("sha256", hex)) => Some((hex, 64)),
        Some(("sha384", hex)) => Some((hex, 96)),
        Some(("sha512", hex)) => Some((hex, 128)),
        _ => None,
    };
    let ok = hex_len.is_some_and(|(hex, len)| {
        hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    ok.then_some(())
        .ok_or_else(|| format!("{digest:?} is not a valid digest"))
}

#[cfg(test)]
mod tests {
    use super::normalize_image_ref;

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("moby/buildkit:v0.13", "docker.io/moby/buildkit:v0.13"),
            ("ghcr.io/a/b/c", "ghcr.io/a/b/c:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost/app:dev", "localhost/app:dev"),
            ("my_reg/app__x", "docker.io/my_reg/app__x:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_image_ref(input).as_deref(), Ok(want), "{input}");
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = format!("busybox@{digest}");
        assert_eq!(
            normalize_image_ref(&pinned),
            Ok(format!("docker.io/library/busybox@{digest}"))
        );
        let both = format!("busybox:1@{digest}");
        assert_eq!(
            normalize_image_ref(&both),
            Ok(format!("docker.io/library/busybox:1@{digest}"))
        );
    }

    #[test]
    fn rejects_invalid_references() {
        let bad = [
            "BusyBox",
            "",
            "busybox:",
            "busybox:-x",
            "bad-/name",
            "busybox@sha256:abc",
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "example.com:port/app",
        ];
        for input in bad {
            assert!(
                normalize_image_ref(input).is_err(),
                "{input:?} should be rejected"
            );
        }
        assert!(normalize_image_ref(&"a".repeat(64)).is_err());
    }
}

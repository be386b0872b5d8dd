//! Whether a base image name is a valid image reference (distribution
//! `reference.ParseNormalizedNamed` succeeds), for `InvalidDefaultArgInFrom`.

const DEFAULT_DOMAIN: &str = "docker.io";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// True when `name` parses as a normalised named reference
/// (`busybox`, `ghcr.io/a/b:tag`, `x@sha256:…`).
pub(crate) fn is_valid_image_reference(name: &str) -> bool {
    if is_hex_identifier(name) {
        return false;
    }
    let (domain, remainder) = split_docker_domain(name);
    let remote_name = remainder.split(':').next().unwrap_or("");
    if remote_name.to_lowercase() != remote_name {
        return false;
    }
    is_valid_reference(&domain, &remainder)
}

/// `^[a-f0-9]{64}$`: image IDs are not names.
fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'))
}

/// distribution `splitDockerDomain`: the default registry and the
/// `library/` prefix for official images.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (first.to_string(), rest.to_string()),
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
}

/// `domain/remainder` against the reference grammar
/// `name[:tag][@digest]`.
fn is_valid_reference(domain: &str, remainder: &str) -> bool {
    let (before_digest, digest) = match remainder.split_once('@') {
        Some((b, d)) => (b, Some(d)),
        None => (remainder, None),
    };
    let (path, tag) = match before_digest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (before_digest, None),
    };
    let full_name_len = domain.len() + 1 + path.len();
    is_valid_name(domain, path)
        && full_name_len <= NAME_TOTAL_LENGTH_MAX
        && tag.is_none_or(is_valid_tag)
        && digest.is_none_or(is_valid_digest)
}

/// `[domain/]component(/component)*`; the domain may also read as a path
/// component (the grammar's domain is optional).
fn is_valid_name(domain: &str, path: &str) -> bool {
    let path_ok = !path.is_empty() && path.split('/').all(is_path_component);
    path_ok && (is_domain_and_port(domain) || is_path_component(domain))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn is_path_component(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = s.chars().peekable();
    loop {
        let mut run = 0;
        while chars.peek().is_some_and(|c| alnum(*c)) {
            chars.next();
            run += 1;
        }
        if run == 0 {
            return false;
        }
        let separator: String = std::iter::from_fn(|| chars.next_if(|c| !alnum(*c))).collect();
        if separator.is_empty() {
            return true;
        }
        if !is_separator(&separator) {
            return false;
        }
    }
}

fn is_separator(s: &str) -> bool {
    matches!(s, "." | "_" | "__") || (!s.is_empty() && s.chars().all(|c| c == '-'))
}

/// `host[:port]`: a dotted DNS name or a bracketed IPv6 address.
fn is_domain_and_port(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (s, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && (is_ipv6_host(host) || host.split('.').all(is_domain_component))
}

fn is_ipv6_host(host: &str) -> bool {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == ':'))
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(s: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    edge_ok(s.chars().next())
        && edge_ok(s.chars().last())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `[\w][\w.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    chars.next().is_some_and(word)
        && tag.len() <= 128
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

/// A digest with a supported algorithm and an encoded part of the right
/// length (go-digest `Parse` + `Validate`).
fn is_valid_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    encoded.len() == expected_len
        && encoded
            .bytes()
            .all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::is_valid_image_reference as valid;

    #[test]
    fn valid_references() {
        let digest = format!("alpine@sha256:{}", "a".repeat(64));
        for name in [
            "busybox",
            "busybox:latest",
            "busybox:stable-musl",
            "scratch",
            "docker.io/library/alpine:3.20",
            "ghcr.io/owner/repo/sub:v1.2_3",
            "localhost:5000/foo",
            "localhost/foo",
            "[::1]:5000/foo:tag",
            "my_reg.io/foo",
            "My.Registry.io/foo",
            "a__b/c--d",
            digest.as_str(),
        ] {
            assert!(valid(name), "{name}");
        }
    }

    #[test]
    fn invalid_references() {
        let long = format!("a/{}", "b".repeat(260));
        let hex = "0".repeat(64);
        for name in [
            "",
            "busybox:",
            ":latest",
            "BusyBox",
            "foo/Bar",
            "foo@sha256:abc",
            "foo:bar:baz",
            "foo//bar",
            "-foo",
            "foo_",
            "foo___bar",
            "host:port/foo",
            long.as_str(),
            hex.as_str(),
        ] {
            assert!(!valid(name), "{name}");
        }
    }
}

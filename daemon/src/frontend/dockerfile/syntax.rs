//! Which Dockerfile frontend a build asks for: the `BUILDKIT_SYNTAX` build argument, else the
//! file's `# syntax=` directive (its first word; the rest are the frontend's arguments, as
//! upstream splits them). The official `docker/dockerfile` image at a version whose language
//! the built-in frontend implements is served by the built-in one, without pulling anything;
//! any other image is an external frontend.

/// The language the built-in frontend implements: that of `docker/dockerfile:1.18`, the
/// frontend BuildKit v0.24 embeds.
pub const BUILT_IN_MINOR: u32 = 18;

/// The build argument that names a frontend for the whole build.
pub const SYNTAX_ARG: &str = "BUILDKIT_SYNTAX";

const OFFICIAL: &str = "docker/dockerfile";

/// What the build asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Syntax {
    /// The official frontend, at a version the built-in one implements.
    BuiltIn,
    /// Any other frontend image.
    External,
}

/// The frontend reference `value` names (`docker/dockerfile:1.7`, `docker.io/docker/dockerfile:1-labs`,
/// `example.com/frontend:2 --flag`).
pub fn resolve(value: &str) -> Syntax {
    let reference = value.split_whitespace().next().unwrap_or_default();
    // A digest pins one image build, whose version only the image knows.
    if reference.contains('@') {
        return Syntax::External;
    }
    let (repository, tag) = split_tag(reference);
    let repository = repository
        .strip_prefix("docker.io/")
        .or_else(|| repository.strip_prefix("index.docker.io/"))
        .unwrap_or(repository);
    if repository != OFFICIAL {
        return Syntax::External;
    }
    if implements(tag) {
        Syntax::BuiltIn
    } else {
        Syntax::External
    }
}

/// The repository and the tag (`latest` when there is none) of a reference.
fn split_tag(reference: &str) -> (&str, &str) {
    let last_component = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_component..].rfind(':') {
        Some(colon) => {
            let at = last_component + colon;
            (&reference[..at], &reference[at + 1..])
        }
        None => (reference, "latest"),
    }
}

/// Whether the built-in frontend implements the language of tag `tag` of the official image:
/// `1`, `1.N` and `1.N.M` up to 1.18 (and the `-labs` variants: the built-in has the labs
/// flags of its version); `latest`, `labs` and `1` float to the newest 1.x, which keeps the
/// 1.x language: a newer flag or instruction fails by name at its line.
fn implements(tag: &str) -> bool {
    let version = tag.strip_suffix("-labs").unwrap_or(tag);
    if matches!(version, "latest" | "labs" | "1") {
        return true;
    }
    let mut parts = version.split('.');
    let major = parts.next();
    let minor = parts.next().and_then(|m| m.parse::<u32>().ok());
    let patch_ok = parts
        .next()
        .is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    major == Some("1")
        && patch_ok
        && parts.next().is_none()
        && minor.is_some_and(|m| m <= BUILT_IN_MINOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_frontend_up_to_the_built_in_version_is_built_in() {
        for value in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7",
            "docker/dockerfile:1.7.1",
            "docker/dockerfile:1.18",
            "docker/dockerfile:1.4-labs",
            "docker/dockerfile:1-labs",
            "docker/dockerfile:labs",
            "docker/dockerfile",
            "docker.io/docker/dockerfile:1.2",
            "docker.io/docker/dockerfile:1.2 --some-arg",
            "  docker/dockerfile:1  ",
        ] {
            assert_eq!(resolve(value), Syntax::BuiltIn, "{value}");
        }
    }

    #[test]
    fn other_images_and_versions_are_external() {
        for value in [
            "docker/dockerfile:1.19",
            "docker/dockerfile:1.26.0",
            "docker/dockerfile:2",
            "docker/dockerfile:1.7.0-rc1",
            "docker/dockerfile:1.x",
            "docker/dockerfile:1.7.",
            "docker/dockerfile@sha256:0123",
            "docker/dockerfile-upstream:master",
            "example.com/docker/dockerfile:1",
            "localhost:5000/frontend",
            "tonistiigi/dockerfile:1",
        ] {
            assert_eq!(resolve(value), Syntax::External, "{value}");
        }
    }
}

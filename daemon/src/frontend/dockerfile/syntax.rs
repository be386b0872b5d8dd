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

/// The frontend a file names for itself, found as upstream's `DetectSyntax` finds it (before
/// the file is parsed: another frontend's file need not be a Dockerfile).
#[derive(Debug, PartialEq, Eq)]
pub struct Detected {
    /// The whole value (`example.com/frontend:2 --flag`), upstream's `cmdline`.
    pub value: String,
    /// Its 1-based line (0 for a JSON file).
    pub line: usize,
}

/// The directives upstream knows; any other key ends the directives.
const DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

/// `# syntax=` among the leading directives (after a BOM and a `#!` line), else `// syntax=`,
/// else a JSON object's `"syntax"`.
pub fn detect(text: &str) -> Option<Detected> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (text, skipped) = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => (rest, 1),
        _ if text.starts_with("#!") => ("", 1),
        _ => (text, 0),
    };
    let from_comments = |prefix: &str| {
        leading_directives(text, prefix)
            .find(|(name, _, _)| name == "syntax")
            .map(|(_, value, index)| Detected {
                value,
                line: skipped + index + 1,
            })
    };
    from_comments("#")
        .or_else(|| from_comments("//"))
        .or_else(|| from_json(text, skipped))
}

/// The `PREFIX key=value` lines at the top of `text`: (lower-case key, value, line index). They
/// end at the first other line or unknown key; a repeated key ends them too (upstream stops
/// with an error, which detection ignores).
fn leading_directives<'a>(
    text: &'a str,
    prefix: &'a str,
) -> impl Iterator<Item = (String, String, usize)> + 'a {
    let mut seen = Vec::new();
    text.lines().enumerate().map_while(move |(index, line)| {
        let (name, value) = directive(line, prefix)?;
        if !DIRECTIVES.contains(&name.as_str()) || seen.contains(&name) {
            return None;
        }
        seen.push(name.clone());
        Some((name, value, index))
    })
}

/// `PREFIX key = value` (upstream's `^PREFIX\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`).
fn directive(line: &str, prefix: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix(prefix)?.trim_start();
    let key_end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let key = &rest[..key_end];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[key_end..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.to_string()))
}

fn from_json(text: &str, skipped: usize) -> Option<Detected> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let value = object.get("syntax")?.as_str()?;
    Some(Detected {
        value: value.to_string(),
        line: skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(text: &str) -> Option<(String, usize)> {
        detect(text).map(|d| (d.value, d.line))
    }

    #[test]
    fn the_syntax_directive_is_found_as_upstream_finds_it() {
        let found = |value: &str, line| Some((value.to_string(), line));
        assert_eq!(detected("# syntax=a/b:1\nFROM x\n"), found("a/b:1", 1));
        assert_eq!(
            detected("#!/usr/bin/env x\n# escape=`\n#SYNTAX = a/b:1 --flag  \nFROM x"),
            found("a/b:1 --flag", 3)
        );
        assert_eq!(detected("\u{feff}# syntax=a\n"), found("a", 1));
        assert_eq!(detected("// syntax = c/d\nbody"), found("c/d", 1));
        assert_eq!(
            detected("{\"syntax\": \"e/f:2\", \"x\": 1}"),
            found("e/f:2", 0)
        );
        assert_eq!(detected("FROM x\n# syntax=a\n"), None);
        assert_eq!(detected("# comment\n# syntax=a\n"), None);
        assert_eq!(detected("# unknown=1\n# syntax=a\n"), None);
        assert_eq!(detected("# escape=`\n# escape=\\\n# syntax=a\n"), None);
        assert_eq!(detected("# syntax=\nFROM x"), None);
        assert_eq!(detected("# 1syntax=a"), None);
    }

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

//! `context:NAME=VALUE` (buildx `--build-context`, bake's `target:` contexts): another source
//! for a stage, image or `--from` name. nodekitd serves `docker-image://REF`, `local:DIR` (a
//! directory of the client's session), `http(s)://URL` (a downloaded file) and `input:NAME` (a
//! frontend input: LLB the client sent with the request, with its image config from
//! `input-metadata:NAME`); the other forms upstream's Dockerfile frontend knows are refused by
//! name rather than read as an image name.

use crate::solver::SolveError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    Image(String),
    Local(String),
    /// A file downloaded from the URL, at the context's root.
    Http(String),
    /// The frontend input of this name.
    Input(String),
}

impl NamedContext {
    pub fn parse(name: &str, value: &str) -> Result<NamedContext, SolveError> {
        let refuse = |what: &str| {
            Err(SolveError::Unsupported(format!(
                "frontend option context:{name}={value}: {what} named contexts are not supported by nodekitd yet"
            )))
        };
        let Some((kind, rest)) = value.split_once(':') else {
            return Err(SolveError::InvalidDefinition(format!(
                "invalid context specifier {value} for {name}"
            )));
        };
        match kind {
            "docker-image" => Ok(NamedContext::Image(rest.trim_start_matches("//").into())),
            "local" => Ok(NamedContext::Local(rest.into())),
            "http" | "https" if looks_like_git(value) => refuse("Git"),
            "http" | "https" => Ok(NamedContext::Http(value.into())),
            "git" => refuse("Git"),
            _ if kind.starts_with("git@") => refuse("Git"),
            "oci-layout" => refuse("OCI layout"),
            "input" => Ok(NamedContext::Input(rest.into())),
            _ => Err(SolveError::InvalidDefinition(format!(
                "unsupported context source {kind} for {name}"
            ))),
        }
    }
}

/// What upstream takes for a Git repository among http(s) URLs: a path ending `.git`, with or
/// without a `#ref:subdir` fragment.
fn looks_like_git(url: &str) -> bool {
    let path = url.split(['#', '?']).next().unwrap_or_default();
    path.trim_end_matches('/').ends_with(".git")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_is_served_or_refused_by_name() {
        assert_eq!(
            NamedContext::parse("a", "docker-image://busybox:1").unwrap(),
            NamedContext::Image("busybox:1".into())
        );
        assert_eq!(
            NamedContext::parse("a", "local:extra").unwrap(),
            NamedContext::Local("extra".into())
        );
        assert_eq!(
            NamedContext::parse("a", "input:other").unwrap(),
            NamedContext::Input("other".into())
        );
        assert_eq!(
            NamedContext::parse("a", "https://example.com/file.txt").unwrap(),
            NamedContext::Http("https://example.com/file.txt".into())
        );
        for value in [
            "oci-layout://store@sha256:abc",
            "git://example.com/repo.git",
            "https://example.com/repo.git#main",
            "git@example.com:repo.git",
        ] {
            let error = NamedContext::parse("a", value).unwrap_err().to_string();
            assert!(
                error.contains(&format!("context:a={value}")),
                "{value}: {error}"
            );
        }
        let invalid = NamedContext::parse("a", "nocolon").unwrap_err().to_string();
        assert!(
            invalid.contains("invalid context specifier nocolon for a"),
            "{invalid}"
        );
    }
}

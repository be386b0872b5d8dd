//! `context:NAME=VALUE` (buildx `--build-context`, bake's `target:` contexts): another source
//! for a stage, image or `--from` name. nodekitd serves `docker-image://REF`, `local:DIR` (a
//! directory of the client's session), `http(s)://URL` (a downloaded file), `input:NAME` (a
//! frontend input: LLB the client sent with the request, with its image config from
//! `input-metadata:NAME`) and `oci-layout://STORE@DIGEST` (an image in an OCI layout the client
//! serves); the other forms upstream's Dockerfile frontend knows are refused by
//! name rather than read as an image name.

use super::convert::add_git::{is_git_source, GitRef};
use crate::solver::SolveError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    Image(String),
    Local(String),
    /// A file downloaded from the URL, at the context's root.
    Http(String),
    /// The frontend input of this name.
    Input(String),
    /// An image in an OCI layout the client serves (`--oci-layout STORE=DIR`).
    OciLayout {
        store: String,
        digest: String,
    },
    /// A Git repository's checkout (`#ref:subdir` and the query forms, as `ADD` takes them).
    Git(GitRef),
}

impl NamedContext {
    pub fn parse(name: &str, value: &str) -> Result<NamedContext, SolveError> {
        let Some((kind, rest)) = value.split_once(':') else {
            return Err(SolveError::InvalidDefinition(format!(
                "invalid context specifier {value} for {name}"
            )));
        };
        match kind {
            "docker-image" => Ok(NamedContext::Image(rest.trim_start_matches("//").into())),
            "local" => Ok(NamedContext::Local(rest.into())),
            "http" | "https" | "git" | "ssh" if is_git_source(value) => git(name, value),
            "http" | "https" => Ok(NamedContext::Http(value.into())),
            _ if kind.starts_with("git@") => git(name, value),
            "git" => Err(SolveError::InvalidDefinition(format!(
                "invalid git context {value} for {name}"
            ))),
            "oci-layout" => oci_layout(name, rest.trim_start_matches("//")),
            "input" => Ok(NamedContext::Input(rest.into())),
            _ => Err(SolveError::InvalidDefinition(format!(
                "unsupported context source {kind} for {name}"
            ))),
        }
    }
}

/// `STORE@DIGEST`: the layout's store name and the image's digest (upstream's words when one
/// is missing).
fn oci_layout(name: &str, spec: &str) -> Result<NamedContext, SolveError> {
    let invalid = |why: &str| {
        SolveError::InvalidDefinition(format!(
            "could not parse oci-layout reference {spec:?} of context {name}: {why}"
        ))
    };
    let (store, digest) = spec
        .split_once('@')
        .ok_or_else(|| invalid("it has no digest"))?;
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if store.is_empty() {
        return Err(invalid("it has no name"));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("its digest is not sha256:<64 hex digits>"));
    }
    Ok(NamedContext::OciLayout {
        store: store.to_string(),
        digest: digest.to_string(),
    })
}

fn git(name: &str, value: &str) -> Result<NamedContext, SolveError> {
    GitRef::parse(value).map(NamedContext::Git).map_err(|why| {
        SolveError::InvalidDefinition(format!("invalid git context {value} for {name}: {why}"))
    })
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
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            NamedContext::parse("a", &format!("oci-layout://layout@{digest}")).unwrap(),
            NamedContext::OciLayout {
                store: "layout".into(),
                digest: digest.clone()
            }
        );
        assert!(NamedContext::parse("a", "oci-layout://layout@sha256:abc").is_err());
        assert!(NamedContext::parse("a", "oci-layout://layout").is_err());
        for git in [
            "git://example.com/repo.git",
            "https://example.com/repo.git#main:sub",
            "git@example.com:repo.git",
        ] {
            let parsed = NamedContext::parse("a", git).unwrap();
            assert!(matches!(parsed, NamedContext::Git(_)), "{git}: {parsed:?}");
        }
        let other = NamedContext::parse("a", "ftp://example.com/x")
            .unwrap_err()
            .to_string();
        assert!(
            other.contains("unsupported context source ftp for a"),
            "{other}"
        );
        let invalid = NamedContext::parse("a", "nocolon").unwrap_err().to_string();
        assert!(
            invalid.contains("invalid context specifier nocolon for a"),
            "{invalid}"
        );
    }
}

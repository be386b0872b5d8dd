//! The Dockerfile frontend's options, as buildctl's `--opt` and docker buildx pass them.

use std::collections::BTreeMap;

use crate::oci::Platform;
use crate::solver::SolveError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The Dockerfile's path inside the `dockerfile` local directory.
    pub filename: String,
    /// The stage to build; empty means the last.
    pub target: String,
    pub build_args: BTreeMap<String, String>,
    /// Labels added to the image config.
    pub labels: BTreeMap<String, String>,
    /// One result per platform; the node's own when none is given.
    pub platforms: Vec<Platform>,
    /// `no-cache`: None keeps the cache; an empty list ignores it for every stage.
    pub no_cache: Option<Vec<String>>,
    /// `image-resolve-mode`: `default`, `pull` or `local`.
    pub image_resolve_mode: String,
    /// `add-hosts`: extra /etc/hosts entries for RUN steps.
    pub extra_hosts: Vec<(String, String)>,
    /// `context:<name>` overrides: a stage or image name mapped to another source.
    pub named_contexts: BTreeMap<String, String>,
}

impl Options {
    pub fn parse(raw: &BTreeMap<String, String>) -> Result<Options, SolveError> {
        let mut options = Options {
            filename: "Dockerfile".into(),
            image_resolve_mode: "default".into(),
            ..Options::default()
        };
        for (key, value) in raw {
            options.apply(key, value)?;
        }
        if options.platforms.is_empty() {
            options.platforms.push(Platform::native());
        }
        Ok(options)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<(), SolveError> {
        if let Some(name) = key.strip_prefix("build-arg:") {
            self.build_args.insert(name.to_string(), value.to_string());
        } else if let Some(name) = key.strip_prefix("label:") {
            self.labels.insert(name.to_string(), value.to_string());
        } else if let Some(name) = key.strip_prefix("context:") {
            self.named_contexts
                .insert(name.to_string(), value.to_string());
        } else {
            match key {
                "filename" if !value.is_empty() => self.filename = value.to_string(),
                "target" => self.target = value.to_string(),
                "platform" => self.platforms = platforms(value)?,
                "no-cache" => self.no_cache = Some(list(value)),
                "image-resolve-mode" => self.image_resolve_mode = resolve_mode(value)?,
                "add-hosts" => self.extra_hosts = hosts(value)?,
                // Everything else (attestations, cache settings, ...) does not change the build.
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the cache is to be ignored for stage `name`.
    pub fn ignores_cache(&self, name: Option<&str>) -> bool {
        match &self.no_cache {
            None => false,
            Some(stages) if stages.is_empty() => true,
            Some(stages) => name.is_some_and(|n| stages.iter().any(|s| s.eq_ignore_ascii_case(n))),
        }
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn platforms(value: &str) -> Result<Vec<Platform>, SolveError> {
    list(value)
        .iter()
        .map(|p| {
            Platform::parse(p)
                .map_err(|e| SolveError::InvalidDefinition(format!("platform {p:?}: {}", e.0)))
        })
        .collect()
}

fn resolve_mode(value: &str) -> Result<String, SolveError> {
    match value {
        "" | "default" => Ok("default".into()),
        "pull" | "local" => Ok(value.into()),
        other => Err(SolveError::InvalidDefinition(format!(
            "invalid image-resolve-mode: {other} (default, pull or local)"
        ))),
    }
}

fn hosts(value: &str) -> Result<Vec<(String, String)>, SolveError> {
    list(value)
        .iter()
        .map(|entry| {
            let (host, ip) = entry.split_once(['=', ':']).ok_or_else(|| {
                SolveError::InvalidDefinition(format!(
                    "invalid add-hosts entry {entry:?}: expected host=ip"
                ))
            })?;
            Ok((host.to_string(), ip.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Options, SolveError> {
        Options::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_and_prefixed_options() {
        let options = parse(&[
            ("build-arg:A", "1"),
            ("label:team", "x"),
            ("target", "final"),
        ])
        .unwrap();
        assert_eq!(options.filename, "Dockerfile");
        assert_eq!(options.build_args["A"], "1");
        assert_eq!(options.labels["team"], "x");
        assert_eq!(options.target, "final");
        assert_eq!(options.platforms, vec![Platform::native()]);
        assert!(!options.ignores_cache(Some("x")));
    }

    #[test]
    fn lists_and_bad_values() {
        let options = parse(&[("platform", "linux/amd64,linux/arm64"), ("no-cache", "")]).unwrap();
        assert_eq!(options.platforms.len(), 2);
        assert!(options.ignores_cache(None));
        let options = parse(&[("no-cache", "build"), ("add-hosts", "db=10.0.0.2")]).unwrap();
        assert!(options.ignores_cache(Some("BUILD")) && !options.ignores_cache(Some("other")));
        assert_eq!(
            options.extra_hosts,
            vec![("db".to_string(), "10.0.0.2".to_string())]
        );
        assert!(parse(&[("platform", "linux/")]).is_err());
        assert!(parse(&[("image-resolve-mode", "sometimes")]).is_err());
    }
}

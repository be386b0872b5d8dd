//! The Dockerfile frontend's options, as buildctl's `--opt` and docker buildx pass them.

use std::collections::BTreeMap;

use nodekit_proto::moby::buildkit::v1::CacheOptionsEntry;

use super::named_context::NamedContext;
use super::subrequests::Subrequest;
use crate::oci::Platform;
use crate::solver::SolveError;

#[derive(Clone, Debug, Default, PartialEq)]
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
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `ulimit` and `hostname` (or `build-arg:BUILDKIT_SANDBOX_HOSTNAME`): every RUN's sandbox.
    pub run_sandbox: RunSandbox,
    /// `cache-imports` (JSON, as buildctl and buildx send it) and `cache-from` (registry
    /// references): caches the build's steps may come from.
    pub cache_imports: Vec<CacheOptionsEntry>,
    /// `input-metadata:NAME`: the image config of frontend input NAME, if the client sent one.
    pub input_configs: BTreeMap<String, Vec<u8>>,
    /// `requestid`: a question about the Dockerfile instead of a build (buildx `--call`).
    pub subrequest: Option<Subrequest>,
    /// Options nodekitd does not know (upstream ignores them too): shown as build warnings.
    pub unknown: Vec<String>,
}

/// What every RUN step gets (buildx's `--ulimit`, `--build-arg BUILDKIT_SANDBOX_HOSTNAME`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSandbox {
    pub ulimits: Vec<Ulimit>,
    pub hostname: Option<String>,
    /// `force-network-mode` (buildx `--network`): the network of every RUN that does not ask
    /// for one itself (`--network=none|host`).
    pub forced_network: Option<ForcedNetwork>,
}

/// A build-wide network mode other than the sandbox's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForcedNetwork {
    None,
    /// Needs the build's `network.host` entitlement, as `RUN --network=host`.
    Host,
}

/// One resource limit: `nofile=1024:2048` (a missing hard limit is the soft one; -1 unlimited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// Options upstream applies to every RUN step that nodekitd does not implement yet: accepted
/// empty, refused otherwise.
const PER_RUN_SETTINGS: &[&str] = &[
    "shm-size",
    "cgroup-parent",
    "memory",
    "memswap",
    "cpushares",
    "cpuperiod",
    "cpuquota",
    "cpusetcpus",
    "cpusetmems",
    "override-copy-image",
];

/// The names Docker's ulimit parser accepts.
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The Dockerfile's name when the request gives none.
const DEFAULT_FILENAME: &str = "Dockerfile";

/// The Dockerfile's name in `raw` options (read before the rest, which another frontend the
/// file names may take instead).
pub fn filename(raw: &BTreeMap<String, String>) -> &str {
    raw.get("filename")
        .filter(|name| !name.is_empty())
        .map_or(DEFAULT_FILENAME, String::as_str)
}

impl Options {
    pub fn parse(raw: &BTreeMap<String, String>) -> Result<Options, SolveError> {
        let mut options = Options {
            filename: filename(raw).into(),
            image_resolve_mode: "default".into(),
            ..Options::default()
        };
        for (key, value) in raw {
            options.apply(key, value)?;
        }
        // After `cache-imports`, as buildkitd appends them.
        if let Some(refs) = raw.get("cache-from") {
            options.cache_imports.extend(cache_from(refs));
        }
        if options.platforms.is_empty() {
            options.platforms.push(Platform::native());
        }
        if options.run_sandbox.hostname.is_none() {
            let named = options.build_args.get("BUILDKIT_SANDBOX_HOSTNAME");
            options.run_sandbox.hostname = named.filter(|h| !h.is_empty()).cloned();
        }
        Ok(options)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<(), SolveError> {
        if let Some(name) = key.strip_prefix("build-arg:") {
            if name == "SOURCE_DATE_EPOCH" && !value.is_empty() {
                // Upstream turns it into the image's and the exported files' timestamps; as a
                // plain build argument it would give another image than asked.
                return Err(SolveError::Unsupported(format!(
                    "frontend option {key}={value}: reproducible timestamps (SOURCE_DATE_EPOCH) are not supported by nodekitd yet"
                )));
            }
            self.build_args.insert(name.to_string(), value.to_string());
        } else if let Some(name) = key.strip_prefix("label:") {
            self.labels.insert(name.to_string(), value.to_string());
        } else if let Some(name) = key.strip_prefix("input-metadata:") {
            if let Some(config) = input_image_config(name, value)? {
                self.input_configs.insert(name.to_string(), config);
            }
        } else if let Some(name) = key.strip_prefix("context:") {
            let context = NamedContext::parse(name, value)?;
            self.named_contexts.insert(name.to_string(), context);
        } else {
            match key {
                "target" => self.target = value.to_string(),
                "platform" => self.platforms = platforms(value)?,
                "no-cache" => self.no_cache = Some(list(value)),
                "image-resolve-mode" => self.image_resolve_mode = resolve_mode(value)?,
                "add-hosts" => self.extra_hosts = hosts(value)?,
                _ => self.other(key, value)?,
            }
        }
        Ok(())
    }

    /// Options beyond the ones that shape the LLB: accepted when they cannot change the build,
    /// refused by name when nodekitd would have to ignore what they ask.
    fn other(&mut self, key: &str, value: &str) -> Result<(), SolveError> {
        let refuse = |what: &str| {
            Err(SolveError::Unsupported(format!(
                "frontend option {key}={value}: {what} is not supported by nodekitd yet"
            )))
        };
        match key {
            // Where the inputs come from, and the source-control facts upstream records only
            // in attestations.
            "filename" | "multi-platform" | "contextsubdir" | "cmdline" => Ok(()),
            "contextkey" if matches!(value, "" | "context") => Ok(()),
            "dockerfilekey" if matches!(value, "" | "dockerfile") => Ok(()),
            "contextkey" | "dockerfilekey" => refuse("another name for the build's inputs"),
            _ if ["local-sessionid:", "vcs:"]
                .iter()
                .any(|p| key.starts_with(p)) =>
            {
                Ok(())
            }
            _ if key.starts_with("attest:") && attestation_disabled(value) => Ok(()),
            _ if key.starts_with("attest:") => refuse("an attestation"),
            "cache-imports" => {
                let entries = cache_imports(value)?;
                self.cache_imports.extend(entries);
                Ok(())
            }
            // Read after the others (see `parse`).
            "cache-from" => Ok(()),
            "force-network-mode" => {
                self.run_sandbox.forced_network = match value {
                    "" | "sandbox" | "default" => None,
                    "none" => Some(ForcedNetwork::None),
                    "host" => Some(ForcedNetwork::Host),
                    _ => {
                        return Err(SolveError::InvalidDefinition(format!(
                            "frontend option force-network-mode: invalid netmode {value}"
                        )))
                    }
                };
                Ok(())
            }
            "requestid" if value.is_empty() => Ok(()),
            "requestid" => {
                self.subrequest = Some(Subrequest::parse(value)?);
                Ok(())
            }
            "shm-size" if matches!(value, "" | "0") => Ok(()),
            "hostname" => {
                self.run_sandbox.hostname = Some(value.to_string()).filter(|h| !h.is_empty());
                Ok(())
            }
            "ulimit" => {
                self.run_sandbox.ulimits = ulimits(value)?;
                Ok(())
            }
            _ if PER_RUN_SETTINGS.contains(&key) && value.is_empty() => Ok(()),
            _ if PER_RUN_SETTINGS.contains(&key) => refuse("a setting for every RUN step"),
            _ => {
                self.unknown.push(key.to_string());
                Ok(())
            }
        }
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

/// The image config in an input's metadata (a JSON object of base64 values, as Go writes a
/// `map[string][]byte`).
fn input_image_config(name: &str, value: &str) -> Result<Option<Vec<u8>>, SolveError> {
    use base64::Engine;
    let invalid = |why: String| {
        SolveError::InvalidDefinition(format!("frontend option input-metadata:{name}: {why}"))
    };
    let metadata: BTreeMap<String, String> =
        serde_json::from_str(value).map_err(|e| invalid(e.to_string()))?;
    metadata
        .get(IMAGE_CONFIG_METADATA)
        .map(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| invalid(e.to_string()))
        })
        .transpose()
}

/// The key of an image config in a result's (and an input's) metadata.
const IMAGE_CONFIG_METADATA: &str = "containerimage.config";

/// `ulimit`: comma-separated `name=soft[:hard]`, as buildx sends `--ulimit` values.
fn ulimits(value: &str) -> Result<Vec<Ulimit>, SolveError> {
    list(value)
        .iter()
        .map(|entry| {
            let invalid = |why: &str| {
                SolveError::InvalidDefinition(format!("invalid ulimit {entry:?}: {why}"))
            };
            let (name, limits) = entry
                .split_once('=')
                .ok_or_else(|| invalid("expected name=soft[:hard]"))?;
            if !ULIMIT_NAMES.contains(&name) {
                return Err(invalid("unknown resource"));
            }
            let number = |text: &str| {
                text.parse::<i64>()
                    .map_err(|_| invalid("limits are numbers"))
            };
            let (soft, hard) = match limits.split_once(':') {
                Some((soft, hard)) => (number(soft)?, number(hard)?),
                None => (number(limits)?, number(limits)?),
            };
            if soft > hard && hard != -1 {
                return Err(invalid("the soft limit is above the hard one"));
            }
            Ok(Ulimit {
                name: name.to_string(),
                soft,
                hard,
            })
        })
        .collect()
}

/// `attest:sbom=disabled=true`, `attest:provenance=false`: what buildx sends to turn one off.
fn attestation_disabled(value: &str) -> bool {
    value == "false"
        || value
            .split(',')
            .any(|part| matches!(part.trim(), "disabled=true" | "mode=disabled"))
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

/// `cache-imports`: a JSON list of `{"Type": ..., "Attrs": {...}}` (keys in any case, as Go
/// decodes them).
fn cache_imports(value: &str) -> Result<Vec<CacheOptionsEntry>, SolveError> {
    if matches!(value.trim(), "" | "null") {
        return Ok(Vec::new());
    }
    let entries: Vec<BTreeMap<String, serde_json::Value>> = serde_json::from_str(value)
        .map_err(|e| SolveError::Frontend(format!("failed to unmarshal cache-imports ({e})")))?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let field = |name: &str| {
                entry
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let attrs = match field("attrs") {
                Some(serde_json::Value::Object(attrs)) => attrs
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect(),
                _ => Default::default(),
            };
            CacheOptionsEntry {
                r#type: field("type")
                    .and_then(|t| t.as_str().map(str::to_string))
                    .unwrap_or_default(),
                attrs,
            }
        })
        .collect())
}

/// `cache-from`: comma-separated registry references.
fn cache_from(value: &str) -> Vec<CacheOptionsEntry> {
    value
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|reference| CacheOptionsEntry {
            r#type: "registry".into(),
            attrs: [("ref".to_string(), reference.to_string())].into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_imports_and_cache_from_are_read_as_buildkit_sends_them() {
        let options = parse(&[
            (
                "cache-imports",
                r#"[{"Type":"local","Attrs":{"src":"/c","digest":"sha256:aa"}},{"type":"registry","attrs":{"ref":"r/c"}}]"#,
            ),
            ("cache-from", "r/one, r/two"),
        ])
        .unwrap();
        let read: Vec<(&str, Vec<(&str, &str)>)> = options
            .cache_imports
            .iter()
            .map(|e| {
                let mut attrs: Vec<(&str, &str)> = e
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                attrs.sort();
                (e.r#type.as_str(), attrs)
            })
            .collect();
        assert_eq!(
            read,
            [
                ("local", vec![("digest", "sha256:aa"), ("src", "/c")]),
                ("registry", vec![("ref", "r/c")]),
                ("registry", vec![("ref", "r/one")]),
                ("registry", vec![("ref", "r/two")]),
            ]
        );
        let error = parse(&[("cache-imports", "{")]).unwrap_err().to_string();
        assert!(
            error.contains("failed to unmarshal cache-imports"),
            "{error}"
        );
    }

    #[test]
    fn options_that_would_be_ignored_are_refused_and_unknown_ones_kept_for_a_warning() {
        for (key, value) in [
            ("attest:sbom", ""),
            ("attest:provenance", "mode=max"),
            ("requestid", "frontend.nosuch"),
            ("force-network-mode", "bridge"),
            ("ulimit", "nofiles=1024:1024"),
            ("shm-size", "64m"),
            ("dockerfilekey", "other"),
        ] {
            let error = parse(&[(key, value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(key), "{key}={value}: {error:?}");
        }
        let options = parse(&[
            ("attest:sbom", "disabled=true"),
            ("attest:provenance", "false"),
            ("cache-imports", "[]"),
            ("vcs:source", "git@example.com:x.git"),
            ("filename", ""),
            ("buidl-arg:X", "1"),
        ])
        .unwrap();
        assert_eq!(options.unknown, ["buidl-arg:X"]);
    }

    #[test]
    fn ulimits_and_the_hostname_reach_every_run() {
        let options = parse(&[
            ("ulimit", "nofile=1024:2048,nproc=-1"),
            ("build-arg:BUILDKIT_SANDBOX_HOSTNAME", "from-arg"),
        ])
        .unwrap();
        let limits: Vec<_> = options
            .run_sandbox
            .ulimits
            .iter()
            .map(|u| (u.name.as_str(), u.soft, u.hard))
            .collect();
        assert_eq!(limits, [("nofile", 1024, 2048), ("nproc", -1, -1)]);
        assert_eq!(options.run_sandbox.hostname.as_deref(), Some("from-arg"));
        let options = parse(&[
            ("hostname", "builder"),
            ("build-arg:BUILDKIT_SANDBOX_HOSTNAME", "x"),
        ])
        .unwrap();
        assert_eq!(options.run_sandbox.hostname.as_deref(), Some("builder"));
        assert!(parse(&[("ulimit", "nofile=4096:1024")]).is_err());
    }

    #[test]
    fn source_date_epoch_is_refused_by_name() {
        let error = parse(&[("build-arg:SOURCE_DATE_EPOCH", "1700000000")]).unwrap_err();
        assert!(error.to_string().contains("SOURCE_DATE_EPOCH"), "{error}");
        assert!(parse(&[("build-arg:SOURCE_DATE_EPOCH", "")]).is_ok());
    }

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

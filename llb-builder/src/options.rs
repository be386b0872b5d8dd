//! Per-op options (BuildKit's `ConstraintsOpt`s): names, cache hints, platform, worker filters.

use std::collections::BTreeMap;
use std::sync::Arc;

use nodekit_llb::definition::CUSTOM_NAME_KEY;
use nodekit_proto::pb;

use crate::sourcemap::{SourceLocation, SourceMap};

/// Options any op can carry. Names, descriptions, cache hints and source locations go to the
/// definition's metadata, not into the op's bytes, so they don't change its digest; the platform
/// and worker constraints do. Given to [`marshal_with`](crate::marshal_with), they apply to
/// every op (op-level values win).
#[derive(Debug, Clone, Default)]
pub struct OpOptions {
    pub(crate) description: BTreeMap<String, String>,
    pub(crate) ignore_cache: bool,
    pub(crate) export_cache: Option<bool>,
    pub(crate) platform: Option<pb::Platform>,
    pub(crate) progress_group: Option<pb::ProgressGroup>,
    pub(crate) worker_constraints: Vec<String>,
    pub(crate) locations: Vec<SourceLocation>,
}

impl OpOptions {
    /// No options.
    pub fn new() -> OpOptions {
        OpOptions::default()
    }

    /// The name progress output shows for the op (`llb.customname`).
    pub fn custom_name(self, name: impl Into<String>) -> OpOptions {
        self.description(CUSTOM_NAME_KEY, name)
    }

    /// One free-form description entry.
    pub fn description(mut self, key: impl Into<String>, value: impl Into<String>) -> OpOptions {
        self.description.insert(key.into(), value.into());
        self
    }

    /// Never take this op's result from the cache.
    pub fn ignore_cache(mut self) -> OpOptions {
        self.ignore_cache = true;
        self
    }

    /// Export (`true`) or don't export (`false`) this op's result with the build cache.
    pub fn export_cache(mut self, export: bool) -> OpOptions {
        self.export_cache = Some(export);
        self
    }

    /// The platform of an exec or image source op (default: the state's, else the marshal
    /// default). Written to the op as given (not normalised), as BuildKit's client does.
    pub fn platform(mut self, platform: pb::Platform) -> OpOptions {
        self.platform = Some(platform);
        self
    }

    /// Groups the op's progress with others under one name.
    pub fn progress_group(mut self, id: &str, name: &str, weak: bool) -> OpOptions {
        let group = pb::ProgressGroup {
            id: id.to_string(),
            name: name.to_string(),
            weak,
        };
        self.progress_group = Some(group);
        self
    }

    /// Adds a worker constraint filter (`llb.Require`).
    pub fn require(mut self, filter: impl Into<String>) -> OpOptions {
        self.worker_constraints.push(filter.into());
        self
    }

    /// Points the op at ranges of a source file (`SourceMap.Location`).
    pub fn location(mut self, map: &Arc<SourceMap>, ranges: Vec<pb::Range>) -> OpOptions {
        self.locations.push(SourceLocation::new(map, ranges));
        self
    }

    /// The metadata an op built with these options gets, with its capability ids.
    pub(crate) fn metadata(&self, caps: &[&str]) -> pb::OpMetadata {
        pb::OpMetadata {
            ignore_cache: self.ignore_cache,
            description: self.description.clone(),
            export_cache: self.export_cache.map(|value| pb::ExportCache { value }),
            caps: caps.iter().map(|c| (c.to_string(), true)).collect(),
            progress_group: self.progress_group.clone(),
            linux_resources: None,
        }
    }
}

/// Merges `more` into `into` the way BuildKit's client does (`mergeMetadata`).
pub(crate) fn merge_metadata(into: &mut pb::OpMetadata, more: pb::OpMetadata) {
    into.ignore_cache |= more.ignore_cache;
    into.description.extend(more.description);
    into.caps.extend(more.caps.into_keys().map(|k| (k, true)));
    if more.export_cache.is_some() {
        into.export_cache = more.export_cache;
    }
    if more.progress_group.is_some() {
        into.progress_group = more.progress_group;
    }
    if more.linux_resources.is_some() {
        into.linux_resources = more.linux_resources;
    }
}

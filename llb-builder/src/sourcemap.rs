//! Source maps: which lines of a source file (a Dockerfile, …) an op comes from, so the daemon
//! can point errors at them (BuildKit's `llb.SourceMap`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use nodekit_proto::pb;

/// A source file ops can point into.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceMap {
    pub filename: String,
    /// A linguist language name, e.g. `Dockerfile`.
    pub language: String,
    pub data: Vec<u8>,
    /// The graph that produced the file, if any (e.g. the op that loaded the Dockerfile).
    pub definition: Option<pb::Definition>,
}

impl SourceMap {
    /// A source file with its content.
    pub fn new(filename: &str, language: &str, data: Vec<u8>) -> Arc<SourceMap> {
        let map = SourceMap {
            filename: filename.to_string(),
            language: language.to_string(),
            data,
            definition: None,
        };
        Arc::new(map)
    }

    /// Whether two maps describe the same file (BuildKit's `equalSourceMap`).
    fn same_file(&self, other: &SourceMap) -> bool {
        let same_def = match (&self.definition, &other.definition) {
            (Some(a), Some(b)) => a.def.last() == b.def.last(),
            _ => true,
        };
        self.filename == other.filename
            && self.language == other.language
            && self.data == other.data
            && same_def
    }
}

/// Ranges of one source map an op comes from; attach with
/// [`OpOptions::location`](crate::OpOptions::location).
#[derive(Debug, Clone)]
pub struct SourceLocation {
    pub(crate) map: Arc<SourceMap>,
    pub(crate) ranges: Vec<pb::Range>,
}

impl SourceLocation {
    /// The given ranges of `map`.
    pub fn new(map: &Arc<SourceMap>, ranges: Vec<pb::Range>) -> SourceLocation {
        SourceLocation {
            map: map.clone(),
            ranges,
        }
    }
}

/// Gathers the locations of marshalled ops into a `pb.Source`.
#[derive(Default)]
pub(crate) struct Collector {
    maps: Vec<Arc<SourceMap>>,
    index: HashMap<*const SourceMap, usize>,
    locations: BTreeMap<String, Vec<pb::Location>>,
}

impl Collector {
    /// Records the locations of the op with `digest`.
    pub fn add(&mut self, digest: &str, locations: &[SourceLocation]) {
        for loc in locations {
            let index = self.map_index(&loc.map);
            let entry = self.locations.entry(digest.to_string()).or_default();
            entry.push(pb::Location {
                source_index: i32::try_from(index).unwrap_or(i32::MAX),
                ranges: loc.ranges.clone(),
            });
        }
    }

    fn map_index(&mut self, map: &Arc<SourceMap>) -> usize {
        if let Some(&i) = self.index.get(&Arc::as_ptr(map)) {
            return i;
        }
        let i = match self.maps.iter().position(|m| m.same_file(map)) {
            Some(i) => i,
            None => {
                self.maps.push(map.clone());
                self.maps.len() - 1
            }
        };
        self.index.insert(Arc::as_ptr(map), i);
        i
    }

    /// The definition's `Source` (always present, as BuildKit's client writes it).
    pub fn finish(self) -> pb::Source {
        let infos = self.maps.iter().map(|m| source_info(m)).collect();
        let locations = self
            .locations
            .into_iter()
            .map(|(digest, locations)| (digest, pb::Locations { locations }))
            .collect();
        pb::Source { locations, infos }
    }
}

fn source_info(map: &SourceMap) -> pb::SourceInfo {
    pb::SourceInfo {
        filename: map.filename.clone(),
        data: map.data.clone(),
        definition: map.definition.clone(),
        language: map.language.clone(),
    }
}

//! `--export-cache` / `--import-cache` on the client's side, as buildctl does it: a local
//! export's directory is offered on the session (`local:<dest>`) and its index.json points the
//! tag at the `cache.manifest` the daemon answers; a local import's tag is looked up in its
//! index.json and sent as the entry's `digest` (an import that cannot be found is left out with
//! a warning, as buildctl leaves it). Other types pass through to the daemon unchanged.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use nodekit_proto::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry};

use crate::ociindex::{Descriptor, StoreIndex};

/// The response key with the exported cache's manifest descriptor.
const CACHE_MANIFEST: &str = "cache.manifest";

/// A cache entry as `type=...,key=value` gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheEntry {
    pub kind: String,
    pub attrs: BTreeMap<String, String>,
}

impl CacheEntry {
    /// Reads `type=local,dest=DIR,...` (buildctl's flag syntax).
    pub fn parse(text: &str) -> anyhow::Result<CacheEntry> {
        let mut entry = CacheEntry::default();
        for field in text.split(',').filter(|f| !f.is_empty()) {
            let (key, value) = field
                .split_once('=')
                .with_context(|| format!("cache option {field:?} is not key=value"))?;
            match key {
                "type" => entry.kind = value.to_string(),
                _ => {
                    entry.attrs.insert(key.to_string(), value.to_string());
                }
            }
        }
        anyhow::ensure!(
            !entry.kind.is_empty(),
            "cache option {text:?} names no type"
        );
        Ok(entry)
    }

    fn wire(&self) -> CacheOptionsEntry {
        CacheOptionsEntry {
            r#type: self.kind.clone(),
            attrs: self.attrs.clone().into_iter().collect(),
        }
    }

    fn tag(&self) -> &str {
        self.attrs.get("tag").map_or("latest", String::as_str)
    }
}

/// The cache side of one build: the stores to offer, the entries to send, the tags to set.
#[derive(Debug, Default)]
pub struct CachePlan {
    /// Content stores for the session, by store id.
    pub stores: BTreeMap<String, PathBuf>,
    pub options: CacheOptions,
    /// Local export directories with the tag to point at the exported manifest.
    tags: Vec<(PathBuf, String)>,
}

impl CachePlan {
    pub fn new(exports: &[CacheEntry], imports: &[CacheEntry]) -> anyhow::Result<CachePlan> {
        let mut plan = CachePlan::default();
        for export in exports {
            if export.kind == "local" {
                plan.local_export(export)?;
            }
            plan.options.exports.push(export.wire());
        }
        for import in imports {
            match import.kind.as_str() {
                "local" => plan.local_import(import)?,
                _ => plan.options.imports.push(import.wire()),
            }
        }
        Ok(plan)
    }

    fn local_export(&mut self, export: &CacheEntry) -> anyhow::Result<()> {
        let dest = export
            .attrs
            .get("dest")
            .filter(|d| !d.is_empty())
            .context("local cache exporter requires dest")?;
        std::fs::create_dir_all(dest).with_context(|| format!("creating {dest}"))?;
        self.stores
            .insert(format!("local:{dest}"), PathBuf::from(dest));
        self.tags
            .push((PathBuf::from(dest), export.tag().to_string()));
        Ok(())
    }

    fn local_import(&mut self, import: &CacheEntry) -> anyhow::Result<()> {
        let src = import
            .attrs
            .get("src")
            .filter(|s| !s.is_empty())
            .context("local cache importer requires src")?;
        let mut entry = import.clone();
        if !entry.attrs.contains_key("digest") {
            match StoreIndex::new(src).get(import.tag()) {
                Ok(Some(found)) => {
                    entry.attrs.insert("digest".into(), found.digest);
                }
                Ok(None) => {
                    eprintln!(
                        "warning: no cache tagged {:?} in {src}; not importing it",
                        import.tag()
                    );
                    return Ok(());
                }
                Err(error) => {
                    eprintln!(
                        "warning: cannot read the cache index of {src} ({error}); not importing it"
                    );
                    return Ok(());
                }
            }
        }
        self.stores
            .insert(format!("local:{src}"), PathBuf::from(src));
        self.options.imports.push(entry.wire());
        Ok(())
    }

    /// The imports as a frontend option (`cache-imports`), as buildctl sends them to one.
    pub fn frontend_imports(&self) -> Option<String> {
        if self.options.imports.is_empty() {
            return None;
        }
        let entries: Vec<serde_json::Value> = self
            .options
            .imports
            .iter()
            .map(|e| serde_json::json!({"Type": e.r#type, "Attrs": e.attrs}))
            .collect();
        Some(serde_json::Value::Array(entries).to_string())
    }

    /// After the build: points each local export's tag at the manifest the daemon wrote.
    pub fn finish(&self, response: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let Some(manifest) = response.get(CACHE_MANIFEST).filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        let descriptor: Descriptor = serde_json::from_str(manifest)
            .with_context(|| format!("the daemon's {CACHE_MANIFEST} {manifest:?}"))?;
        for (dir, tag) in &self.tags {
            StoreIndex::new(dir)
                .put(&descriptor, tag)
                .with_context(|| format!("updating the index of {}", dir.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_buildctl_writes_them() {
        let entry = CacheEntry::parse("type=local,dest=/tmp/c,mode=max").unwrap();
        assert_eq!(entry.kind, "local");
        assert_eq!(entry.attrs["dest"], "/tmp/c");
        assert_eq!(entry.tag(), "latest");
        assert!(CacheEntry::parse("dest=/tmp/c").is_err());
        assert!(CacheEntry::parse("type=local,oops").is_err());
    }

    #[test]
    fn a_local_import_without_its_tag_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().to_str().unwrap().to_string();
        let import = CacheEntry::parse(&format!("type=local,src={src}")).unwrap();
        let plan = CachePlan::new(&[], &[import]).unwrap();
        assert!(plan.options.imports.is_empty() && plan.stores.is_empty());
        assert_eq!(plan.frontend_imports(), None);
    }

    #[test]
    fn an_exported_manifest_is_tagged_in_each_local_directory() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("cache");
        let text = format!("type=local,dest={},tag=v1", dest.display());
        let plan = CachePlan::new(&[CacheEntry::parse(&text).unwrap()], &[]).unwrap();
        assert!(plan
            .stores
            .contains_key(&format!("local:{}", dest.display())));
        let manifest = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":3}"#;
        let response = BTreeMap::from([(CACHE_MANIFEST.to_string(), manifest.to_string())]);
        plan.finish(&response).unwrap();
        let found = StoreIndex::new(&dest).get("v1").unwrap().unwrap();
        assert_eq!(found.digest, "sha256:aa");

        let import =
            CacheEntry::parse(&format!("type=local,src={},tag=v1", dest.display())).unwrap();
        let plan = CachePlan::new(&[], &[import]).unwrap();
        assert_eq!(plan.options.imports[0].attrs["digest"], "sha256:aa");
        assert!(plan.frontend_imports().unwrap().contains("sha256:aa"));
    }
}

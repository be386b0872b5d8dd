//! The image exporters' annotation attributes, read as BuildKit reads them
//! (`exptypes.ParseAnnotationKey`): `annotation[-TYPE][[PLATFORM]].KEY=VALUE`, TYPE one of
//! `manifest` (what a plain `annotation.KEY` means), `manifest-descriptor`, `index` and
//! `index-descriptor`, PLATFORM limiting a manifest's annotations to that platform's manifest;
//! and where each lands, with BuildKit's refusals:
//!
//! - index annotations on an image of one manifest ("index annotations not supported for
//!   single platform export"): nodekitd, like buildkitd, makes no index for them;
//! - index, index-descriptor and manifest-descriptor annotations with Docker media types
//!   (`oci-mediatypes=false`, the `docker` exporter's default);
//! - a platform the result does not have.
//!
//! One difference: buildkitd drops a platform-qualified manifest annotation in silence when
//! the result is a single manifest; nodekitd applies it when the platform is the image's own
//! and refuses it otherwise, as it refuses any platform the result lacks.

use std::collections::BTreeMap;

use crate::oci::Platform;
use crate::solver::SolveError;
use crate::worker::{ManifestAnnotations, ManifestFormat};

/// Where an annotation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// In the image index.
    Index,
    /// On the index's descriptor: the image records' target, a tarball's `index.json`, the
    /// exporter response's `containerimage.descriptor` (a registry has no place for it, as
    /// with buildkitd).
    IndexDescriptor,
    /// In each platform's manifest.
    Manifest,
    /// On each manifest's descriptor: its entry in the index; for an image of one manifest,
    /// where the index descriptor's go.
    ManifestDescriptor,
}

/// One annotation attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// The attribute as given, to name it in errors.
    pub attr: String,
    pub target: Target,
    /// Only this platform's (a manifest's or a manifest descriptor's).
    pub platform: Option<Platform>,
    pub key: String,
    pub value: String,
}

/// The parts of an annotation attribute's name.
struct AttrParts<'a> {
    kind: &'a str,
    platform: Option<&'a str>,
    key: &'a str,
}

/// Splits `annotation[-KIND][[PLATFORM]].KEY` as BuildKit's pattern does
/// (`^annotation(?:-([a-z-]+))?(?:\[([A-Za-z0-9_/-]+)\])?\.(\S+)$`); None when it does not
/// match.
fn split_attr(attr: &str) -> Option<AttrParts<'_>> {
    let mut rest = attr.strip_prefix("annotation")?;
    let mut kind = "";
    if let Some(after) = rest.strip_prefix('-') {
        let end = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .unwrap_or(after.len());
        (end > 0).then_some(())?;
        (kind, rest) = after.split_at(end);
    }
    let mut platform = None;
    if let Some(after) = rest.strip_prefix('[') {
        let (inner, tail) = after.split_once(']')?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '-');
        (!inner.is_empty() && inner.chars().all(allowed)).then_some(())?;
        platform = Some(inner);
        rest = tail;
    }
    let key = rest.strip_prefix('.')?;
    (!key.is_empty() && !key.chars().any(char::is_whitespace)).then_some(())?;
    Some(AttrParts {
        kind,
        platform,
        key,
    })
}

/// Whether `attr` names an annotation (well formed or not): BuildKit would take a malformed
/// one for exporter metadata and drop it; nodekitd refuses it by name.
pub fn looks_like_annotation(attr: &str) -> bool {
    attr.starts_with("annotation")
}

impl Annotation {
    /// The annotation `attr=value` asks for; an error naming `attr` when it is malformed.
    pub fn parse(attr: &str, value: &str) -> Result<Annotation, SolveError> {
        let invalid =
            |why: String| SolveError::InvalidDefinition(format!("image exporter: {attr}: {why}"));
        let parts = split_attr(attr).ok_or_else(|| {
            invalid("not an annotation attribute: annotation[-index|-index-descriptor|-manifest|-manifest-descriptor][[os/arch]].KEY".into())
        })?;
        let target = match parts.kind {
            "" | "manifest" => Target::Manifest,
            "manifest-descriptor" => Target::ManifestDescriptor,
            "index" => Target::Index,
            "index-descriptor" => Target::IndexDescriptor,
            other => {
                return Err(invalid(format!(
                    "unrecognized annotation type {other:?} (manifest, manifest-descriptor, index or index-descriptor)"
                )))
            }
        };
        let platform = parts
            .platform
            .map(Platform::parse)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Annotation {
            attr: attr.to_string(),
            target,
            platform,
            key: parts.key.to_string(),
            value: value.to_string(),
        })
    }
}

/// An image exporter's annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations(Vec<Annotation>);

impl Annotations {
    /// The annotation attributes among `attrs`.
    pub fn from_attrs(attrs: &BTreeMap<String, String>) -> Result<Annotations, SolveError> {
        let parsed = attrs
            .iter()
            .filter(|(key, _)| looks_like_annotation(key))
            .map(|(key, value)| Annotation::parse(key, value));
        Ok(Annotations(parsed.collect::<Result<_, _>>()?))
    }

    /// Refuses what Docker media types have no place for, before anything is built (BuildKit:
    /// "cannot export annotations with oci-mediatypes=false"); a manifest's own annotations
    /// are written into a Docker manifest too, as BuildKit writes them.
    pub fn check_format(&self, format: ManifestFormat) -> Result<(), SolveError> {
        if format == ManifestFormat::Oci {
            return Ok(());
        }
        match self.0.iter().find(|a| a.target != Target::Manifest) {
            Some(a) => Err(SolveError::InvalidDefinition(format!(
                "image exporter: {}: cannot export index, index-descriptor or manifest-descriptor annotations with oci-mediatypes=false",
                a.attr
            ))),
            None => Ok(()),
        }
    }

    /// Refuses a platform the result does not have, and index annotations on an image of one
    /// manifest (`platforms` are the result's, one per manifest).
    pub fn check_platforms(&self, platforms: &[Platform]) -> Result<(), SolveError> {
        for annotation in &self.0 {
            if let Some(platform) = &annotation.platform {
                if !platforms.contains(platform) {
                    let have: Vec<String> = platforms.iter().map(Platform::to_string).collect();
                    return Err(SolveError::InvalidDefinition(format!(
                        "image exporter: {}: invalid annotation: no platform {platform} in the result (it has {})",
                        annotation.attr,
                        have.join(", ")
                    )));
                }
            }
            let index = matches!(annotation.target, Target::Index | Target::IndexDescriptor);
            if index && platforms.len() == 1 {
                return Err(SolveError::InvalidDefinition(format!(
                    "image exporter: {}: index annotations not supported for single platform export (the image is one manifest, no index)",
                    annotation.attr
                )));
            }
        }
        Ok(())
    }

    /// The annotations of `platform`'s manifest and its descriptor: the unqualified ones, then
    /// that platform's, which win on the same key (as BuildKit merges them).
    pub fn manifest(&self, platform: &Platform) -> ManifestAnnotations {
        ManifestAnnotations {
            manifest: self.for_platform(Target::Manifest, platform),
            descriptor: self.for_platform(Target::ManifestDescriptor, platform),
        }
    }

    /// The index's own annotations. A platform qualifier on an index annotation limits
    /// nothing (there is one index): BuildKit applies it to the index all the same.
    pub fn index(&self) -> BTreeMap<String, String> {
        self.of(Target::Index, |_| true)
    }

    /// The index descriptor's annotations.
    pub fn index_descriptor(&self) -> BTreeMap<String, String> {
        self.of(Target::IndexDescriptor, |_| true)
    }

    fn for_platform(&self, target: Target, platform: &Platform) -> BTreeMap<String, String> {
        let mut annotations = self.of(target, |a| a.platform.is_none());
        annotations.extend(self.of(target, |a| a.platform.as_ref() == Some(platform)));
        annotations
    }

    fn of(&self, target: Target, pick: impl Fn(&Annotation) -> bool) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|a| a.target == target && pick(a))
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(attr: &str) -> Result<Annotation, String> {
        Annotation::parse(attr, "v").map_err(|e| e.to_string())
    }

    fn platform(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    #[test]
    fn types_platforms_and_keys_are_read_as_buildkit_reads_them() {
        let plain = parse("annotation.org.opencontainers.image.title").unwrap();
        assert_eq!(
            (plain.target, plain.platform, plain.key.as_str()),
            (Target::Manifest, None, "org.opencontainers.image.title")
        );
        let qualified = parse("annotation-manifest-descriptor[linux/arm64/v8].a.b").unwrap();
        assert_eq!(qualified.target, Target::ManifestDescriptor);
        assert_eq!(qualified.platform, Some(platform("linux/arm64")));
        assert_eq!(qualified.key, "a.b");
        assert_eq!(parse("annotation-index.k").unwrap().target, Target::Index);
        let descriptor = parse("annotation-index-descriptor.k").unwrap();
        assert_eq!(descriptor.target, Target::IndexDescriptor);
        let bare = parse("annotation[linux/amd64].k").unwrap();
        assert_eq!(
            (bare.target, bare.platform),
            (Target::Manifest, Some(platform("linux/amd64")))
        );
    }

    #[test]
    fn malformed_attributes_are_refused_by_name() {
        for (attr, says) in [
            (
                "annotation-layer.k",
                "unrecognized annotation type \"layer\"",
            ),
            ("annotation-manifest[linux].k", "invalid platform"),
            ("annotation", "not an annotation attribute"),
            ("annotation.", "not an annotation attribute"),
            ("annotationx.k", "not an annotation attribute"),
            (
                "annotation-manifest[linux/amd64.k",
                "not an annotation attribute",
            ),
            (
                "annotation-manifest[linux amd64].k",
                "not an annotation attribute",
            ),
            ("annotation-Manifest.k", "not an annotation attribute"),
            ("annotation.a b", "not an annotation attribute"),
        ] {
            let error = parse(attr).unwrap_err();
            assert!(
                error.contains(attr) && error.contains(says),
                "{attr}: {error}"
            );
        }
    }

    fn annotations(pairs: &[(&str, &str)]) -> Annotations {
        let attrs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Annotations::from_attrs(&attrs).unwrap()
    }

    #[test]
    fn a_platforms_own_annotations_win_over_everyones() {
        let set = annotations(&[
            ("annotation.shared", "all"),
            ("annotation.title", "generic"),
            ("annotation-manifest[linux/arm64].title", "arm"),
            ("annotation-manifest-descriptor.d", "desc"),
            ("annotation-index.i", "index"),
            ("annotation-index-descriptor.id", "index-desc"),
            ("name", "not an annotation"),
        ]);
        let arm = set.manifest(&platform("linux/arm64"));
        assert_eq!(arm.manifest["title"], "arm");
        assert_eq!(arm.manifest["shared"], "all");
        assert_eq!(arm.descriptor["d"], "desc");
        let amd = set.manifest(&platform("linux/amd64"));
        assert_eq!(amd.manifest["title"], "generic");
        assert_eq!(set.index(), BTreeMap::from([("i".into(), "index".into())]));
        assert_eq!(set.index_descriptor()["id"], "index-desc");
        assert!(!amd.manifest.contains_key("i"));
    }

    #[test]
    fn buildkits_refusals_hold() {
        let two = [platform("linux/amd64"), platform("linux/arm64")];
        let one = [platform("linux/amd64")];
        let index = annotations(&[("annotation-index.k", "v")]);
        assert!(index.check_platforms(&two).is_ok());
        let error = index.check_platforms(&one).unwrap_err().to_string();
        assert!(
            error.contains("annotation-index.k") && error.contains("single platform"),
            "{error}"
        );
        let foreign = annotations(&[("annotation-manifest[linux/s390x].k", "v")]);
        let error = foreign.check_platforms(&two).unwrap_err().to_string();
        assert!(error.contains("no platform linux/s390x"), "{error}");
        let own = annotations(&[("annotation[linux/amd64].k", "v")]);
        assert!(own.check_platforms(&one).is_ok());
        assert_eq!(own.manifest(&one[0]).manifest["k"], "v");

        assert!(own.check_format(ManifestFormat::Docker).is_ok());
        let descriptor = annotations(&[("annotation-manifest-descriptor.k", "v")]);
        let error = descriptor
            .check_format(ManifestFormat::Docker)
            .unwrap_err()
            .to_string();
        assert!(error.contains("oci-mediatypes=false"), "{error}");
        assert!(descriptor.check_format(ManifestFormat::Oci).is_ok());
    }
}

//! Splitting a frontend's result into what the exporter writes per platform, as BuildKit's
//! exporters read it: one ref (key "") with `containerimage.config`, or one ref per platform
//! listed in `refs.platforms`, each with `containerimage.config/<id>`.

use serde::Deserialize;

use crate::gateway::{ReturnedResult, IMAGE_CONFIG_KEY};
use crate::oci::Platform;
use crate::solver::SolveError;

use super::image::PlatformResult;

const PLATFORMS_KEY: &str = "refs.platforms";

#[derive(Deserialize)]
struct PlatformsMetadata {
    platforms: Vec<PlatformEntry>,
}

#[derive(Deserialize)]
struct PlatformEntry {
    id: String,
    platform: WirePlatform,
}

#[derive(Deserialize)]
struct WirePlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// The result's parts, in the order the frontend listed its platforms.
pub fn platform_results(mut result: ReturnedResult) -> Result<Vec<PlatformResult>, SolveError> {
    if result.refs.len() <= 1 {
        let config = config_at(&result, IMAGE_CONFIG_KEY)?;
        // A result without a ref is an empty filesystem (`FROM scratch` and metadata only),
        // as upstream's exporters take a nil ref: an image without layers, an empty directory.
        let Some(only) = std::mem::take(&mut result.refs).into_values().next() else {
            return Err(no_result());
        };
        let only = only.unwrap_or_default();
        let platform = config
            .as_ref()
            .map_or_else(Platform::native, config_platform);
        return Ok(vec![PlatformResult {
            platform,
            result: only,
            config,
            inline_cache: None,
        }]);
    }
    let listed = platforms_metadata(&result)?;
    listed
        .into_iter()
        .map(|entry| {
            let config = config_at(&result, &format!("{IMAGE_CONFIG_KEY}/{}", entry.id))?;
            let part = result.refs.remove(&entry.id).ok_or_else(|| {
                SolveError::InvalidDefinition(format!(
                    "the build produced no result for platform {}",
                    entry.id
                ))
            })?;
            let part = part.unwrap_or_default();
            let p = entry.platform;
            Ok(PlatformResult {
                platform: Platform::new(&p.os, &p.architecture, p.variant.as_deref()),
                result: part,
                config,
                inline_cache: None,
            })
        })
        .collect()
}

fn platforms_metadata(result: &ReturnedResult) -> Result<Vec<PlatformEntry>, SolveError> {
    let bytes = result.metadata.get(PLATFORMS_KEY).ok_or_else(|| {
        SolveError::InvalidDefinition(format!(
            "the build returned {} results without {PLATFORMS_KEY} saying which platform each is",
            result.refs.len()
        ))
    })?;
    let metadata: PlatformsMetadata = serde_json::from_slice(bytes).map_err(|e| {
        SolveError::InvalidDefinition(format!("the frontend's {PLATFORMS_KEY} is invalid: {e}"))
    })?;
    Ok(metadata.platforms)
}

fn config_at(result: &ReturnedResult, key: &str) -> Result<Option<serde_json::Value>, SolveError> {
    let Some(bytes) = result.metadata.get(key) else {
        return Ok(None);
    };
    serde_json::from_slice(bytes).map(Some).map_err(|e| {
        SolveError::InvalidDefinition(format!("the frontend's {key} is not an image config: {e}"))
    })
}

fn no_result() -> SolveError {
    SolveError::InvalidDefinition("the build produced no result to export".into())
}

/// The platform an image config names (the node's when it names none).
fn config_platform(config: &serde_json::Value) -> Platform {
    let field = |name: &str| {
        config
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match (field("os"), field("architecture")) {
        (Some(os), Some(arch)) => Platform::new(os, arch, field("variant")),
        _ => Platform::native(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::Ref;
    use std::collections::BTreeMap;

    fn multi(listed: &str) -> ReturnedResult {
        let config =
            |arch: &str| format!(r#"{{"os":"linux","architecture":"{arch}"}}"#).into_bytes();
        ReturnedResult {
            refs: BTreeMap::from([
                ("linux/amd64".to_string(), Some(Ref::default())),
                ("linux/arm64".to_string(), Some(Ref::default())),
            ]),
            metadata: BTreeMap::from([
                (PLATFORMS_KEY.to_string(), listed.as_bytes().to_vec()),
                (format!("{IMAGE_CONFIG_KEY}/linux/amd64"), config("amd64")),
                (format!("{IMAGE_CONFIG_KEY}/linux/arm64"), config("arm64")),
            ]),
        }
    }

    #[test]
    fn each_listed_platform_gets_its_ref_and_config() {
        let listed = r#"{"platforms":[{"id":"linux/arm64","platform":{"os":"linux","architecture":"arm64"}},{"id":"linux/amd64","platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let parts = platform_results(multi(listed)).unwrap();
        let names: Vec<String> = parts.iter().map(|p| p.platform.to_string()).collect();
        assert_eq!(names, ["linux/arm64", "linux/amd64"]);
        assert_eq!(parts[0].config.as_ref().unwrap()["architecture"], "arm64");
    }

    #[test]
    fn a_platform_without_its_ref_or_listing_is_an_error() {
        let listed = r#"{"platforms":[{"id":"linux/s390x","platform":{"os":"linux","architecture":"s390x"}}]}"#;
        let error = platform_results(multi(listed)).unwrap_err().to_string();
        assert!(error.contains("linux/s390x"), "{error}");
        let mut unlisted = multi("");
        unlisted.metadata.remove(PLATFORMS_KEY);
        let error = platform_results(unlisted).unwrap_err().to_string();
        assert!(error.contains(PLATFORMS_KEY), "{error}");
    }

    #[test]
    fn a_single_result_takes_its_platform_from_the_config() {
        let mut single = ReturnedResult::single(Some(Ref::default()));
        single.metadata.insert(
            IMAGE_CONFIG_KEY.into(),
            br#"{"os":"linux","architecture":"arm64"}"#.to_vec(),
        );
        let parts = platform_results(single).unwrap();
        assert_eq!(parts[0].platform.to_string(), "linux/arm64");
        // No ref: an empty filesystem; no result at all: an error.
        let empty = platform_results(ReturnedResult::single(None)).unwrap();
        assert!(empty[0].result.layers.is_empty());
        assert!(platform_results(ReturnedResult::default()).is_err());
    }
}

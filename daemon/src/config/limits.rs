//! nodekit's own `[limits]`: bounds on what hostile content may make a build write. Upstream
//! BuildKit has none (an `ADD <url>` streams any length into the cache, an `ADD` archive
//! extracts whatever it inflates to); a node service shares its disk with the kubelet, so
//! nodekitd stops such a step with an error naming the limit.
//!
//! ```toml
//! [limits]
//! maxDownloadBytes = "8GiB"   # one http(s) source (ADD <url>); 0: no limit
//! maxUnpackBytes = "8GiB"     # what one archive extraction (ADD archive) writes; 0: no limit
//! ```

use cachestore::DiskSpace;
use serde::Deserialize;

use super::ConfigError;

/// The default of both limits: larger than any sane single download or archive in an image.
pub const DEFAULT_LIMIT_BYTES: u64 = 8 << 30;

/// The effective limits; `None`: unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentLimits {
    pub download_bytes: Option<u64>,
    pub unpack_bytes: Option<u64>,
}

impl Default for ContentLimits {
    fn default() -> Self {
        ContentLimits {
            download_bytes: Some(DEFAULT_LIMIT_BYTES),
            unpack_bytes: Some(DEFAULT_LIMIT_BYTES),
        }
    }
}

/// The `[limits]` table as written: bytes or a size with a unit (`512MB`, `8GiB`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LimitsFile {
    #[serde(rename = "maxDownloadBytes")]
    pub max_download_bytes: Option<DiskSpace>,
    #[serde(rename = "maxUnpackBytes")]
    pub max_unpack_bytes: Option<DiskSpace>,
}

impl LimitsFile {
    pub fn resolve(&self) -> Result<ContentLimits, ConfigError> {
        let defaults = ContentLimits::default();
        Ok(ContentLimits {
            download_bytes: limit(
                "limits.maxDownloadBytes",
                self.max_download_bytes,
                defaults.download_bytes,
            )?,
            unpack_bytes: limit(
                "limits.maxUnpackBytes",
                self.max_unpack_bytes,
                defaults.unpack_bytes,
            )?,
        })
    }
}

fn limit(
    key: &'static str,
    value: Option<DiskSpace>,
    default: Option<u64>,
) -> Result<Option<u64>, ConfigError> {
    match value {
        None => Ok(default),
        Some(DiskSpace::Bytes(0)) => Ok(None),
        Some(DiskSpace::Bytes(n)) => Ok(Some(n)),
        Some(other) => Err(ConfigError::Value {
            key,
            value: format!("{other:?}"),
            expected: "bytes or a size with a unit (512MB, 8GiB), not a percentage",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(text: &str) -> Result<ContentLimits, ConfigError> {
        #[derive(Deserialize)]
        struct File {
            limits: LimitsFile,
        }
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Value {
            key: "test",
            value: e.to_string(),
            expected: "toml",
        })?;
        file.limits.resolve()
    }

    #[test]
    fn limits_default_to_eight_gib_and_zero_lifts_them() {
        assert_eq!(
            LimitsFile::default().resolve().ok(),
            Some(ContentLimits::default())
        );
        let set = resolved("[limits]\nmaxDownloadBytes = \"64MiB\"\nmaxUnpackBytes = 0\n");
        let set = set.ok();
        assert_eq!(set.map(|l| l.download_bytes), Some(Some(64 << 20)));
        assert_eq!(set.map(|l| l.unpack_bytes), Some(None));
        assert!(resolved("[limits]\nmaxUnpackBytes = \"10%\"\n").is_err());
    }
}

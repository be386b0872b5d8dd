//! nodekit's own `[limits]`: bounds on what hostile content may make a build write. Upstream
//! BuildKit has none (an `ADD <url>` streams any length into the cache, an `ADD` archive
//! extracts whatever it inflates to); a node service shares its disk with the kubelet, so
//! nodekitd stops such a step with an error naming the limit.
//!
//! ```toml
//! [limits]
//! maxDownloadBytes = "8GiB"   # one http(s) source (ADD <url>); 0: no limit
//! maxUnpackBytes = "8GiB"     # what one archive extraction (ADD archive) writes; 0: no limit
//! downloadIdleTimeout = "5m"  # an http(s) source that sends nothing for this long; 0: none
//! ```

use std::time::Duration;

use cachestore::DiskSpace;
use serde::Deserialize;

use super::ConfigError;

/// The default of both limits: larger than any sane single download or archive in an image.
pub const DEFAULT_LIMIT_BYTES: u64 = 8 << 30;

/// How long a download may wait for a byte (its connection, its headers, its body) by default.
/// Go's HTTP client, which buildkitd uses, has no such bound: a server that accepts and never
/// answers holds the build until its client gives up.
pub const DEFAULT_DOWNLOAD_IDLE: Duration = Duration::from_secs(300);

/// The effective limits; `None`: unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentLimits {
    pub download_bytes: Option<u64>,
    pub unpack_bytes: Option<u64>,
    pub download_idle: Option<Duration>,
}

impl Default for ContentLimits {
    fn default() -> Self {
        ContentLimits {
            download_bytes: Some(DEFAULT_LIMIT_BYTES),
            unpack_bytes: Some(DEFAULT_LIMIT_BYTES),
            download_idle: Some(DEFAULT_DOWNLOAD_IDLE),
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
    /// A Go duration (`"90s"`, `"5m"`) or seconds; `0`: no timeout.
    #[serde(rename = "downloadIdleTimeout", deserialize_with = "optional_duration")]
    pub download_idle_timeout: Option<Duration>,
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    cachestore::gc::deserialize_duration(deserializer).map(Some)
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
            download_idle: match self.download_idle_timeout {
                None => defaults.download_idle,
                Some(Duration::ZERO) => None,
                set => set,
            },
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

    #[test]
    fn the_download_idle_timeout_defaults_to_five_minutes_and_zero_lifts_it() {
        let idle = |text: &str| resolved(text).ok().map(|l| l.download_idle);
        assert_eq!(idle("[limits]\n"), Some(Some(Duration::from_secs(300))));
        let set = idle("[limits]\ndownloadIdleTimeout = \"1m30s\"\n");
        assert_eq!(set, Some(Some(Duration::from_secs(90))));
        assert_eq!(
            idle("[limits]\ndownloadIdleTimeout = 7\n"),
            Some(Some(Duration::from_secs(7)))
        );
        assert_eq!(idle("[limits]\ndownloadIdleTimeout = 0\n"), Some(None));
        assert!(resolved("[limits]\ndownloadIdleTimeout = \"soon\"\n").is_err());
    }
}

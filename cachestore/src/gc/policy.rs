//! buildkitd's GC policies (`[[worker.containerd.gcpolicy]]`) and prune options, and how their
//! space limits resolve to bytes.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// One `[[worker.containerd.gcpolicy]]` entry of buildkitd.toml, as buildkitd reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GcPolicy {
    /// Consider every record, including `internal` and `frontend` ones and shared ones.
    pub all: bool,
    /// Only records matching one of these filters ([`crate::filter`]).
    pub filters: Vec<String>,
    /// Only records unused for at least this long: seconds, or a Go duration (`"48h"`).
    #[serde(deserialize_with = "deserialize_duration")]
    pub keep_duration: Duration,
    /// Deprecated alias of `reservedSpace`, used when that is unset.
    pub keep_bytes: DiskSpace,
    /// Never take the cache below this much.
    pub reserved_space: DiskSpace,
    /// Remove records while the cache is above this much.
    pub max_used_space: DiskSpace,
    /// Remove records while the disk has less free space than this.
    pub min_free_space: DiskSpace,
}

/// A disk-space setting: bytes (`512000000`, `"512MB"`: binary units, as Docker's
/// `RAMInBytes`) or a percentage of the disk (`"10%"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskSpace {
    Bytes(u64),
    Percent(u64),
}

impl Default for DiskSpace {
    /// Unset: zero bytes.
    fn default() -> Self {
        DiskSpace::Bytes(0)
    }
}

/// The disk the cache lives on (statfs of the daemon root).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Total bytes.
    pub total: u64,
    /// Free bytes.
    pub free: u64,
}

/// A prune request or a resolved GC policy: what the plan works with. Space limits are bytes;
/// 0 means unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneRule {
    pub all: bool,
    pub filters: Vec<String>,
    pub keep_duration: Duration,
    pub reserved_space: u64,
    pub max_used_space: u64,
    pub min_free_space: u64,
}

impl GcPolicy {
    /// The rule this policy is on `disk` (percentages resolved, `keepBytes` folded in).
    pub fn to_rule(&self, disk: DiskStats) -> PruneRule {
        let reserved = match self.reserved_space {
            DiskSpace::Bytes(0) => self.keep_bytes,
            other => other,
        };
        PruneRule {
            all: self.all,
            filters: self.filters.clone(),
            keep_duration: self.keep_duration,
            reserved_space: reserved.as_bytes(disk),
            max_used_space: self.max_used_space.as_bytes(disk),
            min_free_space: self.min_free_space.as_bytes(disk),
        }
    }

    /// buildkitd's default policies when none are configured (`DefaultGCPolicy` with its
    /// detected caps: reserve 10% up to 10 GB, max 80% up to 100 GB, 20% free).
    pub fn defaults(disk: DiskStats) -> Vec<GcPolicy> {
        let capped = |pct: u64, cap: u64| {
            let p = DiskSpace::Percent(pct);
            if p.as_bytes(disk) > cap {
                DiskSpace::Bytes(cap)
            } else {
                p
            }
        };
        let limits = GcPolicy {
            reserved_space: capped(10, 10_000_000_000),
            max_used_space: capped(80, 100_000_000_000),
            min_free_space: DiskSpace::Percent(20),
            ..Default::default()
        };
        vec![
            GcPolicy {
                filters: ["source.local", "exec.cachemount", "source.git.checkout"]
                    .iter()
                    .map(|t| format!("type=={t}"))
                    .collect(),
                keep_duration: Duration::from_secs(48 * 3600),
                max_used_space: DiskSpace::Bytes(512_000_000),
                ..Default::default()
            },
            GcPolicy {
                keep_duration: Duration::from_secs(60 * 24 * 3600),
                ..limits.clone()
            },
            limits.clone(),
            GcPolicy {
                all: true,
                ..limits
            },
        ]
    }
}

impl DiskSpace {
    /// Parses `"512MB"`, `"1.5g"`, `"10%"` or `"1000"`.
    pub fn parse(s: &str) -> Result<DiskSpace> {
        let err = |reason: &str| Error::Setting {
            field: "disk space",
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let t = s.trim();
        if let Some(pct) = t.strip_suffix('%') {
            return pct
                .trim()
                .parse()
                .map(DiskSpace::Percent)
                .map_err(|_| err("want a whole percentage"));
        }
        parse_size(t).map(DiskSpace::Bytes).ok_or_else(|| {
            err("want bytes, a size with a unit (512MB, 10GiB) or a percentage (10%)")
        })
    }

    /// The bytes this is on `disk`, as buildkitd computes them: a percentage of the total,
    /// rounded up to whole GB (and 2 GB when the disk size is unknown).
    pub fn as_bytes(self, disk: DiskStats) -> u64 {
        match self {
            DiskSpace::Bytes(b) => b,
            DiskSpace::Percent(0) => 0,
            DiskSpace::Percent(_) if disk.total == 0 => 2_000_000_000,
            DiskSpace::Percent(p) => {
                let share = (u128::from(disk.total) * u128::from(p) / 100) as u64;
                (share / (1 << 30) + 1) * 1_000_000_000
            }
        }
    }
}

impl<'de> Deserialize<'de> for DiskSpace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrString::deserialize(d)? {
            NumberOrString::Number(n) => Ok(DiskSpace::Bytes(n)),
            NumberOrString::String(s) if s.is_empty() => Ok(DiskSpace::default()),
            NumberOrString::String(s) => DiskSpace::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    String(String),
}

/// A duration as buildkitd's config reads it: whole seconds (a number) or [`parse_duration`]'s
/// text.
pub fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Number(secs) => Ok(Duration::from_secs(secs)),
        NumberOrString::String(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// Docker's `RAMInBytes`: a number with an optional binary unit (`k`, `kb`, `kib`, ... `p`).
fn parse_size(s: &str) -> Option<u64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok().filter(|n: &f64| *n >= 0.0)?;
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" if unit.is_empty() || unit == "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    Some((num * (1u64 << shift) as f64) as u64)
}

/// `keepDuration` as buildkitd reads it: a Go duration (`"48h"`, `"1h30m"`, `"1.5h"`) or whole
/// seconds (`"172800"`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let err = || Error::Setting {
        field: "duration",
        value: s.to_string(),
        reason: "want seconds or a duration such as 48h, 1h30m, 90s".into(),
    };
    if t.is_empty() {
        return Ok(Duration::ZERO);
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    go_duration(t).ok_or_else(err)
}

/// Go's `time.ParseDuration` for non-negative values.
fn go_duration(mut s: &str) -> Option<Duration> {
    let mut total = 0f64;
    if s == "0" {
        return Some(Duration::ZERO);
    }
    while !s.is_empty() {
        let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = s[..num_end].parse().ok()?;
        let rest = &s[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * scale;
        s = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Worker {
        gcpolicy: Vec<GcPolicy>,
    }

    #[test]
    fn reads_buildkitd_toml() {
        let text = r#"
            [[gcpolicy]]
            keepDuration = "48h"
            filters = ["type==source.local", "type==exec.cachemount"]
            maxUsedSpace = "512MB"
            [[gcpolicy]]
            keepDuration = 172800
            reservedSpace = "10%"
            minFreeSpace = 20000000000
            [[gcpolicy]]
            all = true
            keepBytes = "1GB"
        "#;
        let w: Worker = toml::from_str(text).unwrap();
        let p = &w.gcpolicy;
        assert_eq!(p[0].keep_duration, Duration::from_secs(48 * 3600));
        assert_eq!(p[0].max_used_space, DiskSpace::Bytes(512 << 20));
        assert_eq!(p[0].filters.len(), 2);
        assert_eq!(p[1].keep_duration, Duration::from_secs(172800));
        assert_eq!(p[1].reserved_space, DiskSpace::Percent(10));
        assert_eq!(p[1].min_free_space, DiskSpace::Bytes(20_000_000_000));
        assert!(p[2].all);
        let rule = p[2].to_rule(DiskStats::default());
        assert_eq!(
            rule.reserved_space,
            1 << 30,
            "keepBytes stands in for reservedSpace"
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let bad = "[[gcpolicy]]\nmaxUsedSpace = \"lots\"\n";
        let e = toml::from_str::<Worker>(bad).err().unwrap().to_string();
        assert!(e.contains("lots"), "{e}");
        let bad = "[[gcpolicy]]\nkeepDuration = \"2 weeks\"\n";
        assert!(toml::from_str::<Worker>(bad).is_err());
    }

    #[test]
    fn sizes_are_binary_like_docker() {
        let b = |s: &str| DiskSpace::parse(s).unwrap();
        assert_eq!(b("512"), DiskSpace::Bytes(512));
        assert_eq!(b("512MB"), DiskSpace::Bytes(512 << 20));
        assert_eq!(b("512 mb"), DiskSpace::Bytes(512 << 20));
        assert_eq!(b("10GiB"), DiskSpace::Bytes(10 << 30));
        assert_eq!(b("1.5k"), DiskSpace::Bytes(1536));
        assert_eq!(b("10%"), DiskSpace::Percent(10));
        assert!(DiskSpace::parse("10XB").is_err());
        assert!(DiskSpace::parse("-1").is_err());
        assert!(DiskSpace::parse("%").is_err());
    }

    #[test]
    fn percentages_round_up_to_gb_like_buildkitd() {
        let disk = DiskStats {
            total: 100 << 30,
            free: 0,
        };
        assert_eq!(DiskSpace::Percent(10).as_bytes(disk), 11_000_000_000);
        assert_eq!(
            DiskSpace::Percent(10).as_bytes(DiskStats::default()),
            2_000_000_000
        );
        assert_eq!(DiskSpace::Percent(0).as_bytes(disk), 0);
    }

    #[test]
    fn go_durations() {
        let d = |s: &str| parse_duration(s).unwrap();
        assert_eq!(d("48h"), Duration::from_secs(172800));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("90"), Duration::from_secs(90));
        assert_eq!(d(""), Duration::ZERO);
        for bad in ["h", "5d", "1h-3m", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_mirror_buildkitd() {
        let disk = DiskStats {
            total: 1000 << 30,
            free: 500 << 30,
        };
        let p = GcPolicy::defaults(disk);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].max_used_space, DiskSpace::Bytes(512_000_000));
        assert_eq!(p[1].keep_duration, Duration::from_secs(60 * 86400));
        assert_eq!(p[2].reserved_space, DiskSpace::Bytes(10_000_000_000));
        assert_eq!(p[2].max_used_space, DiskSpace::Bytes(100_000_000_000));
        assert!(p[3].all);
    }
}

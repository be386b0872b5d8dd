use std::fmt;

/// An OCI platform as BuildKit and containerd spell it: `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], for example linux/arm64")]
pub struct PlatformError(pub String);

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let (architecture, variant) = normalize_arch(architecture, variant.unwrap_or_default());
        Platform {
            os: normalize_os(os),
            architecture,
            variant: Some(variant).filter(|v| !v.is_empty()),
        }
    }

    /// The platform this binary runs on.
    pub fn native() -> Self {
        Platform::new(host_os(), host_arch(), None)
    }

    pub fn parse(text: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError(text.to_string()));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(PlatformError(text.to_string())),
        }
    }

    /// Whether an image built for `offered` serves a request for `self`, with containerd's
    /// normalisation (arm64 means arm64/v8, arm means arm/v7).
    pub fn matches(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && self.variant == offered.variant
    }
}

/// containerd's `platforms.Normalize` of an OS: lower case, `macos` is `darwin`, none is the
/// host's.
pub fn normalize_os(os: &str) -> String {
    match os.to_ascii_lowercase().as_str() {
        "" => host_os().to_string(),
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    }
}

/// containerd's `platforms.Normalize` of an architecture and its variant (`""` for none): the
/// one table of canonical names in nodekit. `i686` (`uname -m` on 32-bit x86) is the one
/// spelling added to containerd's table.
pub fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    let (arch, variant): (&str, &str) = match (arch.as_str(), variant.as_str()) {
        ("i386" | "i686", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("aarch64" | "arm64", "8" | "v8" | "v8.0") => ("arm64", ""),
        ("aarch64" | "arm64", "9" | "9.0" | "v9.0") => ("arm64", "v9"),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", v @ ("5" | "6" | "8")) => return ("arm".to_string(), format!("v{v}")),
        (a, v) => (a, v),
    };
    (arch.to_string(), variant.to_string())
}

/// The OS this binary runs on, as OCI names it (Go's `GOOS`).
pub fn host_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// The architecture this binary runs on, as OCI names it (Go's `GOARCH`).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "loongarch64" => "loong64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let p = Platform::parse("linux/aarch64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("Linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
    }

    #[test]
    fn the_one_table_normalizes_like_containerd() {
        let cases = [
            ("armhf", "", "arm", "v7"),
            ("armel", "", "arm", "v6"),
            ("arm", "", "arm", "v7"),
            ("arm", "7", "arm", "v7"),
            ("arm", "6", "arm", "v6"),
            ("arm", "v5", "arm", "v5"),
            ("i386", "", "386", ""),
            ("i686", "", "386", ""),
            ("aarch64", "", "arm64", ""),
            ("arm64", "v8", "arm64", ""),
            ("arm64", "8", "arm64", ""),
            ("arm64", "9", "arm64", "v9"),
            ("arm64", "v9", "arm64", "v9"),
            ("x86_64", "", "amd64", ""),
            ("x86-64", "", "amd64", ""),
            ("amd64", "v1", "amd64", ""),
            ("AMD64", "V3", "amd64", "v3"),
            ("riscv64", "", "riscv64", ""),
        ];
        for (arch, variant, want_arch, want_variant) in cases {
            let normalized = normalize_arch(arch, variant);
            assert_eq!(
                normalized,
                (want_arch.to_string(), want_variant.to_string()),
                "{arch}/{variant}"
            );
        }
        assert_eq!(normalize_os("MacOS"), "darwin");
        assert_eq!(normalize_os(""), host_os());
    }

    #[test]
    fn rejects_malformed_platforms() {
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn matching_ignores_default_variants() {
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(!want.matches(&Platform::new("linux", "amd64", None)));
        assert!(!Platform::parse("linux/arm/v6")
            .unwrap()
            .matches(&Platform::new("linux", "arm", Some("v7"))));
    }
}

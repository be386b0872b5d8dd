//! Platforms as BuildKit's client handles them: the host default (`platforms.DefaultSpec`) and
//! containerd's `platforms.Normalize`.

use nodekit_proto::pb;

/// The platform of the machine this runs on, normalised (`linux`/`amd64`, `linux`/`arm64`, …):
/// the default platform of ops that have none of their own.
pub fn host_platform() -> pb::Platform {
    normalize_platform(&pb::Platform {
        os: oci_os(std::env::consts::OS).to_string(),
        architecture: oci_arch(std::env::consts::ARCH).to_string(),
        ..pb::Platform::default()
    })
}

/// containerd's `platforms.Normalize`: lower-case names, the canonical architecture name and
/// variant (`x86_64` -> `amd64`, `aarch64`/`v8` -> `arm64`, `arm` -> `arm`/`v7`), sorted and
/// de-duplicated OS features. An empty OS becomes the host's.
pub fn normalize_platform(platform: &pb::Platform) -> pb::Platform {
    let (architecture, variant) = normalize_arch(&platform.architecture, &platform.variant);
    let mut os_features = platform.os_features.clone();
    os_features.sort();
    os_features.dedup();
    pb::Platform {
        os: normalize_os(&platform.os),
        architecture,
        variant,
        os_version: platform.os_version.clone(),
        os_features,
    }
}

fn normalize_os(os: &str) -> String {
    if os.is_empty() {
        return oci_os(std::env::consts::OS).to_string();
    }
    match os.to_lowercase().as_str() {
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_lowercase(), variant.to_lowercase());
    let (arch, variant): (&str, &str) = match (arch.as_str(), variant.as_str()) {
        ("i386", _) => ("386", ""),
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

fn oci_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

fn oci_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_platform;
    use nodekit_proto::pb;

    fn plat(os: &str, arch: &str, variant: &str) -> pb::Platform {
        pb::Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
            ..Default::default()
        }
    }

    #[test]
    fn normalizes_like_containerd() {
        let cases = [
            (plat("Linux", "x86_64", ""), plat("linux", "amd64", "")),
            (plat("linux", "aarch64", "v8"), plat("linux", "arm64", "")),
            (plat("linux", "arm64", "9"), plat("linux", "arm64", "v9")),
            (plat("linux", "arm", ""), plat("linux", "arm", "v7")),
            (plat("linux", "arm", "6"), plat("linux", "arm", "v6")),
            (plat("linux", "armel", ""), plat("linux", "arm", "v6")),
            (plat("linux", "i386", "x"), plat("linux", "386", "")),
            (plat("macos", "riscv64", ""), plat("darwin", "riscv64", "")),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_platform(&input), want, "{input:?}");
        }
    }
}

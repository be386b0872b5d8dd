//! Platforms as BuildKit's client handles them: the host default (`platforms.DefaultSpec`) and
//! containerd's `platforms.Normalize`.

use nodekit_oci::platform::{host_arch, host_os, normalize_arch, normalize_os};
use nodekit_proto::pb;

/// The platform of the machine this runs on, normalised (`linux`/`amd64`, `linux`/`arm64`, …):
/// the default platform of ops that have none of their own.
pub fn host_platform() -> pb::Platform {
    normalize_platform(&pb::Platform {
        os: host_os().to_string(),
        architecture: host_arch().to_string(),
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

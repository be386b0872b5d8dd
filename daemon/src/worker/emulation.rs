//! Which foreign platforms this node can run: those with an enabled binfmt_misc handler (a qemu
//! user-mode interpreter registered by binfmt-support or the kernel's own configuration).

use std::path::Path;

use crate::oci::Platform;

/// The binfmt_misc mount of the host.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// The platforms emulated through enabled handlers under `binfmt_dir` (none if it is not
/// mounted), without the native one.
pub fn emulated_platforms(binfmt_dir: &Path) -> Vec<Platform> {
    let native = Platform::native();
    let Ok(entries) = std::fs::read_dir(binfmt_dir) else {
        return Vec::new();
    };
    let mut platforms: Vec<Platform> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let arch = name.strip_prefix("qemu-")?;
            let status = std::fs::read_to_string(entry.path()).ok()?;
            status
                .lines()
                .next()
                .is_some_and(|l| l == "enabled")
                .then(|| platform_of(arch))?
        })
        .filter(|p| !p.matches(&native))
        .collect();
    platforms.sort_by_key(|p| p.to_string());
    platforms.dedup_by_key(|p| p.to_string());
    platforms
}

/// The OCI platform of a qemu architecture name.
fn platform_of(qemu_arch: &str) -> Option<Platform> {
    let (arch, variant) = match qemu_arch {
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "x86_64" => ("amd64", None),
        "i386" => ("386", None),
        "riscv64" => ("riscv64", None),
        "ppc64le" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "mips64el" => ("mips64le", None),
        "loongarch64" => ("loong64", None),
        _ => return None,
    };
    Some(Platform::new("linux", arch, variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_qemu_handlers_become_platforms() {
        let dir = std::env::temp_dir().join(format!("nodekit-binfmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let handler = |name: &str, state: &str| {
            std::fs::write(
                dir.join(name),
                format!("{state}\ninterpreter /usr/bin/{name}\n"),
            )
            .unwrap()
        };
        handler("qemu-aarch64", "enabled");
        handler("qemu-riscv64", "disabled");
        handler("qemu-arm", "enabled");
        handler("python3.11", "enabled");
        std::fs::write(dir.join("status"), "enabled\n").unwrap();
        let names: Vec<String> = emulated_platforms(&dir)
            .iter()
            .map(|p| p.to_string())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        let native = Platform::native().to_string();
        let expected: Vec<String> = ["linux/arm/v7", "linux/arm64"]
            .into_iter()
            .filter(|p| *p != native)
            .map(String::from)
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn no_binfmt_misc_means_no_emulation() {
        assert!(emulated_platforms(Path::new("/nonexistent/binfmt_misc")).is_empty());
    }
}

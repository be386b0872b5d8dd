//! The part of containerd's `platforms.Parse` the FROM checks need: is a
//! specifier valid, and what are its OS and architecture (normalized by the one table,
//! `nodekit_oci::platform`).

use nodekit_oci::platform::{host_arch, host_os, normalize_os};

/// OS and architecture of a parsed platform specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OsArch {
    pub os: String,
    pub arch: String,
}

/// containerd `platforms.Parse` (OS and architecture only). A single
/// component that is a known OS gets the host architecture; a known
/// architecture gets the host OS (as upstream, which uses the frontend's
/// `runtime.GOOS`/`GOARCH`; here the build target of this crate).
pub(crate) fn parse_platform(specifier: &str) -> Option<OsArch> {
    if specifier.contains('*') {
        return None;
    }
    let parts: Vec<&str> = specifier.splitn(4, '/').collect();
    let (first, rest) = parts.split_first()?;
    let os = normalize_os(os_component(first)?);
    if !rest.iter().all(|p| is_specifier_component(p)) {
        return None;
    }
    match rest {
        [] => single_component(first, os),
        [arch] | [arch, _] => Some(OsArch {
            os,
            arch: normalize_arch(arch),
        }),
        _ => None,
    }
}

fn single_component(component: &str, os: String) -> Option<OsArch> {
    if KNOWN_OS.contains(&os.as_str()) {
        return Some(OsArch {
            os,
            arch: host_arch().to_string(),
        });
    }
    let arch = normalize_arch(component);
    KNOWN_ARCH.contains(&arch.as_str()).then(|| OsArch {
        os: host_os().to_string(),
        arch,
    })
}

/// `^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?$`: the OS name without
/// the optional `(version)`.
fn os_component(part: &str) -> Option<&str> {
    let (name, version) = match part.split_once('(') {
        Some((name, rest)) => (name, Some(rest.strip_suffix(')')?)),
        None => (part, None),
    };
    let name_ok = !name.is_empty() && name.chars().all(|c| is_word_char(c) || c == '-');
    let version_ok = version.is_none_or(|v| v.chars().all(is_specifier_char));
    (name_ok && version_ok).then_some(name)
}

/// `^[A-Za-z0-9_.-]+$`.
fn is_specifier_component(part: &str) -> bool {
    !part.is_empty() && part.chars().all(is_specifier_char)
}

fn is_specifier_char(c: char) -> bool {
    is_word_char(c) || c == '.' || c == '-'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The architecture alone: a specifier's variant is not the FROM checks' concern.
fn normalize_arch(arch: &str) -> String {
    nodekit_oci::platform::normalize_arch(arch, "").0
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn os_arch(s: &str) -> Option<(String, String)> {
        parse_platform(s).map(|p| (p.os, p.arch))
    }

    #[test]
    fn parses_like_containerd() {
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(os_arch("linux/amd64"), pair("linux", "amd64"));
        assert_eq!(os_arch("Linux/x86_64"), pair("linux", "amd64"));
        assert_eq!(os_arch("linux/arm64/v8"), pair("linux", "arm64"));
        assert_eq!(
            os_arch("windows(10.0.17763)/amd64"),
            pair("windows", "amd64")
        );
        assert_eq!(os_arch("macos/arm64"), pair("darwin", "arm64"));
        assert_eq!(os_arch("linux").map(|p| p.0), Some("linux".to_string()));
        assert_eq!(os_arch("arm64").map(|p| p.1), Some("arm64".to_string()));
        for bad in [
            "",
            "linux/",
            "linux/*",
            "a/b/c/d",
            "nonsense",
            "li nux/amd64",
            "linux(/amd64",
        ] {
            assert_eq!(os_arch(bad), None, "{bad}");
        }
    }
}

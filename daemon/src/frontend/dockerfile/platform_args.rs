//! The automatic platform ARGs a Dockerfile may declare without a value (`ARG TARGETARCH`):
//! BUILD* describe the node running the build, TARGET* the platform being built.

use crate::oci::Platform;

/// The values of every automatic platform ARG for a build of `target` on `build`.
pub fn platform_args(build: &Platform, target: &Platform) -> Vec<(String, String)> {
    let mut args = Vec::new();
    for (prefix, platform) in [("BUILD", build), ("TARGET", target)] {
        args.push((format!("{prefix}PLATFORM"), platform.to_string()));
        args.push((format!("{prefix}OS"), platform.os.clone()));
        args.push((format!("{prefix}ARCH"), platform.architecture.clone()));
        args.push((
            format!("{prefix}VARIANT"),
            platform.variant.clone().unwrap_or_default(),
        ));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_target_args() {
        let build = Platform::new("linux", "amd64", None);
        let target = Platform::new("linux", "arm", Some("v7"));
        let args: std::collections::BTreeMap<_, _> =
            platform_args(&build, &target).into_iter().collect();
        assert_eq!(args["BUILDPLATFORM"], "linux/amd64");
        assert_eq!(args["BUILDVARIANT"], "");
        assert_eq!(args["TARGETPLATFORM"], "linux/arm/v7");
        assert_eq!(args["TARGETARCH"], "arm");
        assert_eq!(args["TARGETVARIANT"], "v7");
    }
}

//! Docker image reference normalisation, as `github.com/distribution/reference`'s
//! `ParseNormalizedNamed` + `TagNameOnly` do it for BuildKit's `llb.Image`:
//! `busybox` -> `docker.io/library/busybox:latest` (the one parser, `nodekit_oci::Reference`).

/// Normalises an image reference to its full form (domain, repository path, tag or digest;
/// `:latest` when it has neither), or says why it is not a valid reference.
pub fn normalize_image_ref(reference: &str) -> Result<String, String> {
    nodekit_oci::Reference::parse_with_default_tag(reference)
        .map(|parsed| parsed.to_string())
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::normalize_image_ref;

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("moby/buildkit:v0.13", "docker.io/moby/buildkit:v0.13"),
            ("ghcr.io/a/b/c", "ghcr.io/a/b/c:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost/app:dev", "localhost/app:dev"),
            ("my_reg/app__x", "docker.io/my_reg/app__x:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_image_ref(input).as_deref(), Ok(want), "{input}");
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = format!("busybox@{digest}");
        assert_eq!(
            normalize_image_ref(&pinned),
            Ok(format!("docker.io/library/busybox@{digest}"))
        );
        let both = format!("busybox:1@{digest}");
        assert_eq!(
            normalize_image_ref(&both),
            Ok(format!("docker.io/library/busybox:1@{digest}"))
        );
    }

    #[test]
    fn rejects_invalid_references() {
        let bad = [
            "BusyBox",
            "",
            "busybox:",
            "busybox:-x",
            "bad-/name",
            "busybox@sha256:abc",
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "example.com:port/app",
        ];
        for input in bad {
            assert!(
                normalize_image_ref(input).is_err(),
                "{input:?} should be rejected"
            );
        }
        assert!(normalize_image_ref(&"a".repeat(64)).is_err());
    }
}

//! Media types nodekit reads and writes (OCI and Docker schema 2).

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// Everything a registry may answer for a manifest request, in order of preference.
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// A layer media type in OCI (`oci`) or Docker spelling, as BuildKit converts every layer of a
/// manifest it writes; a type without the other spelling (non-distributable layers) is kept.
pub fn layer_media_type(media_type: &str, oci: bool) -> &str {
    match (media_type, oci) {
        (OCI_LAYER | DOCKER_LAYER, true) => OCI_LAYER,
        (OCI_LAYER_GZIP | DOCKER_LAYER_GZIP, true) => OCI_LAYER_GZIP,
        (OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD, true) => OCI_LAYER_ZSTD,
        (OCI_LAYER | DOCKER_LAYER, false) => DOCKER_LAYER,
        (OCI_LAYER_GZIP | DOCKER_LAYER_GZIP, false) => DOCKER_LAYER_GZIP,
        (OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD, false) => DOCKER_LAYER_ZSTD,
        (other, _) => other,
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types_convert_both_ways_and_leave_others_alone() {
        assert_eq!(layer_media_type(DOCKER_LAYER_GZIP, true), OCI_LAYER_GZIP);
        assert_eq!(layer_media_type(OCI_LAYER_ZSTD, false), DOCKER_LAYER_ZSTD);
        assert_eq!(layer_media_type(OCI_LAYER, false), DOCKER_LAYER);
        assert_eq!(layer_media_type(OCI_LAYER, true), OCI_LAYER);
        let foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
        assert_eq!(layer_media_type(foreign, true), foreign);
    }
}

use std::collections::HashMap;

use cachestore::{CacheKey, Record, RecordKind};

use super::*;

fn record(seed: u8, parents: Vec<CacheKey>) -> Record {
    Record {
        key: CacheKey::from_bytes([seed; 32]),
        output_index: 0,
        snapshot: format!("sha256:{seed}"),
        lease: String::new(),
        layer: None,
        size: 0,
        created_ms: 1_700_000_000_000,
        last_used_ms: 0,
        hit_count: 0,
        platform: "linux/amd64".into(),
        kind: RecordKind::Regular,
        description: format!("step {seed}"),
        parents,
        payload: vec![2, seed],
    }
}

fn layer(n: u8) -> Descriptor {
    Descriptor {
        media_type: oci::OCI_LAYER_GZIP.into(),
        digest: format!("sha256:{}", hex::encode([n; 32])),
        size: 100 + n as i64,
        annotations: HashMap::from([(
            super::super::collect::UNCOMPRESSED.to_string(),
            format!("sha256:{}", hex::encode([n + 100; 32])),
        )]),
    }
}

/// Two steps, the second on the first: layers 1 and 1+2.
fn two_steps() -> Vec<RemoteRecord> {
    let first = record(1, vec![]);
    let second = record(2, vec![first.key]);
    vec![
        RemoteRecord {
            record: first,
            chain: vec![layer(1)],
        },
        RemoteRecord {
            record: second,
            chain: vec![layer(1), layer(2)],
        },
    ]
}

const MANIFEST: ImageFormat = ImageFormat {
    image_manifest: true,
    oci_mediatypes: true,
};

#[test]
fn an_image_manifest_names_the_config_and_each_layer_once() {
    let image = CacheImage::build(&two_steps(), MANIFEST).unwrap();
    assert_eq!(image.layers, vec![layer(1), layer(2)]);
    let top: Value = serde_json::from_slice(&image.manifest).unwrap();
    assert_eq!(top["mediaType"], oci::OCI_MANIFEST);
    assert_eq!(top["config"]["mediaType"], CACHE_CONFIG_MEDIA_TYPE);
    assert_eq!(top["config"]["digest"], image.config_descriptor.digest);
    assert_eq!(
        top["layers"][0]["annotations"]["containerd.io/uncompressed"],
        layer(1).annotations["containerd.io/uncompressed"]
    );
    assert_eq!(image.descriptor.media_type, oci::OCI_MANIFEST);
    assert_eq!(image.descriptor.digest, oci::sha256_digest(&image.manifest));
    let answered: Value = serde_json::from_str(&image.response_descriptor()).unwrap();
    assert_eq!(answered["digest"], image.descriptor.digest);
    assert_eq!(answered["size"], image.manifest.len());
}

#[test]
fn the_same_records_give_the_same_bytes() {
    let mut reversed = two_steps();
    reversed.reverse();
    let one = CacheImage::build(&two_steps(), MANIFEST).unwrap();
    let other = CacheImage::build(&reversed, MANIFEST).unwrap();
    assert_eq!(one.manifest, other.manifest);
    assert_eq!(one.config, other.config);
}

#[test]
fn a_built_cache_parses_back_in_both_formats() {
    for format in [
        MANIFEST,
        ImageFormat {
            image_manifest: false,
            oci_mediatypes: true,
        },
        ImageFormat {
            image_manifest: false,
            oci_mediatypes: false,
        },
    ] {
        let image = CacheImage::build(&two_steps(), format).unwrap();
        let parts = parse_top(&image.manifest).unwrap().unwrap();
        assert_eq!(parts.config, image.config_descriptor, "{format:?}");
        assert_eq!(parts.layers.len(), 2);
        assert_eq!(parts.layers[&layer(2).digest], layer(2));
        let (records, foreign) = remote::parse(&image.config).unwrap();
        assert_eq!((records.len(), foreign), (2, 0));
    }
}

#[test]
fn an_image_without_a_cache_config_is_no_cache() {
    let image = json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": {"mediaType": oci::OCI_CONFIG, "digest": "sha256:00", "size": 2},
        "layers": [],
    });
    assert_eq!(parse_top(image.to_string().as_bytes()).unwrap(), None);
    let index = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": oci::OCI_MANIFEST, "digest": "sha256:00", "size": 2}
    ]});
    assert_eq!(parse_top(index.to_string().as_bytes()).unwrap(), None);
}

#[test]
fn malformed_tops_are_refused() {
    let both = json!({
        "config": {"mediaType": CACHE_CONFIG_MEDIA_TYPE, "digest": "sha256:00", "size": 2},
        "manifests": [{"mediaType": oci::OCI_MANIFEST, "digest": "sha256:00", "size": 2}],
    });
    assert!(parse_top(both.to_string().as_bytes())
        .unwrap_err()
        .contains("ambiguous"));
    assert!(parse_top(b"not json").is_err());
}

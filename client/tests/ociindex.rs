//! index.json of a local cache directory as buildctl keeps it: tags put, replaced and looked
//! up, other entries and unknown fields left alone, the lock honoured.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::collections::BTreeMap;
use std::fs::File;

use nodekit::ociindex::{Descriptor, IndexError, StoreIndex, IMAGE_NAME, REF_NAME};
use serde_json::{json, Value};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn descriptor(byte: char) -> Descriptor {
    Descriptor {
        media_type: MANIFEST.into(),
        digest: format!("sha256:{}", byte.to_string().repeat(64)),
        size: 1234,
        ..Default::default()
    }
}

fn index_json(dir: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

#[test]
fn put_creates_the_layout_and_tags_the_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    StoreIndex::new(&dir)
        .put(&descriptor('a'), "latest")
        .unwrap();

    assert_eq!(
        std::fs::read_to_string(dir.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    assert_eq!(
        index_json(&dir),
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": MANIFEST,
                "digest": format!("sha256:{}", "a".repeat(64)),
                "size": 1234,
                "annotations": {REF_NAME: "latest"},
            }],
        })
    );
    assert!(!dir.join("index.json.lock").exists());
}

#[test]
fn a_tag_put_again_replaces_its_entry_and_keeps_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let index = StoreIndex::new(tmp.path());
    index.put(&descriptor('a'), "latest").unwrap();
    index.put(&descriptor('b'), "v1").unwrap();
    index.put(&descriptor('c'), "latest").unwrap();

    let manifests = index.read().unwrap().manifests;
    let tags: Vec<(&str, char)> = manifests
        .iter()
        .map(|m| {
            (
                m.annotations[REF_NAME].as_str(),
                m.digest.chars().last().unwrap(),
            )
        })
        .collect();
    assert_eq!(tags, [("v1", 'b'), ("latest", 'c')]);
    assert_eq!(
        index.get("latest").unwrap().unwrap().digest,
        descriptor('c').digest
    );
    assert_eq!(
        index.get("v1").unwrap().unwrap().digest,
        descriptor('b').digest
    );
    assert_eq!(index.get("v2").unwrap(), None);
}

#[test]
fn entries_of_images_and_unknown_fields_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    // An OCI layout an image exporter wrote: an image named with a tag, no index mediaType,
    // fields nodekit does not model.
    let image = json!({
        "mediaType": MANIFEST,
        "digest": format!("sha256:{}", "d".repeat(64)),
        "size": 99,
        "annotations": {IMAGE_NAME: "example.com/app:latest", REF_NAME: "latest"},
        "platform": {"architecture": "amd64", "os": "linux"},
    });
    let existing = json!({"schemaVersion": 2, "manifests": [image], "annotations": {"k": "v"}});
    std::fs::write(tmp.path().join("index.json"), existing.to_string()).unwrap();

    let index = StoreIndex::new(tmp.path());
    index.put(&descriptor('e'), "latest").unwrap();
    let written = index_json(tmp.path());
    assert_eq!(
        written["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(written["annotations"], json!({"k": "v"}));
    assert_eq!(written["manifests"][0], image);
    assert_eq!(written["manifests"].as_array().unwrap().len(), 2);

    let found = index.get("example.com/app:latest").unwrap().unwrap();
    assert_eq!(found.size, 99);
    assert_eq!(found.other["platform"]["os"], "linux");
    // Without an image name equal to it, a tag is the first entry with that ref name, as
    // buildctl looks it up: here the image's, which came first.
    assert_eq!(index.get("latest").unwrap().unwrap().size, 99);
}

#[test]
fn an_image_name_equal_to_the_tag_is_found_first() {
    let tmp = tempfile::tempdir().unwrap();
    let index = StoreIndex::new(tmp.path());
    index.put(&descriptor('a'), "latest").unwrap();
    let mut named = descriptor('b');
    named.annotations = BTreeMap::from([(IMAGE_NAME.to_string(), "latest".to_string())]);
    index.put(&named, "other").unwrap();
    assert_eq!(index.get("latest").unwrap().unwrap().digest, named.digest);
}

#[test]
fn a_held_lock_or_a_missing_index_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let index = StoreIndex::new(tmp.path());
    assert!(matches!(index.get("latest"), Err(IndexError::Io { .. })));
    assert!(matches!(index.get(""), Err(IndexError::EmptyTag)));
    assert!(matches!(
        index.put(&descriptor('a'), ""),
        Err(IndexError::EmptyTag)
    ));

    let lock = File::create(tmp.path().join("index.json.lock")).unwrap();
    lock.lock().unwrap();
    let busy = index.put(&descriptor('a'), "latest").unwrap_err();
    assert!(matches!(busy, IndexError::Busy(_)), "{busy}");
    assert!(busy.to_string().starts_with("could not lock "), "{busy}");
    assert!(!tmp.path().join("index.json").exists());
    lock.unlock().unwrap();
    index.put(&descriptor('a'), "latest").unwrap();
}

#[test]
fn a_damaged_index_is_refused_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("index.json"), "{not json").unwrap();
    let index = StoreIndex::new(tmp.path());
    let error = index.put(&descriptor('a'), "latest").unwrap_err();
    assert!(matches!(error, IndexError::Parse { .. }), "{error}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("index.json")).unwrap(),
        "{not json"
    );
}

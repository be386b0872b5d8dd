//! Reading what a build stored in the test containerd: blobs, labels, image records, layers.

use std::io::Read;

use nodekit_test_support::{ctr, TestEnv};

/// A content-store blob.
pub fn content(digest: &str) -> Vec<u8> {
    let output = ctr(TestEnv::get(), &["content", "get", digest]);
    assert!(output.status.success(), "ctr content get {digest}");
    output.stdout
}

/// A content-store blob as JSON.
pub fn content_json(digest: &str) -> serde_json::Value {
    serde_json::from_slice(&content(digest)).expect("JSON content")
}

/// The labels column of a blob in `ctr content ls`.
pub fn content_labels(digest: &str) -> String {
    let output = ctr(TestEnv::get(), &["content", "ls"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.starts_with(digest))
        .unwrap_or_default()
        .to_string()
}

/// The digest an image record points at.
pub fn image_target(name: &str) -> String {
    let output = ctr(TestEnv::get(), &["images", "ls"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_default()
        .to_string()
}

/// Every path in the layers of `manifest` (gzip or uncompressed tars).
pub fn layer_paths(manifest: &serde_json::Value) -> Vec<String> {
    let layers = manifest["layers"].as_array().expect("layers");
    let mut paths = Vec::new();
    for layer in layers {
        let blob = content(layer["digest"].as_str().expect("a layer digest"));
        let reader: Box<dyn Read> = match layer["mediaType"].as_str() {
            Some(t) if t.ends_with("gzip") => Box::new(flate2::read::GzDecoder::new(&blob[..])),
            _ => Box::new(&blob[..]),
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().expect("a tar layer") {
            let entry = entry.expect("a tar entry");
            let path = entry.path().expect("a path").display().to_string();
            paths.push(path.trim_start_matches("./").to_string());
        }
    }
    paths
}

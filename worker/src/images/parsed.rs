//! Parsed manifests and configs by the digest an image name points at and the platform chosen
//! from it. Blobs never change under a digest, so a rebuild on the same base resolves with one
//! image-store lookup instead of reading index, manifest and config again.

use std::collections::HashMap;

use nodekit_oci::Platform;
use parking_lot::Mutex;

use super::manifest::ImageManifestSet;

/// How many images are kept; past that the map starts over (bases of a node are few).
const KEPT: usize = 64;

#[derive(Default)]
pub struct ParsedImages {
    images: Mutex<HashMap<(String, String), ImageManifestSet>>,
}

impl ParsedImages {
    pub fn get(&self, target: &str, platform: &Platform) -> Option<ImageManifestSet> {
        let key = (target.to_string(), platform.to_string());
        self.images.lock().get(&key).cloned()
    }

    pub fn insert(&self, target: &str, platform: &Platform, image: &ImageManifestSet) {
        let mut images = self.images.lock();
        if images.len() >= KEPT {
            images.clear();
        }
        let key = (target.to_string(), platform.to_string());
        images.insert(key, image.clone());
    }
}

//! The cache records recent builds used, by build reference: what `nodekit cache export
//! --build REF` exports. Kept in memory for the last [`KEPT`] builds since the daemon started.

use std::collections::VecDeque;

use cachestore::CacheKey;
use parking_lot::Mutex;

/// How many builds are remembered.
pub const KEPT: usize = 64;

#[derive(Default)]
pub struct RecentBuilds {
    builds: Mutex<VecDeque<(String, Vec<CacheKey>)>>,
}

impl RecentBuilds {
    /// Remembers the records build `id` used (a build run again under the same reference
    /// replaces its earlier entry).
    pub fn remember(&self, id: &str, keys: Vec<CacheKey>) {
        let mut builds = self.builds.lock();
        builds.retain(|(known, _)| known != id);
        if builds.len() == KEPT {
            builds.pop_front();
        }
        builds.push_back((id.to_string(), keys));
    }

    /// The records build `id` used, if it is one of the remembered builds.
    pub fn keys_of(&self, id: &str) -> Option<Vec<CacheKey>> {
        let builds = self.builds.lock();
        builds
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, keys)| keys.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_builds_are_remembered_and_the_oldest_forgotten() {
        let recent = RecentBuilds::default();
        for n in 0..=KEPT {
            recent.remember(&format!("b{n}"), vec![CacheKey::from_bytes([n as u8; 32])]);
        }
        assert_eq!(recent.keys_of("b0"), None);
        assert_eq!(
            recent.keys_of("b1"),
            Some(vec![CacheKey::from_bytes([1; 32])])
        );
        recent.remember("b1", Vec::new());
        assert_eq!(recent.keys_of("b1"), Some(Vec::new()));
    }
}

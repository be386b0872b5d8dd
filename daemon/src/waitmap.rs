//! A map of live things by id whose lookups may wait briefly for the id to appear: clients
//! often ask for a build, gateway or session a moment before it is registered.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Notify;

pub struct WaitMap<T> {
    items: Mutex<HashMap<String, T>>,
    changed: Notify,
}

impl<T> Default for WaitMap<T> {
    fn default() -> Self {
        WaitMap {
            items: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }
}

impl<T: Clone> WaitMap<T> {
    pub fn insert(&self, id: &str, item: T) {
        self.items.lock().insert(id.to_string(), item);
        self.changed.notify_waiters();
    }

    pub fn remove(&self, id: &str) -> Option<T> {
        self.items.lock().remove(id)
    }

    /// Every item there is now.
    pub fn values(&self) -> Vec<T> {
        self.items.lock().values().cloned().collect()
    }

    /// How many items there are now.
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item `id`, waiting up to `wait` for it to be inserted.
    pub async fn get(&self, id: &str, wait: Duration) -> Option<T> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            if let Some(item) = self.items.lock().get(id).cloned() {
                return Some(item);
            }
            tokio::time::timeout_at(deadline, changed).await.ok()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lookup_waits_for_a_late_insert() {
        let map = std::sync::Arc::new(WaitMap::default());
        let inserter = map.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            inserter.insert("a", 1);
        });
        assert_eq!(map.get("a", Duration::from_secs(2)).await, Some(1));
        assert_eq!(map.get("b", Duration::from_millis(20)).await, None);
        assert_eq!(map.remove("a"), Some(1));
        assert_eq!(map.get("a", Duration::ZERO).await, None);
    }
}

//! `Environment`: a state's environment variables, in the order BuildKit's client keeps them
//! (a key set again moves to the end). `Ordered`: the same for any value (a Dockerfile stage's
//! ARGs).
//!
//! Persistent maps rather than a list: every setter of an immutable state copies its settings,
//! and a Dockerfile of N `ENV` lines made N copies of an N-long list. Here a copy is a pointer
//! and a set is logarithmic, so such a file costs about N log N.

use std::sync::Arc;

use imbl::{HashMap, OrdMap};

/// Environment variables: their names and values.
pub type Environment = Ordered<Arc<str>>;

/// Values by name, in the order their names were last set in.
#[derive(Clone, Debug)]
pub struct Ordered<V> {
    /// The entries by the order they were (last) set in.
    by_order: OrdMap<u64, (Arc<str>, V)>,
    /// Each key's place in `by_order`.
    order_of: HashMap<Arc<str>, u64>,
    /// The place the next new entry takes.
    next: u64,
}

impl<V> Default for Ordered<V> {
    fn default() -> Ordered<V> {
        Ordered {
            by_order: OrdMap::new(),
            order_of: HashMap::new(),
            next: 0,
        }
    }
}

impl Environment {
    /// The value of variable `key`.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).map(|value| &**value)
    }
}

impl<V: Clone> Ordered<V> {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        let order = self.order_of.get(key)?;
        self.by_order.get(order).map(|(_, value)| value)
    }

    /// Sets `key` to `value`, moving it to the end.
    pub fn set(&mut self, key: Arc<str>, value: V) {
        if let Some(order) = self.order_of.remove(&key) {
            self.by_order.remove(&order);
        }
        self.order_of.insert(key.clone(), self.next);
        self.by_order.insert(self.next, (key, value));
        self.next += 1;
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.by_order.values().map(|(k, v)| (&**k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(key, _)| key)
    }

    pub fn len(&self) -> usize {
        self.by_order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
    }
}

/// Equal when the entries and their order are, whatever the history that made them.
impl<V: Clone + PartialEq> PartialEq for Ordered<V> {
    fn eq(&self, other: &Ordered<V>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Clone + Eq> Eq for Ordered<V> {}

impl<K: Into<Arc<str>>, V: Into<Arc<str>>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Environment {
        let mut env = Environment::default();
        for (key, value) in entries {
            env.set(key.into(), value.into());
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(env: &Environment) -> Vec<(&str, &str)> {
        env.iter().map(|(key, value)| (key, &**value)).collect()
    }

    #[test]
    fn a_key_set_again_moves_to_the_end_with_its_new_value() {
        let mut env: Environment = [("A", "1"), ("B", "2"), ("C", "3")].into_iter().collect();
        env.set("A".into(), "4".into());
        assert_eq!(entries(&env), [("B", "2"), ("C", "3"), ("A", "4")]);
        assert_eq!(env.get_str("A"), Some("4"));
        assert_eq!(env.get_str("D"), None);
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn a_copy_is_unchanged_by_sets_on_the_original() {
        let mut env: Environment = [("A", "1")].into_iter().collect();
        let copy = env.clone();
        env.set("A".into(), "2".into());
        env.set("B".into(), "3".into());
        assert_eq!(entries(&copy), [("A", "1")]);
        assert_eq!(entries(&env), [("A", "2"), ("B", "3")]);
    }

    #[test]
    fn equality_is_by_entries_and_order_not_history() {
        let mut rewritten: Environment = [("A", "0"), ("B", "2")].into_iter().collect();
        rewritten.set("A".into(), "1".into());
        let direct: Environment = [("B", "2"), ("A", "1")].into_iter().collect();
        assert_eq!(rewritten, direct);
        let other_order: Environment = [("A", "1"), ("B", "2")].into_iter().collect();
        assert_ne!(rewritten, other_order);
    }
}

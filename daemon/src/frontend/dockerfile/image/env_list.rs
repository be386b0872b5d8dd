//! An image config's `Env` list, kept persistent: every stage built FROM another copies its
//! image, and copies of a long environment made a file of N `ENV` lines followed by M stages
//! cost N × M in time and memory (40,000 variables and 30,000 stages took 24 GB).

use std::sync::Arc;

use serde_json::Value;

/// The entries as the config has them (strings, and whatever else a base image put there),
/// with where each key's first entry is, so that setting a key finds it without a scan.
#[derive(Clone, Debug, Default)]
pub struct EnvList {
    entries: imbl::Vector<Value>,
    places: imbl::HashMap<Arc<str>, usize>,
}

impl PartialEq for EnvList {
    /// Equal when the entries are (the places follow from them).
    fn eq(&self, other: &EnvList) -> bool {
        self.entries == other.entries
    }
}

impl FromIterator<Value> for EnvList {
    fn from_iter<I: IntoIterator<Item = Value>>(entries: I) -> EnvList {
        let entries: imbl::Vector<Value> = entries.into_iter().collect();
        let mut places = imbl::HashMap::new();
        for (place, entry) in entries.iter().enumerate() {
            if let Some(key) = entry.as_str().map(key_of) {
                places.entry(Arc::from(key)).or_insert(place);
            }
        }
        EnvList { entries, places }
    }
}

/// An entry's key: up to its first `=`, or all of it.
fn key_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

impl EnvList {
    /// Sets `key=value`, replacing the key's first entry in its place, else appending.
    pub fn set(&mut self, key: &str, value: &str) {
        let entry = Value::String(format!("{key}={value}"));
        match self.places.get(key) {
            Some(&place) => {
                self.entries.set(place, entry);
            }
            None => {
                self.places.insert(Arc::from(key), self.entries.len());
                self.entries.push_back(entry);
            }
        }
    }

    /// The entries that are strings, in order.
    pub fn strings(&self) -> Vec<String> {
        let strings = self.entries.iter().filter_map(Value::as_str);
        strings.map(String::from).collect()
    }

    /// The list as the config's JSON has it.
    pub fn to_value(&self) -> Value {
        Value::Array(self.entries.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_replaces_a_key_s_first_entry_and_keeps_other_values() {
        let mut env: EnvList = [json!("A=1"), json!(7), json!("B"), json!("A=2")]
            .into_iter()
            .collect();
        let copy = env.clone();
        env.set("A", "3");
        env.set("B", "4");
        env.set("C", "5");
        assert_eq!(env.to_value(), json!(["A=3", 7, "B=4", "A=2", "C=5"]));
        assert_eq!(env.strings(), ["A=3", "B=4", "A=2", "C=5"]);
        assert_eq!(copy.to_value(), json!(["A=1", 7, "B", "A=2"]));
        assert_ne!(env, copy);
    }
}

//! Variable lookup used by the [`Lexer`](super::Lexer).
//!
//! Lookups are case-sensitive (Linux semantics, as upstream on Unix).

use std::collections::{BTreeMap, HashMap};

/// Source of variable values for expansion.
pub trait Env {
    /// The value of `name`, or `None` when the variable is not set.
    /// A set-but-empty variable returns `Some("")`.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// An environment where nothing is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Ordered `(name, value)` list: the last entry for a name wins.
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Ordered `(name, value)` list: the last entry for a name wins.
impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// Ordered `(name, value)` list: the last entry for a name wins.
impl Env for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// `KEY=VALUE` strings as in an OCI image config `Env` (upstream
/// `EnvsFromSlice`): the last entry for a key wins, an entry without `=`
/// sets the key to the empty string.
#[derive(Debug, Clone, Copy)]
pub struct EnvSlice<'a, S: AsRef<str>>(pub &'a [S]);

impl<S: AsRef<str>> Env for EnvSlice<'_, S> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find_map(|entry| {
            let entry = entry.as_ref();
            match entry.split_once('=') {
                Some((k, v)) if k == name => Some(v),
                None if entry == name => Some(""),
                _ => None,
            }
        })
    }
}

//! Git sources: a repository checked out by the daemon (BuildKit's `llb.Git`).

use std::collections::BTreeMap;

use crate::options::OpOptions;
use crate::source::SourceNode;
use crate::state::State;

/// The checkout of `remote` at `git_ref` (optionally a `subdir` of it), with `git.*` attributes.
#[derive(Debug, Clone)]
pub struct Git {
    identifier: String,
    attrs: BTreeMap<String, String>,
    opts: OpOptions,
}

impl Git {
    /// `remote` is the full URL (`git.fullurl`); `fragment` is `ref[:subdir]` (may be empty).
    pub fn new(remote: &str, fragment: &str) -> Git {
        let bare = remote.split_once("://").map_or(remote, |(_, rest)| rest);
        let mut identifier = format!("git://{bare}");
        if !fragment.is_empty() {
            identifier = format!("{identifier}#{fragment}");
        }
        let attrs = BTreeMap::from([("git.fullurl".to_string(), remote.to_string())]);
        Git {
            identifier,
            attrs,
            opts: OpOptions::default(),
        }
    }

    /// Sets a `git.*` attribute (`git.keepgitdir`, `git.checksum`, `git.authtokensecret`, …).
    pub fn attr(mut self, key: &str, value: &str) -> Git {
        self.attrs.insert(key.to_string(), value.to_string());
        self
    }

    /// The source as a state.
    pub fn into_state(self) -> State {
        let caps = vec!["source.git", "source.git.fullurl"];
        SourceNode::new(self.identifier, self.attrs, caps).into_state(self.opts)
    }
}

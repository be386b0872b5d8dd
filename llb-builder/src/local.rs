//! Local sources: a directory the client sends over its session (BuildKit's `llb.Local`).

use std::collections::BTreeMap;

use crate::json::string_array;
use crate::options::OpOptions;
use crate::source::SourceNode;
use crate::state::State;

/// A directory the client sends over its session: `local("context")` is `local://context`.
pub fn local(name: &str) -> State {
    Local::new(name).into_state()
}

/// How the client compares files of a local source with what the daemon has (`local.differ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalDiffer {
    /// Resend every file.
    None,
    /// Compare metadata (size, mtime, mode, owner…): the default.
    Metadata,
}

/// A local source with options. Pattern and path lists travel as JSON arrays in the op's
/// attributes, encoded as Go's `encoding/json` does.
#[derive(Debug, Clone)]
pub struct Local {
    name: String,
    attrs: BTreeMap<String, String>,
    differ_required: bool,
    unique_id: Option<String>,
    opts: OpOptions,
}

/// Attribute keys of local sources and the capability each needs, in BuildKit's order.
const LOCAL_ATTR_CAPS: [(&str, Option<&str>); 7] = [
    ("local.session", Some("source.local.sessionid")),
    ("local.includepattern", Some("source.local.includepatterns")),
    ("local.followpaths", Some("source.local.followpaths")),
    (
        "local.excludepatterns",
        Some("source.local.excludepatterns"),
    ),
    ("local.sharedkeyhint", Some("source.local.sharedkeyhint")),
    (
        "local.metadatatransfer",
        Some("source.local.metadatatransfer"),
    ),
    ("local.differ", None),
];

impl Local {
    /// The directory the client shares as `name`.
    pub fn new(name: &str) -> Local {
        Local {
            name: name.to_string(),
            attrs: BTreeMap::new(),
            differ_required: false,
            unique_id: None,
            opts: OpOptions::default(),
        }
    }

    /// The session that serves the directory (`local.session`).
    pub fn session_id(self, id: &str) -> Local {
        self.attr("local.session", id.to_string())
    }

    /// Only send paths matching these patterns (`local.includepattern`).
    pub fn include_patterns(self, patterns: &[String]) -> Local {
        self.attr("local.includepattern", json_list(patterns))
    }

    /// Don't send paths matching these patterns (`local.excludepatterns`).
    pub fn exclude_patterns(self, patterns: &[String]) -> Local {
        self.attr("local.excludepatterns", json_list(patterns))
    }

    /// Only send these paths, following symlinks to them (`local.followpaths`).
    pub fn follow_paths(self, paths: &[String]) -> Local {
        self.attr("local.followpaths", json_list(paths))
    }

    /// A key under which the daemon may reuse an earlier transfer (`local.sharedkeyhint`).
    pub fn shared_key_hint(self, hint: &str) -> Local {
        self.attr("local.sharedkeyhint", hint.to_string())
    }

    /// How files are compared (`local.differ`); `required` makes the daemon refuse if it can't.
    pub fn differ(mut self, differ: LocalDiffer, required: bool) -> Local {
        let value = match differ {
            LocalDiffer::None => "none",
            LocalDiffer::Metadata => "metadata",
        };
        self.differ_required = required;
        self.attr("local.differ", value.to_string())
    }

    /// Send only file metadata, except for paths matching `exceptions`
    /// (`local.metadatatransfer`).
    pub fn metadata_only_transfer(self, exceptions: &[String]) -> Local {
        let local = self.attr("local.metadatatransfer", "true".to_string());
        local.attr("local.metadatatransferexclude", json_list(exceptions))
    }

    /// The `local.unique` value set when there is no session id (BuildKit's per-source
    /// `LocalUniqueID`); default: the marshal options' one, else none.
    pub fn unique_id(mut self, id: &str) -> Local {
        self.unique_id = Some(id.to_string());
        self
    }

    /// The name progress output shows for the transfer.
    pub fn custom_name(mut self, name: &str) -> Local {
        self.opts = self.opts.custom_name(name);
        self
    }

    /// Replaces the op options (name, …).
    pub fn options(mut self, opts: OpOptions) -> Local {
        self.opts = opts;
        self
    }

    /// The source as a state.
    pub fn into_state(self) -> State {
        let mut caps: Vec<&'static str> = LOCAL_ATTR_CAPS
            .iter()
            .filter(|(key, _)| self.attrs.contains_key(*key))
            .filter_map(|(_, cap)| *cap)
            .collect();
        if self.differ_required && self.attrs.contains_key("local.differ") {
            caps.push("source.local.differ");
        }
        caps.push("source.local");
        let identifier = format!("local://{}", self.name);
        let mut node = SourceNode::new(identifier, self.attrs, caps);
        node.local_unique = self.unique_id;
        if self.name.is_empty() {
            node.error = Some(crate::BuildError::EmptySourceIdentifier);
        }
        node.into_state(self.opts)
    }

    /// Sets `key`, or removes it for an empty value (BuildKit's client never sends those).
    fn attr(mut self, key: &str, value: String) -> Local {
        if value.is_empty() {
            self.attrs.remove(key)
        } else {
            self.attrs.insert(key.to_string(), value)
        };
        self
    }
}

/// A JSON array of the items, or nothing for no items.
fn json_list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        string_array(items)
    }
}

//! HTTP(S) sources: a file the daemon downloads (BuildKit's `llb.HTTP`).

use std::collections::BTreeMap;

use crate::options::OpOptions;
use crate::source::SourceNode;
use crate::state::State;

/// A file downloaded from `url`, with options. The result holds one file at its root.
#[derive(Debug, Clone)]
pub struct Http {
    url: String,
    filename: Option<String>,
    checksum: Option<String>,
    perm: Option<u32>,
    owner: Option<(u32, u32)>,
    opts: OpOptions,
}

impl Http {
    /// The file at `url`.
    pub fn new(url: &str) -> Http {
        Http {
            url: url.to_string(),
            filename: None,
            checksum: None,
            perm: None,
            owner: None,
            opts: OpOptions::default(),
        }
    }

    /// The file's name in the result (`http.filename`); default: from the response or URL.
    pub fn filename(mut self, name: &str) -> Http {
        self.filename = Some(name.to_string());
        self
    }

    /// The digest the download must have (`http.checksum`).
    pub fn checksum(mut self, digest: &str) -> Http {
        self.checksum = Some(digest.to_string());
        self
    }

    /// The file's permission bits (`http.perm`; default 0600).
    pub fn perm(mut self, mode: u32) -> Http {
        self.perm = Some(mode);
        self
    }

    /// The file's owner (`http.uid`, `http.gid`).
    pub fn owner(mut self, uid: u32, gid: u32) -> Http {
        self.owner = Some((uid, gid));
        self
    }

    /// Replaces the op options (name, description, …).
    pub fn options(mut self, opts: OpOptions) -> Http {
        self.opts = opts;
        self
    }

    /// The source as a state.
    pub fn into_state(self) -> State {
        let mut caps = vec!["source.http"];
        let mut attrs = BTreeMap::new();
        if let Some(name) = self.filename.filter(|n| !n.is_empty()) {
            attrs.insert("http.filename".to_string(), name);
        }
        if let Some(digest) = self.checksum.filter(|d| !d.is_empty()) {
            attrs.insert("http.checksum".to_string(), digest);
            caps.push("source.http.checksum");
        }
        if let Some(mode) = self.perm {
            attrs.insert("http.perm".to_string(), format!("0{mode:o}"));
            caps.push("source.http.perm");
        }
        if let Some((uid, gid)) = self.owner {
            attrs.insert("http.uid".to_string(), uid.to_string());
            attrs.insert("http.gid".to_string(), gid.to_string());
            caps.push("source.http.uidgid");
        }
        SourceNode::new(self.url, attrs, caps).into_state(self.opts)
    }
}

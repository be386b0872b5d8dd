//! What an exec op mounts besides its root: states, scratch, caches, tmpfs, secrets, SSH.

use crate::state::State;

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Everyone mounts the same directory at once.
    #[default]
    Shared,
    /// Concurrent users each get their own copy.
    Private,
    /// Users wait for each other.
    Locked,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MountKind {
    Bind,
    Tmpfs { size: i64 },
    Cache { id: String, sharing: CacheSharing },
}

/// A mount of an exec op other than its root (BuildKit's `AddMount` and `MountOption`s).
#[derive(Debug, Clone)]
pub struct Mount {
    pub(crate) source: Option<State>,
    pub(crate) kind: MountKind,
    pub(crate) selector: String,
    pub(crate) readonly: bool,
    pub(crate) no_output: bool,
}

impl Mount {
    /// Mounts `source` (scratch mounts an empty directory); unless read-only or
    /// [`no_output`](Mount::no_output), its content after the run is an output of the op.
    pub fn bind(source: &State) -> Mount {
        Mount::new(Some(source.clone()), MountKind::Bind)
    }

    /// Mounts an empty writable directory whose content after the run is an output.
    pub fn scratch() -> Mount {
        Mount::new(None, MountKind::Bind)
    }

    /// A tmpfs, discarded after the run; `size` in bytes, 0 for the default.
    pub fn tmpfs(size: i64) -> Mount {
        Mount::new(None, MountKind::Tmpfs { size })
    }

    /// A persistent cache directory shared across builds under `id`; no output. (As in
    /// BuildKit's client, an empty `id` makes this a plain writable mount.)
    pub fn cache(id: &str, sharing: CacheSharing) -> Mount {
        let kind = if id.is_empty() {
            MountKind::Bind
        } else {
            MountKind::Cache {
                id: id.to_string(),
                sharing,
            }
        };
        Mount::new(None, kind)
    }

    /// The state a cache mount starts from (BuildKit seeds a new cache with it); ignored for
    /// tmpfs, which always starts empty.
    pub fn from(mut self, source: &State) -> Mount {
        if !matches!(self.kind, MountKind::Tmpfs { .. }) {
            self.source = Some(source.clone());
        }
        self
    }

    /// Mount only this path of the source.
    pub fn selector(mut self, path: &str) -> Mount {
        self.selector = path.to_string();
        self
    }

    /// Mount read-only: no output; the mount's "result" is the source itself.
    pub fn readonly(mut self) -> Mount {
        self.readonly = true;
        self
    }

    /// Writable, but its content after the run is thrown away.
    pub fn no_output(mut self) -> Mount {
        self.no_output = true;
        self
    }

    /// Whether the mount's content after the run is an output of the op.
    pub(crate) fn has_output(&self) -> bool {
        !self.no_output && !self.readonly && self.kind == MountKind::Bind
    }

    fn new(source: Option<State>, kind: MountKind) -> Mount {
        Mount {
            source,
            kind,
            selector: String::new(),
            readonly: false,
            no_output: false,
        }
    }
}

/// A session secret for an exec op, as a file or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub(crate) id: String,
    pub(crate) target: SecretTarget,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mode: u32,
    pub(crate) optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretTarget {
    File(String),
    Env(String),
}

impl Secret {
    /// The secret the client's session holds under `id`, mounted as a file at `target` (mode
    /// 0400, owned by root, unless changed).
    pub fn file(id: &str, target: &str) -> Secret {
        Secret::new(id, SecretTarget::File(target.to_string()))
    }

    /// The secret `id` exposed as environment variable `name`.
    pub fn env(id: &str, name: &str) -> Secret {
        Secret::new(id, SecretTarget::Env(name.to_string()))
    }

    /// Owner of the secret file.
    pub fn owner(mut self, uid: u32, gid: u32) -> Secret {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Permission bits of the secret file.
    pub fn mode(mut self, mode: u32) -> Secret {
        self.mode = mode;
        self
    }

    /// Don't fail if the client has no such secret.
    pub fn optional(mut self) -> Secret {
        self.optional = true;
        self
    }

    fn new(id: &str, target: SecretTarget) -> Secret {
        Secret {
            id: id.to_string(),
            target,
            uid: 0,
            gid: 0,
            mode: 0o400,
            optional: false,
        }
    }
}

/// An SSH agent socket forwarded from the client's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssh {
    pub(crate) id: String,
    pub(crate) target: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mode: u32,
    pub(crate) optional: bool,
}

impl Default for Ssh {
    fn default() -> Ssh {
        Ssh {
            id: String::new(),
            target: String::new(),
            uid: 0,
            gid: 0,
            mode: 0o600,
            optional: false,
        }
    }
}

impl Ssh {
    /// The default agent ("" id), at `/run/buildkit/ssh_agent.<n>`, mode 0600.
    pub fn new() -> Ssh {
        Ssh::default()
    }

    /// Which of the client's agents or keys (`--ssh id=…`).
    pub fn id(mut self, id: &str) -> Ssh {
        self.id = id.to_string();
        self
    }

    /// Where the socket appears in the container.
    pub fn target(mut self, path: &str) -> Ssh {
        self.target = path.to_string();
        self
    }

    /// Owner of the socket.
    pub fn owner(mut self, uid: u32, gid: u32) -> Ssh {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Permission bits of the socket.
    pub fn mode(mut self, mode: u32) -> Ssh {
        self.mode = mode;
        self
    }

    /// Don't fail if the client forwards no such agent.
    pub fn optional(mut self) -> Ssh {
        self.optional = true;
        self
    }
}

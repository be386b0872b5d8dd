//! The simple file actions (mkdir, mkfile, rm, symlink) and file owners.

/// A user or group: a numeric id, or a name looked up in the target's `/etc/passwd` or
/// `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(u32),
    Name(String),
}

impl UserRef {
    /// `root` and decimal numbers are ids, anything else a name (BuildKit's `parseUID`).
    pub fn parse(s: &str) -> UserRef {
        if s == "root" {
            return UserRef::Id(0);
        }
        match s.parse::<i32>() {
            Ok(id) => UserRef::Id(id as u32),
            Err(_) => UserRef::Name(s.to_string()),
        }
    }
}

/// The owner of created or copied files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chown {
    pub user: Option<UserRef>,
    pub group: Option<UserRef>,
}

impl Chown {
    /// `user[:group]`, each a name or a numeric id (BuildKit's `WithUser`).
    pub fn parse(spec: &str) -> Chown {
        let (user, group) = match spec.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (spec, None),
        };
        Chown {
            user: Some(UserRef::parse(user)),
            group: group.map(UserRef::parse),
        }
    }

    /// Numeric owner and group (BuildKit's `WithUIDGID`).
    pub fn ids(uid: u32, gid: u32) -> Chown {
        Chown {
            user: Some(UserRef::Id(uid)),
            group: Some(UserRef::Id(gid)),
        }
    }
}

/// Creates a directory.
#[derive(Debug, Clone)]
pub struct Mkdir {
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) parents: bool,
    pub(crate) chown: Option<Chown>,
    pub(crate) created: Option<i64>,
}

impl Mkdir {
    /// `path` (relative: to the state's working directory) with permission bits `mode`.
    pub fn new(path: &str, mode: u32) -> Mkdir {
        let path = path.to_string();
        Mkdir {
            path,
            mode,
            parents: false,
            chown: None,
            created: None,
        }
    }

    /// Create missing parent directories too.
    pub fn parents(mut self, parents: bool) -> Mkdir {
        self.parents = parents;
        self
    }

    /// The owner of the new directory (default: root).
    pub fn chown(mut self, owner: Chown) -> Mkdir {
        self.chown = Some(owner);
        self
    }

    /// The modification time to set, in nanoseconds since the Unix epoch.
    pub fn created(mut self, unix_nanos: i64) -> Mkdir {
        self.created = Some(unix_nanos);
        self
    }
}

/// Creates a file with given content.
#[derive(Debug, Clone)]
pub struct Mkfile {
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) data: Vec<u8>,
    pub(crate) chown: Option<Chown>,
    pub(crate) created: Option<i64>,
}

impl Mkfile {
    /// `path` (relative: to the state's working directory) with permission bits `mode`.
    pub fn new(path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Mkfile {
        let (path, data) = (path.to_string(), data.into());
        Mkfile {
            path,
            mode,
            data,
            chown: None,
            created: None,
        }
    }

    /// The owner of the new file (default: root).
    pub fn chown(mut self, owner: Chown) -> Mkfile {
        self.chown = Some(owner);
        self
    }

    /// The modification time to set, in nanoseconds since the Unix epoch.
    pub fn created(mut self, unix_nanos: i64) -> Mkfile {
        self.created = Some(unix_nanos);
        self
    }
}

/// Removes a file or directory.
#[derive(Debug, Clone)]
pub struct Rm {
    pub(crate) path: String,
    pub(crate) allow_not_found: bool,
    pub(crate) allow_wildcard: bool,
}

impl Rm {
    /// `path` (relative: to the state's working directory).
    pub fn new(path: &str) -> Rm {
        let path = path.to_string();
        Rm {
            path,
            allow_not_found: false,
            allow_wildcard: false,
        }
    }

    /// Don't fail when `path` doesn't exist.
    pub fn allow_not_found(mut self, allow: bool) -> Rm {
        self.allow_not_found = allow;
        self
    }

    /// Expand wildcards in `path`.
    pub fn allow_wildcard(mut self, allow: bool) -> Rm {
        self.allow_wildcard = allow;
        self
    }
}

/// Creates a symbolic link at `newpath` pointing to `oldpath` (both written as given).
#[derive(Debug, Clone)]
pub struct Symlink {
    pub(crate) oldpath: String,
    pub(crate) newpath: String,
    pub(crate) chown: Option<Chown>,
    pub(crate) created: Option<i64>,
}

impl Symlink {
    /// A link at `newpath` whose target is `oldpath`.
    pub fn new(oldpath: &str, newpath: &str) -> Symlink {
        let (oldpath, newpath) = (oldpath.to_string(), newpath.to_string());
        Symlink {
            oldpath,
            newpath,
            chown: None,
            created: None,
        }
    }

    /// The owner of the link (default: root).
    pub fn chown(mut self, owner: Chown) -> Symlink {
        self.chown = Some(owner);
        self
    }

    /// The modification time to set, in nanoseconds since the Unix epoch.
    pub fn created(mut self, unix_nanos: i64) -> Symlink {
        self.created = Some(unix_nanos);
        self
    }
}

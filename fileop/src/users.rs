//! Resolution of `ChownOpt` owners to numeric ids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nodekit_proto::pb::{user_opt::User, ChownOpt, NamedUserOpt};

use crate::error::FileOpError;
use crate::meta::Owner;
use crate::userdb::{group_entries, passwd_entries, read_user_file, GROUP_PATH, PASSWD_PATH};

/// Turns user and group names of a `ChownOpt` into ids.
///
/// `input` is `NamedUserOpt.input`: the index of the FileOp input (or earlier action output)
/// whose `/etc/passwd` and `/etc/group` name the user. The provided [`UserResolver::resolve`]
/// combines the lookups the way BuildKit does.
pub trait UserResolver {
    /// `(uid, primary gid)` of user `name` in the passwd file of `input`; `None` when it has no
    /// entry (or there is no passwd file).
    fn lookup_user(&self, name: &str, input: i64) -> Result<Option<(u32, u32)>, FileOpError>;

    /// The gid of group `name` in the group file of `input`; `None` when it has no entry.
    fn lookup_group(&self, name: &str, input: i64) -> Result<Option<u32>, FileOpError>;

    /// Whether an unknown name is an error. BuildKit's behaviour (the default, `false`): an
    /// unknown user leaves uid/gid 0, an unknown group leaves the gid unchanged.
    fn unknown_names_are_errors(&self) -> bool {
        false
    }

    /// Resolves a `ChownOpt` to `(uid, gid)` like BuildKit's `readUser`:
    /// - user by id `n`: uid = gid = `n`; user by name: the passwd entry's uid and gid;
    /// - no user: uid = gid = 0;
    /// - a group (by id or by name) then replaces the gid.
    fn resolve(&self, chown: &ChownOpt) -> Result<(u32, u32), FileOpError> {
        let (mut uid, mut gid) = (0, 0);
        match chown.user.as_ref().and_then(|u| u.user.as_ref()) {
            Some(User::ById(id)) => (uid, gid) = (*id, *id),
            Some(User::ByName(named)) => {
                check_index(named)?;
                match self.lookup_user(&named.name, named.input)? {
                    Some(ids) => (uid, gid) = ids,
                    None if self.unknown_names_are_errors() => {
                        return Err(FileOpError::UnknownUser {
                            name: named.name.clone(),
                        })
                    }
                    None => {}
                }
            }
            None => {}
        }
        match chown.group.as_ref().and_then(|g| g.user.as_ref()) {
            Some(User::ById(id)) => gid = *id,
            Some(User::ByName(named)) => {
                check_index(named)?;
                match self.lookup_group(&named.name, named.input)? {
                    Some(id) => gid = id,
                    None if self.unknown_names_are_errors() => {
                        return Err(FileOpError::UnknownGroup {
                            name: named.name.clone(),
                        })
                    }
                    None => {}
                }
            }
            None => {}
        }
        Ok((uid, gid))
    }
}

fn check_index(named: &NamedUserOpt) -> Result<(), FileOpError> {
    if named.input < 0 {
        return Err(FileOpError::Invalid(format!(
            "invalid user index: {}",
            named.input
        )));
    }
    Ok(())
}

/// Resolves the optional owner of an action: `None` keeps the default ownership.
pub(crate) fn resolve_owner(
    users: &dyn UserResolver,
    chown: Option<&ChownOpt>,
) -> Result<Option<Owner>, FileOpError> {
    chown.map(|c| users.resolve(c)).transpose()
}

/// Accepts numeric ids only; a name resolves like an unknown name in BuildKit (uid/gid 0 for a
/// user, the gid unchanged for a group).
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericIdsOnly;

impl UserResolver for NumericIdsOnly {
    fn lookup_user(&self, _name: &str, _input: i64) -> Result<Option<(u32, u32)>, FileOpError> {
        Ok(None)
    }

    fn lookup_group(&self, _name: &str, _input: i64) -> Result<Option<u32>, FileOpError> {
        Ok(None)
    }
}

/// Looks names up in `/etc/passwd` and `/etc/group` of the root that belongs to the
/// `NamedUserOpt.input` index, read through the root-confined resolver (a symlinked
/// `/etc/passwd` is followed inside its root only). A missing file counts as "no entry".
///
/// [`PasswdResolver::new`] reads one root for every input; [`PasswdResolver::per_input`] maps
/// input indexes to roots (an index without a root is an error, as upstream's "invalid missing
/// user mount").
#[derive(Debug, Clone)]
pub struct PasswdResolver {
    single: Option<PathBuf>,
    roots: BTreeMap<i64, PathBuf>,
    strict: bool,
}

impl PasswdResolver {
    /// A resolver reading the files of `root`, whatever the input index.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PasswdResolver {
            single: Some(root.into()),
            roots: BTreeMap::new(),
            strict: false,
        }
    }

    /// A resolver reading, for input index `i`, the files of the root mapped to `i`.
    pub fn per_input(roots: impl IntoIterator<Item = (i64, PathBuf)>) -> Self {
        PasswdResolver {
            single: None,
            roots: roots.into_iter().collect(),
            strict: false,
        }
    }

    /// When `yes`, unknown names are errors instead of BuildKit's silent fallback.
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }

    fn root(&self, input: i64, what: &str) -> Result<&Path, FileOpError> {
        if let Some(root) = &self.single {
            return Ok(root);
        }
        self.roots
            .get(&input)
            .map(PathBuf::as_path)
            .ok_or_else(|| FileOpError::Invalid(format!("invalid missing {what} mount")))
    }
}

impl UserResolver for PasswdResolver {
    fn lookup_user(&self, name: &str, input: i64) -> Result<Option<(u32, u32)>, FileOpError> {
        let data = read_user_file(self.root(input, "user")?, PASSWD_PATH)?;
        let found = data.and_then(|d| {
            passwd_entries(&d)
                .find(|entry| entry.name == name)
                .map(|entry| (entry.uid, entry.gid))
        });
        Ok(found)
    }

    fn lookup_group(&self, name: &str, input: i64) -> Result<Option<u32>, FileOpError> {
        let data = read_user_file(self.root(input, "group")?, GROUP_PATH)?;
        let found = data.and_then(|d| {
            group_entries(&d)
                .find(|entry| entry.name == name)
                .map(|entry| entry.gid)
        });
        Ok(found)
    }

    fn unknown_names_are_errors(&self) -> bool {
        self.strict
    }
}

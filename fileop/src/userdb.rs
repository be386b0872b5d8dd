//! Reading `/etc/passwd` and `/etc/group` of a root, confined to it, and the one parser of
//! their lines in nodekit (as moby/sys/user reads them, which BuildKit and runc use).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::FileOpError;
use crate::resolve::resolve_str;

/// Where user names live.
pub(crate) const PASSWD_PATH: &str = "/etc/passwd";
/// Where group names live.
pub(crate) const GROUP_PATH: &str = "/etc/group";

/// Largest passwd or group file read (upstream uses the same limit).
const MAX_USER_FILE_BYTES: u64 = 10 << 20;

/// Reads `path` of `root` (symlinks followed inside the root); `None` when it does not exist
/// (or a component is not a directory), as upstream treats both as "no entry".
pub(crate) fn read_user_file(root: &Path, path: &str) -> Result<Option<String>, FileOpError> {
    let db_err = |reason: String| FileOpError::UserDatabase {
        path: path.to_string(),
        reason,
    };
    let host = match resolve_str(root, path, true) {
        Ok(h) => h,
        Err(e) if matches!(e.errno(), Some(Errno::ENOENT | Errno::ENOTDIR)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(&host)
    {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(FileOpError::os("open", path, e)),
    };
    let md = file
        .metadata()
        .map_err(|e| FileOpError::os("stat", path, e))?;
    if !md.is_file() {
        return Err(db_err("is not a regular file".to_string()));
    }
    let mut data = Vec::new();
    file.take(MAX_USER_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| FileOpError::os("read", path, e))?;
    if data.len() as u64 > MAX_USER_FILE_BYTES {
        return Err(db_err(format!("exceeds {MAX_USER_FILE_BYTES} bytes")));
    }
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(Errno::ENOTDIR as i32)
}

/// An `/etc/passwd` entry: `name:password:uid:gid:gecos:home:shell`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
}

/// An `/etc/group` entry: `name:password:gid:member,member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry<'a> {
    pub name: &'a str,
    pub gid: u32,
    pub members: Vec<&'a str>,
}

/// The entries of an `/etc/passwd` text, in file order.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(text).map(|fields| PasswdEntry {
        name: fields[0],
        uid: id_field(&fields, 2),
        gid: id_field(&fields, 3),
    })
}

/// The entries of an `/etc/group` text, in file order.
pub fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(text).map(|fields| GroupEntry {
        name: fields[0],
        gid: id_field(&fields, 2),
        members: fields
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default(),
    })
}

/// The colon-separated fields of every line, lines trimmed and empty ones skipped.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(':').collect())
}

/// Numeric field `i`; 0 when missing or malformed (upstream's `strconv.Atoi` with the error
/// ignored).
fn id_field(fields: &[&str], i: usize) -> u32 {
    fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_as_moby_sys_user_reads_them() {
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\n\n  app:x:1000:1001::/home/app:/bin/sh  \nodd:x:abc\n";
        let users: Vec<_> = passwd_entries(passwd).collect();
        let summary: Vec<_> = users.iter().map(|u| (u.name, u.uid, u.gid)).collect();
        assert_eq!(
            summary,
            [("root", 0, 0), ("app", 1000, 1001), ("odd", 0, 0)]
        );
        let group = "wheel:x:10:root,app\nempty:x:20:\n";
        let groups: Vec<_> = group_entries(group).collect();
        assert_eq!(groups[0].members, ["root", "app"]);
        assert_eq!((groups[1].name, groups[1].gid), ("empty", 20));
        assert!(groups[1].members.is_empty());
    }
}

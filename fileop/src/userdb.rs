//! Reading `/etc/passwd` and `/etc/group` of a root, confined to it.

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

//! Go `os.FileMode` bits as carried in `Stat.mode`, and their mapping to and
//! from unix `st_mode`.

/// `os.ModeDir`.
pub const MODE_DIR: u32 = 1 << 31;
/// `os.ModeSymlink`.
pub const MODE_SYMLINK: u32 = 1 << 27;
/// `os.ModeDevice`.
pub const MODE_DEVICE: u32 = 1 << 26;
/// `os.ModeNamedPipe`.
pub const MODE_NAMED_PIPE: u32 = 1 << 25;
/// `os.ModeSocket`.
pub const MODE_SOCKET: u32 = 1 << 24;
/// `os.ModeSetuid`.
pub const MODE_SETUID: u32 = 1 << 23;
/// `os.ModeSetgid`.
pub const MODE_SETGID: u32 = 1 << 22;
/// `os.ModeCharDevice`.
pub const MODE_CHAR_DEVICE: u32 = 1 << 21;
/// `os.ModeSticky`.
pub const MODE_STICKY: u32 = 1 << 20;
/// `os.ModeIrregular`.
pub const MODE_IRREGULAR: u32 = 1 << 19;
/// `os.ModeType`: every bit that makes an entry something other than a regular file.
pub const MODE_TYPE: u32 = MODE_DIR
    | MODE_SYMLINK
    | MODE_NAMED_PIPE
    | MODE_SOCKET
    | MODE_DEVICE
    | MODE_CHAR_DEVICE
    | MODE_IRREGULAR;
/// `os.ModePerm`.
pub const MODE_PERM: u32 = 0o777;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Converts a unix `st_mode` to Go's `os.FileMode`, as Go's `os.Lstat` does.
pub fn go_mode_from_unix(st_mode: u32) -> u32 {
    use nix::libc;
    let mut mode = st_mode & MODE_PERM;
    mode |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => MODE_DIR,
        libc::S_IFLNK => MODE_SYMLINK,
        libc::S_IFIFO => MODE_NAMED_PIPE,
        libc::S_IFSOCK => MODE_SOCKET,
        libc::S_IFBLK => MODE_DEVICE,
        libc::S_IFCHR => MODE_DEVICE | MODE_CHAR_DEVICE,
        _ => 0,
    };
    if st_mode & S_ISUID != 0 {
        mode |= MODE_SETUID;
    }
    if st_mode & S_ISGID != 0 {
        mode |= MODE_SETGID;
    }
    if st_mode & S_ISVTX != 0 {
        mode |= MODE_STICKY;
    }
    mode
}

/// The unix permission bits (`chmod` argument, including setuid, setgid
/// and sticky) encoded in a Go file mode.
pub fn unix_perm_from_go(mode: u32) -> u32 {
    let mut perm = mode & MODE_PERM;
    if mode & MODE_SETUID != 0 {
        perm |= S_ISUID;
    }
    if mode & MODE_SETGID != 0 {
        perm |= S_ISGID;
    }
    if mode & MODE_STICKY != 0 {
        perm |= S_ISVTX;
    }
    perm
}

/// Whether a Go file mode describes a regular file (the only kind whose data
/// can be requested; must match upstream's `fileCanRequestData`).
pub fn is_regular(mode: u32) -> bool {
    mode & MODE_TYPE == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_permission_bits() {
        for st in [0o100755, 0o100600, 0o104755, 0o102711, 0o041777, 0o040700] {
            let go = go_mode_from_unix(st);
            assert_eq!(unix_perm_from_go(go), st & 0o7777, "st_mode {st:o}");
        }
    }

    #[test]
    fn maps_file_types() {
        assert_eq!(go_mode_from_unix(0o040755), MODE_DIR | 0o755);
        assert_eq!(go_mode_from_unix(0o120777), MODE_SYMLINK | 0o777);
        assert_eq!(go_mode_from_unix(0o010644), MODE_NAMED_PIPE | 0o644);
        assert_eq!(
            go_mode_from_unix(0o020600),
            MODE_DEVICE | MODE_CHAR_DEVICE | 0o600
        );
        assert_eq!(go_mode_from_unix(0o104755), MODE_SETUID | 0o755);
        assert_eq!(go_mode_from_unix(0o041777), MODE_DIR | MODE_STICKY | 0o777);
        assert!(is_regular(go_mode_from_unix(0o100644)));
        assert!(!is_regular(MODE_DIR));
    }
}

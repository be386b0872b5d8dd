//! Best-effort copy of extended attributes (BuildKit logs and ignores xattr errors).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Copies every extended attribute of `src` to `dst` without following symlinks. Errors (no
/// support on the filesystem, no permission for a namespace) are ignored.
pub(crate) fn copy_xattrs(src: &Path, dst: &Path) {
    let (Ok(src), Ok(dst)) = (c_path(src), c_path(dst)) else {
        return;
    };
    let Some(names) = list(&src) else {
        return;
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = CString::new(name) else {
            continue;
        };
        if let Some(value) = get(&src, &name) {
            // SAFETY: all pointers are valid NUL-terminated strings / a live buffer.
            unsafe {
                libc::lsetxattr(
                    dst.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                );
            }
        }
    }
}

fn c_path(p: &Path) -> Result<CString, std::ffi::NulError> {
    CString::new(p.as_os_str().as_bytes())
}

/// Calls a size-probing xattr function twice: once for the size, once to fill the buffer.
fn read_sized(f: impl Fn(*mut libc::c_void, usize) -> isize) -> Option<Vec<u8>> {
    let size = f(std::ptr::null_mut(), 0);
    if size <= 0 {
        return if size == 0 { Some(Vec::new()) } else { None };
    }
    let mut buf = vec![0u8; size as usize];
    let n = f(buf.as_mut_ptr().cast(), buf.len());
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn list(path: &CString) -> Option<Vec<u8>> {
    // SAFETY: `path` is NUL-terminated and the buffer pointer/len pair comes from read_sized.
    read_sized(|buf, len| unsafe { libc::llistxattr(path.as_ptr(), buf.cast(), len) })
}

fn get(path: &CString, name: &CString) -> Option<Vec<u8>> {
    // SAFETY: as in `list`.
    read_sized(|buf, len| unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf, len) })
}

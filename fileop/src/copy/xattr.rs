//! Best-effort copy of extended attributes (BuildKit logs and ignores xattr errors).

use std::path::Path;

/// Copies every extended attribute of `src` to `dst` without following symlinks. Errors (no
/// support on the filesystem, no permission for a namespace) are ignored.
pub(crate) fn copy_xattrs(src: &Path, dst: &Path) {
    let Ok(names) = xattr::list(src) else {
        return;
    };
    for name in names {
        if let Ok(Some(value)) = xattr::get(src, &name) {
            let _ = xattr::set(dst, &name, &value);
        }
    }
}

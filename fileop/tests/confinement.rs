//! Symlinks (relative, absolute, `..`-laden) never lead an action out of its root.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::*;
use nodekit_fileop::{copy, mkdir as do_mkdir, mkfile as do_mkfile, rm as do_rm};
use nodekit_fileop::{resolve_in_root, NumericIdsOnly};

const U: NumericIdsOnly = NumericIdsOnly;

/// A sandbox whose temp dir holds `outside/secret` next to the root, and links inside the root
/// that would reach it on the host: `x -> ../../../etc`-style and absolute host paths.
fn escaping() -> Sandbox {
    let s = Sandbox::new();
    std::fs::create_dir(s.outside("outside")).unwrap();
    std::fs::write(s.outside("outside/secret"), "secret").unwrap();
    s.symlink("../outside", "up");
    s.symlink("../../../../../../../../outside", "farup");
    s.symlink(s.outside("outside").to_str().unwrap(), "abs");
    s.mkdir("d");
    s.symlink("../../outside/secret", "d/file");
    s
}

fn outside_untouched(s: &Sandbox) {
    let names: Vec<_> = std::fs::read_dir(s.outside("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"]);
    assert_eq!(
        std::fs::read_to_string(s.outside("outside/secret")).unwrap(),
        "secret"
    );
}

#[test]
fn copy_source_through_escaping_links() {
    let (src, dst) = (escaping(), Sandbox::new());
    // The absolute link names the host path of `outside`: inside the root that is a path below
    // "/" which does not exist.
    let host_outside = src.outside("outside").to_str().unwrap().to_string();
    for (link, seen) in [
        ("/up", "/outside"),
        ("/farup", "/outside"),
        ("/abs", &host_outside),
    ] {
        let mut op = cp(&format!("{link}/secret"), "/got");
        op.follow_symlink = true;
        let e = copy(&src.root, &dst.root, &op, &U).unwrap_err();
        let want = format!("lstat {seen}/secret: no such file or directory");
        assert_eq!(e.to_string(), want, "{link}");
        let mut op = cp(link, "/got");
        op.follow_symlink = true;
        assert!(copy(&src.root, &dst.root, &op, &U)
            .unwrap_err()
            .is_not_found());
    }
    let mut op = cp("/d/file", "/got");
    op.follow_symlink = true;
    assert!(copy(&src.root, &dst.root, &op, &U)
        .unwrap_err()
        .is_not_found());
    // Once the in-root target exists, that is what gets copied.
    src.write("outside/secret", "inside");
    let mut op = cp("/up/secret", "/got");
    op.follow_symlink = true;
    copy(&src.root, &dst.root, &op, &U).unwrap();
    assert_eq!(dst.read("got"), "inside");
    outside_untouched(&src);
}

#[test]
fn copy_dest_through_escaping_links() {
    let (src, dst) = (Sandbox::new(), escaping());
    src.write("f", "new");
    copy(&src.root, &dst.root, &cp("/f", "/up/secret"), &U).unwrap();
    copy(&src.root, &dst.root, &cp("/f", "/abs/"), &U).unwrap();
    copy(&src.root, &dst.root, &cp("/f", "/farup/x/y/"), &U).unwrap();
    let host_outside = dst.outside("outside").to_str().unwrap().to_string();
    assert_eq!(dst.read("outside/secret"), "new");
    assert_eq!(dst.read(&format!("{host_outside}/f")), "new");
    assert_eq!(dst.read("outside/x/y/f"), "new");
    // A symlink named by dest itself is followed inside the root (as upstream) ...
    dst.write("outside/secret", "old");
    copy(&src.root, &dst.root, &cp("/f", "/d/file"), &U).unwrap();
    assert!(dst.meta("d/file").file_type().is_symlink());
    assert_eq!(dst.read("outside/secret"), "new");
    // ... while entries below a copied directory replace links, never write through them.
    src.write("tree/file", "from tree");
    let mut op = cp("/tree", "/d");
    op.dir_copy_contents = true;
    copy(&src.root, &dst.root, &op, &U).unwrap();
    assert!(dst.meta("d/file").is_file());
    assert_eq!(dst.read("d/file"), "from tree");
    outside_untouched(&dst);
}

#[test]
fn mkdir_mkfile_rm_through_escaping_links() {
    let s = escaping();
    do_mkdir(&s.root, &mkdir("/up/newdir", 0o755, true), &U).unwrap();
    do_mkdir(&s.root, &mkdir("/abs/nd2", 0o755, true), &U).unwrap();
    do_mkfile(&s.root, &mkfile("/farup/secret", 0o644, "w"), &U).unwrap();
    do_mkfile(&s.root, &mkfile("/d/file", 0o644, "w2"), &U).unwrap();
    assert!(s.meta("outside/newdir").is_dir());
    let host_outside = s.outside("outside").to_str().unwrap().to_string();
    assert!(s.meta(&format!("{host_outside}/nd2")).is_dir());
    assert_eq!(s.read("outside/secret"), "w2");
    do_rm(&s.root, &rm("/up/secret", false, false)).unwrap();
    assert!(!s.exists("outside/secret"));
    let e = do_rm(&s.root, &rm("/abs/secret", false, false)).unwrap_err();
    assert!(e.is_not_found());
    do_rm(&s.root, &rm("/abs/*", true, true)).unwrap();
    outside_untouched(&s);
}

#[test]
fn resolve_in_root_is_confined() {
    let s = escaping();
    let p = resolve_in_root(&s.root, "/up/secret", true).unwrap();
    assert_eq!(p, s.p("outside/secret"));
    let p = resolve_in_root(&s.root, "../../up", true).unwrap();
    assert_eq!(p, s.p("outside"));
    let p = resolve_in_root(&s.root, "/abs", true).unwrap();
    assert_eq!(p, s.p(s.outside("outside").to_str().unwrap()));
    let p = resolve_in_root(&s.root, "/d/file", false).unwrap();
    assert_eq!(p, s.p("d/file"));
}

#[test]
fn symlink_loop() {
    let s = Sandbox::new();
    s.symlink("b", "a");
    s.symlink("a", "b");
    let e = do_mkdir(&s.root, &mkdir("/a/x", 0o755, true), &U).unwrap_err();
    assert_eq!(
        e.to_string(),
        "lstat /a/x: too many levels of symbolic links"
    );
}

#[test]
fn dotdot_etc_link() {
    // `ln -s ../../../etc x`: inside the root, x is /etc of the root, never the host's.
    let (src, dst) = (Sandbox::new(), Sandbox::new());
    src.symlink("../../../etc", "x");
    let mut op = cp("/x", "/got");
    op.follow_symlink = true;
    let e = copy(&src.root, &dst.root, &op, &U).unwrap_err();
    assert_eq!(e.to_string(), "lstat /etc: no such file or directory");
    let e = copy(&src.root, &dst.root, &cp("/x/passwd", "/got"), &U).unwrap_err();
    assert_eq!(
        e.to_string(),
        "lstat /etc/passwd: no such file or directory"
    );
    src.write("etc/passwd", "in-root passwd");
    copy(&src.root, &dst.root, &cp("/x/passwd", "/got"), &U).unwrap();
    assert_eq!(dst.read("got"), "in-root passwd");
    // Without followSymlink the link itself is copied, verbatim.
    copy(&src.root, &dst.root, &cp("/x", "/link"), &U).unwrap();
    assert_eq!(
        std::fs::read_link(dst.p("link")).unwrap().to_str(),
        Some("../../../etc")
    );
    // mkdir and mkfile through the copied link land in the destination root's /etc.
    do_mkdir(&dst.root, &mkdir("/link/sub", 0o755, true), &U).unwrap();
    do_mkfile(&dst.root, &mkfile("/link/sub/f", 0o644, "x"), &U).unwrap();
    assert_eq!(dst.read("etc/sub/f"), "x");
}

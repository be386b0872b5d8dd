use std::os::unix::fs::{symlink, PermissionsExt};

use super::*;

fn all(_: &Path, _: &Metadata) -> Selection {
    Selection::Include
}

fn digest(root: &Path) -> TreeDigest {
    tree_digest(root, &TreeOptions::default(), all).unwrap()
}

/// a/, a/f ("hello", 0644), a/l -> f, top (0755, "#!")
fn sample() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    fs::create_dir(root.join("a")).unwrap();
    fs::write(root.join("a/f"), "hello").unwrap();
    fs::set_permissions(root.join("a/f"), fs::Permissions::from_mode(0o644)).unwrap();
    symlink("f", root.join("a/l")).unwrap();
    fs::write(root.join("top"), "#!").unwrap();
    fs::set_permissions(root.join("top"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn node(kind: NodeKind, mode: u32) -> Node {
    Node {
        kind,
        mode,
        uid: 0,
        gid: 0,
    }
}

fn file(contents: &str, mode: u32) -> Node {
    node(
        NodeKind::File {
            digest: *blake3::hash(contents.as_bytes()).as_bytes(),
        },
        mode,
    )
}

fn entry(path: &str, node: Node) -> Entry {
    Entry {
        path: path.into(),
        node,
    }
}

/// Pins the tree encoding (the value was also computed from the module doc's spec by an
/// independent implementation).
#[test]
fn golden_digest_of_entries() {
    let entries = vec![
        entry("top", file("#!", 0o755)),
        entry("a", node(NodeKind::Dir, 0o755)),
        entry("a/f", file("hello", 0o644)),
        entry(
            "a/l",
            node(
                NodeKind::Symlink {
                    target: b"f".to_vec(),
                },
                0o777,
            ),
        ),
        entry(
            "dev",
            node(NodeKind::CharDevice { major: 1, minor: 3 }, 0o666),
        ),
    ];
    let d = tree_digest_of_entries(entries).unwrap();
    let empty = tree_digest_of_entries(Vec::new()).unwrap();
    assert_eq!(d.to_string(), GOLDEN_TREE);
    assert_eq!(empty.to_string(), GOLDEN_EMPTY_TREE);
}

const GOLDEN_TREE: &str = "629ff40cc1115a83b74f1105fe28e27f9080a237c1d50a2df69ed5d068af8ae7";
const GOLDEN_EMPTY_TREE: &str = "c43f45dcca83820da34ff6550f6e79e1ac3f2c13632d33a8954a86fdc8d606ed";

#[test]
fn disk_and_entries_agree() {
    let d = sample();
    let (uid, gid) = {
        let m = fs::metadata(d.path()).unwrap();
        (m.uid(), m.gid())
    };
    let own = |mut n: Node| {
        n.uid = uid;
        n.gid = gid;
        n
    };
    let entries = vec![
        entry("a", own(node(NodeKind::Dir, 0o755))),
        entry("a/f", own(file("hello", 0o644))),
        entry(
            "a/l",
            own(node(
                NodeKind::Symlink {
                    target: b"f".to_vec(),
                },
                0o777,
            )),
        ),
        entry("top", own(file("#!", 0o755))),
    ];
    assert_eq!(digest(d.path()), tree_digest_of_entries(entries).unwrap());
}

#[test]
fn order_of_entries_does_not_matter() {
    let a = vec![
        entry("x", node(NodeKind::Dir, 0o755)),
        entry("x/1", file("1", 0o644)),
        entry("y", file("y", 0o644)),
    ];
    let mut b = a.clone();
    b.reverse();
    assert_eq!(
        tree_digest_of_entries(a).unwrap(),
        tree_digest_of_entries(b).unwrap()
    );
}

#[test]
fn mtime_does_not_matter_but_content_mode_and_links_do() {
    let d = sample();
    let base = digest(d.path());
    let f = d.path().join("a/f");
    let file = fs::File::options().write(true).open(&f).unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    drop(file);
    assert_eq!(digest(d.path()), base, "mtime changed");

    fs::write(&f, "hellO").unwrap();
    let content = digest(d.path());
    assert_ne!(content, base);
    fs::write(&f, "hello").unwrap();
    assert_eq!(digest(d.path()), base);

    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    assert_ne!(digest(d.path()), base, "mode");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();

    fs::remove_file(d.path().join("a/l")).unwrap();
    symlink("top", d.path().join("a/l")).unwrap();
    assert_ne!(digest(d.path()), base, "symlink target");
}

#[test]
fn names_and_empty_dirs_matter() {
    let d = sample();
    let base = digest(d.path());
    fs::create_dir(d.path().join("empty")).unwrap();
    assert_ne!(digest(d.path()), base);
    fs::remove_dir(d.path().join("empty")).unwrap();
    fs::rename(d.path().join("top"), d.path().join("top2")).unwrap();
    assert_ne!(digest(d.path()), base);
}

#[test]
fn moving_a_file_between_dirs_changes_the_digest() {
    let a = vec![
        entry("d", node(NodeKind::Dir, 0o755)),
        entry("d/f", file("x", 0o644)),
        entry("e", node(NodeKind::Dir, 0o755)),
    ];
    let b = vec![
        entry("d", node(NodeKind::Dir, 0o755)),
        entry("e", node(NodeKind::Dir, 0o755)),
        entry("e/f", file("x", 0o644)),
    ];
    assert_ne!(
        tree_digest_of_entries(a).unwrap(),
        tree_digest_of_entries(b).unwrap()
    );
}

#[test]
fn uid_gid_and_device_numbers_matter() {
    let base = node(NodeKind::CharDevice { major: 1, minor: 3 }, 0o666);
    let d = |n: Node| tree_digest_of_entries(vec![entry("n", n)]).unwrap();
    let b = d(base.clone());
    assert_ne!(
        d(Node {
            uid: 1,
            ..base.clone()
        }),
        b
    );
    assert_ne!(
        d(Node {
            gid: 1,
            ..base.clone()
        }),
        b
    );
    assert_ne!(
        d(node(NodeKind::CharDevice { major: 1, minor: 5 }, 0o666)),
        b
    );
    assert_ne!(
        d(node(NodeKind::BlockDevice { major: 1, minor: 3 }, 0o666)),
        b
    );
    assert_ne!(
        d(node(NodeKind::Fifo, 0o666)),
        d(node(NodeKind::Socket, 0o666))
    );
}

#[test]
fn selection_excludes_and_descends() {
    let d = sample();
    fs::create_dir_all(d.path().join("node_modules/x")).unwrap();
    fs::write(d.path().join("node_modules/x/y"), "big").unwrap();
    let base = {
        let d2 = sample();
        digest(d2.path())
    };
    let skip_modules = |p: &Path, _: &Metadata| {
        if p.starts_with("node_modules") {
            Selection::Exclude
        } else {
            Selection::Include
        }
    };
    let got = tree_digest(d.path(), &TreeOptions::default(), skip_modules).unwrap();
    assert_eq!(got, base);

    // Only `a/f`: directories are walked into, and kept only when something inside is.
    let only_f = |p: &Path, m: &Metadata| {
        if m.is_dir() {
            Selection::Descend
        } else if p == Path::new("a/f") {
            Selection::Include
        } else {
            Selection::Exclude
        }
    };
    let got = tree_digest(d.path(), &TreeOptions::default(), only_f).unwrap();
    let m = fs::metadata(d.path().join("a")).unwrap();
    let want = tree_digest_of_entries(vec![
        entry(
            "a",
            Node {
                uid: m.uid(),
                gid: m.gid(),
                ..node(NodeKind::Dir, 0o755)
            },
        ),
        entry(
            "a/f",
            Node {
                uid: m.uid(),
                gid: m.gid(),
                ..file("hello", 0o644)
            },
        ),
    ])
    .unwrap();
    assert_eq!(got, want);
}

#[test]
fn thread_count_does_not_change_the_digest() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..50 {
        fs::write(d.path().join(format!("f{i}")), vec![i as u8; i * 1000]).unwrap();
    }
    let one = tree_digest(d.path(), &TreeOptions { threads: 1 }, all).unwrap();
    let four = tree_digest(d.path(), &TreeOptions { threads: 4 }, all).unwrap();
    assert_eq!(one, four);
}

#[test]
fn symlinks_are_not_followed() {
    let d = sample();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "1").unwrap();
    symlink(outside.path(), d.path().join("out")).unwrap();
    let before = digest(d.path());
    fs::write(outside.path().join("secret"), "2").unwrap();
    assert_eq!(digest(d.path()), before);
}

#[test]
fn bad_entry_lists_are_errors() {
    let missing_parent = vec![entry("a/b", file("x", 0o644))];
    let dup = vec![entry("a", file("x", 0o644)), entry("a", file("y", 0o644))];
    let under_file = vec![entry("a", file("x", 0o644)), entry("a/b", file("y", 0o644))];
    let absolute = vec![entry("/a", file("x", 0o644))];
    let dotdot = vec![entry("../a", file("x", 0o644))];
    for (name, entries) in [
        ("missing parent", missing_parent),
        ("duplicate", dup),
        ("under a file", under_file),
        ("absolute", absolute),
        ("dotdot", dotdot),
    ] {
        let e = tree_digest_of_entries(entries).unwrap_err();
        assert!(e.to_string().contains("invalid tree entry"), "{name}: {e}");
    }
}

#[test]
fn unreadable_roots_are_errors() {
    let e = tree_digest(Path::new("/no/such/dir"), &TreeOptions::default(), all).unwrap_err();
    assert!(e.to_string().contains("/no/such/dir"), "{e}");
}

#[test]
fn device_numbers_split_like_linux() {
    // glibc's makedev(major, minor)
    let makedev = |major: u64, minor: u64| {
        ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
    };
    assert_eq!(split_dev(0x801), (8, 1));
    assert_eq!(split_dev(makedev(8, 1)), (8, 1));
    assert_eq!(split_dev(makedev(259, 65536)), (259, 65536));
    assert_eq!(
        split_dev(makedev(4095 + 4096, 1 << 19)),
        (4095 + 4096, 1 << 19)
    );
}

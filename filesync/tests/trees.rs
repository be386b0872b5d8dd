//! Whole-tree syncs between a real sender and a real receiver.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_dir() {
    let env = Env::new();
    let summary = sync(&env).await;
    assert!(summary.entries.is_empty());
    assert_eq!(summary.files_transferred, 0);
    assert!(env.dest.is_dir());
    assert_eq!(std::fs::read_dir(&env.dest).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_files() {
    let env = Env::new();
    for d in 0..100 {
        for f in 0..100 {
            env.write(&format!("d{d:03}/f{f:03}.txt"), &format!("file {d} {f}"));
        }
    }
    let summary = sync(&env).await;
    assert_eq!(summary.files_transferred, 10_000);
    assert_eq!(summary.entries.len(), 10_100);
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_in_many_chunks() {
    let env = Env::new();
    let content: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    env.write("big", &content);
    let summary = sync(&env).await;
    assert_eq!(summary.bytes_transferred, 200_000);
    assert_eq!(
        summary.entries["big"].hash,
        Some(blake3::hash(content.as_bytes()))
    );
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_stored_not_followed() {
    let env = Env::new();
    env.write("dir/file", "x");
    symlink("../sibling/secret", env.src.join("up")).unwrap();
    symlink("/etc/passwd", env.src.join("abs")).unwrap();
    symlink("dir", env.src.join("to-dir")).unwrap();
    symlink("missing", env.src.join("dangling")).unwrap();
    symlink("../../../../outside", env.src.join("dir/deep")).unwrap();
    let before = env.outside();
    let summary = sync(&env).await;
    assert_same_tree(&env.src, &env.dest);
    assert_eq!(
        std::fs::read_link(env.dest.join("up")).unwrap().to_str(),
        Some("../sibling/secret")
    );
    assert_eq!(summary.entries["abs"].linkname, "/etc/passwd");
    assert_eq!(before, env.outside(), "nothing outside dest may change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardlinks_share_an_inode() {
    let env = Env::new();
    let first = env.write("a/first", "shared content");
    std::fs::create_dir(env.src.join("b")).unwrap();
    std::fs::hard_link(&first, env.src.join("b/second")).unwrap();
    std::fs::hard_link(&first, env.src.join("third")).unwrap();
    let summary = sync(&env).await;
    // Only the first path is transferred; the others are links to it.
    assert_eq!(summary.transferred, ["a/first"]);
    assert_eq!(summary.entries["b/second"].linkname, "a/first");
    let ino = |p: &str| std::fs::metadata(env.dest.join(p)).unwrap().ino();
    assert_eq!(ino("a/first"), ino("b/second"));
    assert_eq!(ino("a/first"), ino("third"));
    assert_same_tree(&env.src, &env.dest);
    // A second sync keeps everything and still links.
    let again = sync(&env).await;
    assert_eq!(again.files_transferred, 0);
    assert_eq!(ino("a/first"), ino("third"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_names() {
    let env = Env::new();
    env.write("héllo wörld/日本語.txt", "konnichiwa");
    env.write("emoji ☃ 🎉", "snow");
    env.write("spaces and\ttabs", "t");
    symlink("héllo wörld/日本語.txt", env.src.join("lien→")).unwrap();
    let summary = sync(&env).await;
    assert!(summary.entries.contains_key("héllo wörld/日本語.txt"));
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_bits_owner_and_times() {
    let env = Env::new();
    let modes = [
        ("setuid", 0o4755),
        ("setgid", 0o2750),
        ("exec", 0o755),
        ("private", 0o600),
        ("ro", 0o444),
    ];
    for (name, mode) in modes {
        let p = env.write(&format!("files/{name}"), name);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for (name, mode) in [("sticky", 0o1777), ("shared", 0o2775), ("readonly", 0o555)] {
        let p = env.src.join(name);
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("inside"), "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    if is_root() {
        nix::unistd::chown(
            &env.src.join("files/exec"),
            Some(1234.into()),
            Some(5678.into()),
        )
        .unwrap();
        // chown clears setuid: set it again.
        let p = env.src.join("files/exec");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
    }
    nix::unistd::mkfifo(
        &env.src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    sync(&env).await;
    assert_same_tree(&env.src, &env.dest);
    let mode = |p: &str| std::fs::metadata(env.dest.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("files/setuid"), 0o4755);
    assert_eq!(mode("sticky"), 0o1777);
    // A second sync into read-only directories works too.
    std::fs::write(env.src.join("files/new"), "n").unwrap();
    sync(&env).await;
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_owner_sends_root_ownership() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let p = env.write("owned", "x");
    nix::unistd::chown(&p, Some(1000.into()), Some(1000.into())).unwrap();
    let opts = nodekit_filesync::SendOptions {
        reset_owner: true,
        ..env.send_options()
    };
    let (r, s) = sync_with(opts, env.receive_options()).await;
    s.unwrap();
    let summary = r.unwrap();
    assert_eq!(
        (summary.entries["owned"].uid, summary.entries["owned"].gid),
        (0, 0)
    );
    assert_eq!(std::fs::metadata(env.dest.join("owned")).unwrap().uid(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_errors_reach_the_receiver() {
    let env = Env::new();
    let opts = nodekit_filesync::SendOptions {
        root: env.tmp.path().join("does-not-exist"),
        ..Default::default()
    };
    let (r, s) = sync_with(opts, env.receive_options()).await;
    assert!(s.is_err());
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("error from sender") && err.contains("does-not-exist"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_file_inside_dest_is_refused() {
    let env = Env::new();
    let recv = nodekit_filesync::ReceiveOptions::new(&env.dest, env.dest.join("state.json"));
    let (r, _) = sync_with(env.send_options(), recv).await;
    assert!(
        matches!(r, Err(nodekit_filesync::SyncError::InvalidOptions(_))),
        "{r:?}"
    );
}

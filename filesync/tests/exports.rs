//! What a local exporter needs of DiffCopy: several directories sent as named top-level
//! directories (the platform split), and a receive that merges into a destination without
//! deleting what the sender does not list.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{sync_with, Env};
use nodekit_filesync::{SendOptions, SyncError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_roots_arrive_as_top_level_directories() {
    let env = Env::new();
    let amd = env.tmp.path().join("amd");
    let arm = env.tmp.path().join("arm");
    for (dir, text) in [(&amd, "x86"), (&arm, "aarch64")] {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/arch"), text).unwrap();
        std::fs::set_permissions(dir.join("bin/arch"), PermissionsExt::from_mode(0o755)).unwrap();
    }
    let opts = SendOptions {
        // Given out of order: they are sent sorted, as the receiver's validator wants.
        named_roots: vec![
            ("linux_arm64".into(), arm.clone()),
            ("linux_amd64".into(), amd.clone()),
        ],
        ..Default::default()
    };
    let (r, s) = sync_with(opts, env.receive_options()).await;
    s.unwrap();
    r.unwrap();
    let read = |p: &str| std::fs::read_to_string(env.dest.join(p)).unwrap();
    assert_eq!(read("linux_amd64/bin/arch"), "x86");
    assert_eq!(read("linux_arm64/bin/arch"), "aarch64");
    let mode = |p: &str| {
        std::fs::metadata(env.dest.join(p))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode("linux_arm64/bin/arch") & 0o777, 0o755);
    assert_eq!(mode("linux_arm64") & 0o777, 0o755);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_roots_refuse_patterns_and_bad_names() {
    let env = Env::new();
    for (name, patterns) in [
        ("ok", vec!["*.txt".to_string()]),
        ("a/b", vec![]),
        ("..", vec![]),
    ] {
        let opts = SendOptions {
            named_roots: vec![(name.into(), env.src.clone())],
            include_patterns: patterns,
            ..Default::default()
        };
        let (_, s) = sync_with(opts, env.receive_options()).await;
        assert!(
            matches!(s, Err(SyncError::InvalidOptions(_))),
            "{name}: {s:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_unlisted_merges_into_the_destination() {
    let env = Env::new();
    env.write("new.txt", "new");
    env.write("dir/replaced", "from the sender");
    std::fs::create_dir_all(env.dest.join("dir")).unwrap();
    std::fs::write(env.dest.join("dir/replaced"), "old").unwrap();
    std::fs::write(env.dest.join("dir/kept"), "mine").unwrap();
    std::fs::write(env.dest.join("kept.txt"), "mine").unwrap();
    let mut recv = env.receive_options();
    recv.keep_unlisted = true;
    let (r, s) = sync_with(env.send_options(), recv).await;
    s.unwrap();
    assert!(r.unwrap().deleted.is_empty());
    let read = |p: &str| std::fs::read_to_string(env.dest.join(p)).unwrap();
    assert_eq!(read("new.txt"), "new");
    assert_eq!(read("dir/replaced"), "from the sender");
    assert_eq!(read("dir/kept"), "mine");
    assert_eq!(read("kept.txt"), "mine");

    // Without it, the same receive deletes them: the option is what keeps them.
    let (r, s) = sync_with(env.send_options(), env.receive_options()).await;
    s.unwrap();
    let mut deleted = r.unwrap().deleted;
    deleted.sort();
    assert_eq!(deleted, ["dir/kept", "kept.txt"]);
}

//! Repeated syncs into the same destination.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use std::os::unix::fs::symlink;

use common::*;

fn populate(env: &Env) {
    env.write("a.txt", "alpha");
    env.write("dir/b.txt", "bravo");
    env.write("dir/sub/c.txt", "charlie");
    env.write("other/d.txt", "delta");
    symlink("dir/b.txt", env.src.join("link")).unwrap();
}

/// Sets a file's mtime so a rewrite is visible even within one clock tick.
fn touch_later(path: &std::path::Path) {
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_second_sync_requests_nothing() {
    let env = Env::new();
    populate(&env);
    let first = sync(&env).await;
    assert_eq!(first.files_transferred, 4);
    let second = sync(&env).await;
    assert_eq!(
        second.files_transferred, 0,
        "transferred {:?}",
        second.transferred
    );
    assert_eq!(second.bytes_transferred, 0);
    assert_eq!(second.files_reused, 4);
    assert!(second.deleted.is_empty());
    assert_eq!(first.digest, second.digest);
    assert_eq!(first.entries, second.entries);
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_file_only_rerequests_that_file() {
    let env = Env::new();
    populate(&env);
    let first = sync(&env).await;
    let changed = env.write("dir/sub/c.txt", "charlie, changed");
    touch_later(&changed);
    let second = sync(&env).await;
    assert_eq!(second.transferred, ["dir/sub/c.txt"]);
    assert_eq!(second.files_reused, 3);
    assert_ne!(first.digest, second.digest);
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_entries_are_removed_on_resync() {
    let env = Env::new();
    populate(&env);
    sync(&env).await;
    std::fs::remove_file(env.src.join("a.txt")).unwrap();
    std::fs::remove_dir_all(env.src.join("dir/sub")).unwrap();
    std::fs::remove_dir_all(env.src.join("other")).unwrap();
    // A type change: the symlink becomes a directory.
    std::fs::remove_file(env.src.join("link")).unwrap();
    env.write("link/inner", "now a dir");
    let summary = sync(&env).await;
    assert_eq!(summary.deleted, ["dir/sub", "a.txt", "other"]);
    assert_eq!(summary.transferred, ["link/inner"]);
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_edits_in_dest_are_repaired() {
    let env = Env::new();
    populate(&env);
    let first = sync(&env).await;
    // Someone edits the copy: same size and mtime, different content.
    let copy = env.dest.join("a.txt");
    let mtime = std::fs::metadata(&copy).unwrap().modified().unwrap();
    std::fs::write(&copy, "ALPHA").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::write(env.dest.join("stray"), "not sent").unwrap();
    let second = sync(&env).await;
    assert_eq!(second.transferred, ["a.txt"]);
    assert_eq!(second.deleted, ["stray"]);
    assert_eq!(first.digest, second.digest);
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_state_file_means_full_transfer_same_digest() {
    let env = Env::new();
    populate(&env);
    let first = sync(&env).await;
    std::fs::remove_file(&env.state).unwrap();
    let second = sync(&env).await;
    assert_eq!(second.files_transferred, 4);
    assert_eq!(first.digest, second.digest);
    assert_same_tree(&env.src, &env.dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_ignores_mtime_and_transport() {
    let env = Env::new();
    populate(&env);
    let first = sync(&env).await;
    touch_later(&env.src.join("a.txt"));
    let second = sync(&env).await;
    assert_eq!(second.transferred, ["a.txt"]);
    assert_eq!(first.digest, second.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_planted_in_dest_is_replaced_not_followed() {
    let env = Env::new();
    env.write("d/x", "inside");
    std::fs::create_dir(&env.dest).unwrap();
    symlink(&env.sibling, env.dest.join("d")).unwrap();
    let before = env.outside();
    sync(&env).await;
    assert_same_tree(&env.src, &env.dest);
    assert_eq!(before, env.outside(), "the sibling must be untouched");
}

/// Syncs with the receiver told that `dest` holds the tree `trusted`.
async fn sync_trusting(env: &Env, trusted: &str) -> nodekit_filesync::ReceiveSummary {
    let recv = env.receive_options().trusting(trusted);
    let (r, s) = sync_with(env.send_options(), recv).await;
    s.expect("send");
    r.expect("receive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_listing_over_a_trusted_base_never_touches_dest() {
    let env = Env::new();
    populate(&env);
    let first = sync(&env).await;
    // Moved away: if the receiver looked at dest, it would have to rebuild it.
    let moved = env.tmp.path().join("moved");
    std::fs::rename(&env.dest, &moved).unwrap();
    let second = sync_trusting(&env, &first.digest).await;
    assert!(second.unchanged);
    assert_eq!(second.digest, first.digest);
    assert_eq!((second.files_reused, second.files_transferred), (4, 0));
    assert!(second.entries.is_empty());
    assert!(!env.dest.exists(), "dest was touched");
    std::fs::rename(&moved, &env.dest).unwrap();

    // Any change in the listing takes the ordinary way, replaying what was held.
    let changed = env.write("dir/b.txt", "bravo, changed");
    touch_later(&changed);
    let third = sync_trusting(&env, &first.digest).await;
    assert!(!third.unchanged);
    assert_eq!(third.transferred, ["dir/b.txt"]);
    assert_same_tree(&env.src, &env.dest);
    // The record now pairs the new listing with the new tree only.
    let again = sync_trusting(&env, &third.digest).await;
    assert!(again.unchanged);
    let stale = sync_trusting(&env, &first.digest).await;
    assert!(
        !stale.unchanged,
        "an old tree must not be trusted for a new listing"
    );
    assert_eq!(stale.digest, third.digest);
}

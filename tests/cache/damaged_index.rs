//! A damaged cache index at start: nodekitd stops with an error naming the file and what to do,
//! and leaves the file as it was. The documented recovery (move the file aside, start again)
//! gives an empty index, the old index's cache leases released, and builds that work. An index
//! another nodekitd holds stops a second one the same way.

use std::path::Path;

use nodekit_test_support::{leases_labelled, TestDaemon, TestEnv};
use nodekitd::worker::cache_leases::CACHE_OWNER_LABEL;

use crate::common::{build_dockerfile, context, unique};
use crate::crash::{assert_consistent, owner, release_cache_leases};
use crate::process::run_to_exit;

#[tokio::test]
async fn a_damaged_index_stops_the_daemon_with_the_way_out_which_works() {
    let root = tempfile::tempdir().expect("a root");
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE > /nonce\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    let nonce = unique();
    let args = [("NONCE", nonce.as_str())];
    let process = crate::process::start(root.path()).await;
    let daemon = TestDaemon::attach(&process.addr, root.path());
    let built = build_dockerfile(&daemon, dir.path(), &args, None).await;
    built.result.as_ref().expect("the first build");
    process.terminate();
    let owner = owner(root.path());
    assert!(!leases_labelled(CACHE_OWNER_LABEL, &owner).is_empty());

    let index = root.path().join("cache/index.redb");
    damage(&index);
    let damaged = std::fs::read(&index).expect("the damaged index");
    let (status, log) = run_to_exit(root.path());
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains(&index.display().to_string()), "{log}");
    assert!(log.contains("move it aside"), "{log}");
    assert_eq!(
        std::fs::read(&index).expect("the index"),
        damaged,
        "left as it was"
    );

    std::fs::rename(&index, index.with_extension("redb.damaged")).expect("moved aside");
    let process = crate::process::start(root.path()).await;
    assert!(
        leases_labelled(CACHE_OWNER_LABEL, &owner).is_empty(),
        "the old index's cache leases are released"
    );
    let rebuilt = build_dockerfile(&daemon, dir.path(), &args, None).await;
    rebuilt.result.as_ref().expect("a build on the new index");
    assert!(
        rebuilt.steps().iter().all(|s| !s.cached),
        "nothing is cached any more: {:?}",
        rebuilt.ran()
    );
    process.terminate();
    assert!(assert_consistent(root.path(), &TestEnv::get().namespace) > 0);
    release_cache_leases(root.path(), &TestEnv::get().namespace);
}

/// A file whose header opens but one of whose records does not decode stops the daemon too,
/// before it serves a build: the start's reconciliation reads every record once.
#[tokio::test]
async fn a_damaged_record_stops_the_daemon_before_it_serves() {
    let root = tempfile::tempdir().expect("a root");
    let dir = context(
        &format!(
            "FROM {}\nRUN echo {} > /f\n",
            TestEnv::get().local_image,
            unique()
        ),
        &[],
    );
    let process = crate::process::start(root.path()).await;
    let daemon = TestDaemon::attach(&process.addr, root.path());
    let built = build_dockerfile(&daemon, dir.path(), &[], None).await;
    built.result.as_ref().expect("the first build");
    process.terminate();

    let index = root.path().join("cache/index.redb");
    damage_a_record(&index);
    let (status, log) = run_to_exit(root.path());
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains(&index.display().to_string()), "{log}");
    assert!(
        log.contains("corrupt") && log.contains("move it aside"),
        "{log}"
    );
    assert!(!log.contains("containerd worker ready"), "{log}");
    release_cache_leases(root.path(), &TestEnv::get().namespace);
}

/// Replaces the first record's bytes with some that do not decode.
fn damage_a_record(index: &Path) {
    use redb::ReadableTable;
    // The index's records table, as cachestore names it.
    const RECORDS: redb::TableDefinition<&[u8; 32], &[u8]> = redb::TableDefinition::new("records");
    let db = redb::Database::create(index).expect("the index opens");
    let txn = db.begin_write().expect("a write");
    {
        let mut records = txn.open_table(RECORDS).expect("the records");
        let first = {
            let mut entries = records.iter().expect("records");
            let (key, _) = entries.next().expect("a record").expect("readable");
            *key.value()
        };
        let garbage: &[u8] = &[1, 0xff, 0xff];
        records.insert(&first, garbage).expect("damaged");
    }
    txn.commit().expect("committed");
}

/// Overwrites the start of the file (redb's header: its magic number and the pointers to its
/// trees) with garbage, as a bad disk block would.
fn damage(index: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(index)
        .expect("the index");
    file.seek(SeekFrom::Start(0)).expect("seek");
    file.write_all(&[0xa5; 512]).expect("damaged");
}

/// A second nodekitd started on a root in use stops at the index the first holds, naming it,
/// and leaves the first serving on it (it used to move the first's index aside).
#[tokio::test]
async fn a_second_daemon_on_the_same_root_stops_and_leaves_the_first_alone() {
    let root = tempfile::tempdir().expect("a root");
    let first = crate::process::start(root.path()).await;
    let index = root.path().join("cache/index.redb");
    let (status, log) = run_to_exit(root.path());
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains(&index.display().to_string()), "{log}");
    assert!(index.exists(), "the first daemon's index is where it was");
    let dir = context(&format!("FROM {}\n", TestEnv::get().local_image), &[]);
    let daemon = TestDaemon::attach(&first.addr, root.path());
    let built = build_dockerfile(&daemon, dir.path(), &[], None).await;
    built
        .result
        .as_ref()
        .expect("the first daemon still builds");
    first.terminate();
    release_cache_leases(root.path(), &TestEnv::get().namespace);
}

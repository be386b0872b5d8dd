//! Hostile or broken packet streams: each must be refused with a clear
//! error, and nothing outside `dest` may be written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;

use common::*;
use nodekit_filesync::SyncError;
use nodekit_proto::fsutil::types::packet::PacketType;
use nodekit_proto::fsutil::types::Packet;

/// Runs `packets` into a fresh receiver; returns the error, after checking
/// that the sibling directory is untouched and an ERR went back.
async fn refused(packets: Vec<Packet>) -> SyncError {
    let env = Env::new();
    let before = env.outside();
    let (result, sent) = receive_crafted(&env, packets).await;
    let err = result.expect_err("the stream must be refused");
    assert_eq!(
        before,
        env.outside(),
        "nothing outside dest may change ({err})"
    );
    let last = sent.last().expect("an ERR packet");
    assert_eq!(last.r#type, PacketType::PacketErr as i32);
    assert_eq!(String::from_utf8_lossy(&last.data), err.to_string());
    err
}

fn assert_mentions(err: &SyncError, path: &str) {
    assert!(
        err.to_string().contains(path),
        "error {err:?} should name {path:?}"
    );
}

#[tokio::test]
async fn path_traversal() {
    for path in ["../x", "a/../../x", "..", "a/.."] {
        let mut stats = vec![dir("a")];
        stats.push(file(path, 1));
        let err = refused(listing(stats)).await;
        assert!(
            matches!(err, SyncError::InvalidPath { .. }),
            "{path}: {err}"
        );
        assert_mentions(&err, path);
    }
}

#[tokio::test]
async fn absolute_and_unclean_paths() {
    for path in ["/tmp/x", "/", "a//b", "./a", "a/", ""] {
        let err = refused(listing(vec![file(path, 1)])).await;
        assert!(
            matches!(err, SyncError::InvalidPath { .. }),
            "{path:?}: {err}"
        );
    }
}

#[tokio::test]
async fn file_through_a_symlink() {
    let err = refused(listing(vec![
        symlink("link", "../sibling"),
        file("link/secret", 1),
    ]))
    .await;
    assert!(matches!(err, SyncError::ParentNotDirectory { .. }), "{err}");
    assert_mentions(&err, "link/secret");
    let err = refused(listing(vec![symlink("link", "/"), dir("link/etc")])).await;
    assert!(matches!(err, SyncError::ParentNotDirectory { .. }), "{err}");
}

#[tokio::test]
async fn symlink_then_same_name_as_dir() {
    let err = refused(listing(vec![
        symlink("link", "../sibling"),
        dir("link"),
        file("link/x", 1),
    ]))
    .await;
    assert!(matches!(err, SyncError::OutOfOrder { .. }), "{err}");
}

#[tokio::test]
async fn out_of_order_entries() {
    let err = refused(listing(vec![file("b", 0), file("a", 0)])).await;
    assert!(matches!(err, SyncError::OutOfOrder { .. }), "{err}");
    assert_mentions(&err, "\"a\"");
    let err = refused(listing(vec![file("a", 0), file("a", 0)])).await;
    assert!(matches!(err, SyncError::OutOfOrder { .. }), "{err}");
    // Back into a directory the walk has already left.
    let err = refused(listing(vec![dir("a"), file("a.txt", 0), file("a/b", 0)])).await;
    assert!(matches!(err, SyncError::OutOfOrder { .. }), "{err}");
}

#[tokio::test]
async fn child_before_parent() {
    let err = refused(listing(vec![file("a/b", 0), dir("a")])).await;
    assert!(matches!(err, SyncError::MissingParent { .. }), "{err}");
    assert_mentions(&err, "a/b");
    let err = refused(listing(vec![file("a", 0), file("a/b", 0)])).await;
    assert!(matches!(err, SyncError::ParentNotDirectory { .. }), "{err}");
}

#[tokio::test]
async fn bad_hardlinks() {
    let cases = [
        vec![hardlink("a", "b"), file("b", 0)],
        vec![hardlink("a", "missing")],
        vec![dir("d"), hardlink("e", "d")],
        vec![symlink("l", "x"), hardlink("m", "l")],
        vec![file("a", 0), hardlink("b", "a"), hardlink("c", "b")],
        vec![file("a", 0), hardlink("b", "../sibling/secret")],
        vec![file("a", 0), hardlink("b", "/etc/passwd")],
    ];
    for stats in cases {
        let err = refused(listing(stats)).await;
        assert!(matches!(err, SyncError::InvalidHardlink { .. }), "{err}");
    }
}

#[tokio::test]
async fn unsupported_and_contradictory_stats() {
    let mut dev = file("null", 0);
    dev.mode = (1 << 26) | (1 << 21) | 0o666;
    assert!(matches!(
        refused(listing(vec![dev])).await,
        SyncError::UnsupportedType { .. }
    ));
    assert!(matches!(
        refused(listing(vec![file("neg", -1)])).await,
        SyncError::InvalidStat { .. }
    ));
    assert!(matches!(
        refused(listing(vec![symlink("l", "")])).await,
        SyncError::InvalidStat { .. }
    ));
}

#[tokio::test]
async fn protocol_violations() {
    let mut packets = listing(vec![file("a", 0)]);
    packets.insert(1, data_packet(7, b"never requested"));
    assert!(matches!(
        refused(packets).await,
        SyncError::UnrequestedData { id: 7 }
    ));

    let mut packets = listing(vec![]);
    packets.push(stat_packet(Some(file("late", 0))));
    assert!(matches!(refused(packets).await, SyncError::Protocol(_)));

    let fin = Packet {
        r#type: PacketType::PacketFin as i32,
        ..Default::default()
    };
    let mut packets = listing(vec![file("a", 1)]);
    packets.push(fin);
    assert!(matches!(refused(packets).await, SyncError::Protocol(_)));

    let unknown = Packet {
        r#type: 42,
        ..Default::default()
    };
    assert!(matches!(
        refused(vec![unknown]).await,
        SyncError::Protocol(_)
    ));
}

#[tokio::test]
async fn sender_error_and_early_close() {
    let env = Env::new();
    let err_packet = Packet {
        r#type: PacketType::PacketErr as i32,
        data: b"disk on fire".to_vec().into(),
        ..Default::default()
    };
    let (result, sent) =
        receive_crafted(&env, vec![stat_packet(Some(file("a", 0))), err_packet]).await;
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), "error from sender: disk on fire");
    assert!(
        sent.iter()
            .all(|p| p.r#type != PacketType::PacketErr as i32),
        "no ERR echo"
    );

    let (result, _) = receive_crafted(&env, vec![stat_packet(Some(dir("a")))]).await;
    assert!(matches!(result, Err(SyncError::Closed(_))), "{result:?}");
}

#[tokio::test]
async fn well_formed_crafted_stream_is_accepted() {
    // The same machinery accepts a correct stream: a file, its DATA after
    // the REQ, a hardlink, and the FIN exchange.
    let env = Env::new();
    let mut packets = listing(vec![dir("d"), file("d/f", 5), hardlink("h", "d/f")]);
    packets.push(data_packet(1, b"hello"));
    packets.push(data_packet(1, b""));
    packets.push(Packet {
        r#type: PacketType::PacketFin as i32,
        ..Default::default()
    });
    let (result, sent) = receive_crafted(&env, packets).await;
    let summary = result.unwrap();
    assert_eq!(summary.transferred, ["d/f"]);
    let kinds: Vec<i32> = sent.iter().map(|p| p.r#type).collect();
    assert_eq!(
        kinds,
        [PacketType::PacketReq as i32, PacketType::PacketFin as i32]
    );
    assert_eq!(sent[0].id, 1);
    assert_eq!(std::fs::read(env.dest.join("h")).unwrap(), b"hello");
}

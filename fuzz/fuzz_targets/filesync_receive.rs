//! The file-sync receiver (the daemon side of a `local://` source) fed a stream of packets a
//! client could send, into a real temporary directory: an error is fine; a panic, or anything
//! written, removed or changed outside the destination, is a bug.
//!
//! The input is a sequence of length-delimited protobuf `Packet`s (what the test suite's crafted
//! streams are recorded as); decoding stops at the first one that does not decode.
#![no_main]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nodekit_filesync::{receive, ReceiveOptions};
use nodekit_proto::fsutil::types::Packet;
use prost::Message;
use tokio::sync::mpsc;

/// More packets than this add nothing the first ones did not reach, only time per run.
const MAX_PACKETS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let packets = decode_packets(data);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let sibling = tmp.path().join("sibling");
    std::fs::create_dir(&sibling).expect("mkdir sibling");
    std::fs::write(sibling.join("secret"), "keep me").expect("write secret");
    let before = outside(tmp.path());
    let mut options = ReceiveOptions::new(tmp.path().join("dest"), tmp.path().join("state/dest.json"));
    options.apply_owner = false;
    runtime().block_on(async {
        // Room for every answer: the receiver must never wait on this side.
        let (answers, _kept) = mpsc::channel(4 * MAX_PACKETS + 16);
        let incoming = futures::stream::iter(packets.into_iter().map(Ok::<_, Infallible>));
        let _ = receive(options, incoming, answers).await;
    });
    assert_eq!(before, outside(tmp.path()), "the receiver touched something outside dest");
});

fn decode_packets(mut data: &[u8]) -> Vec<Packet> {
    let mut packets = Vec::new();
    while !data.is_empty() && packets.len() < MAX_PACKETS {
        match Packet::decode_length_delimited(&mut data) {
            Ok(packet) => packets.push(packet),
            Err(_) => break,
        }
    }
    packets
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Every entry under `root` but the destination and the state sidecar's directory, with what
/// would show a change: kind, mode, size, mtime, link target, content of small files.
fn outside(root: &Path) -> BTreeMap<String, (u32, u64, i64, Vec<u8>)> {
    let mut found = BTreeMap::new();
    walk(root, root, &mut found);
    found.retain(|path, _| !(path.starts_with("dest") || path.starts_with("state")));
    found
}

fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<String, (u32, u64, i64, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let content = if meta.is_symlink() {
            std::fs::read_link(&path).map(|t| t.into_os_string().into_encoded_bytes()).unwrap_or_default()
        } else if meta.is_file() {
            std::fs::read(&path).unwrap_or_default()
        } else {
            Vec::new()
        };
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        found.insert(rel, (meta.mode(), meta.size(), meta.mtime(), content));
        if meta.is_dir() {
            walk(root, &path, found);
        }
    }
}

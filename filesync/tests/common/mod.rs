//! Helpers shared by the integration tests: temp trees, an in-process
//! sender/receiver pair connected by channels, crafted packet streams.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use nodekit_filesync::{
    receive, send, ReceiveOptions, ReceiveSummary, SendOptions, SendSummary, SyncError,
};
use nodekit_proto::fsutil::types::packet::PacketType;
use nodekit_proto::fsutil::types::{Packet, Stat};
use prost::Message;
use tokio::sync::mpsc;

/// `src` to send, `dest` to receive into, the sidecar `state`, and a
/// `sibling` directory next to `dest` that nothing may touch.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub src: PathBuf,
    pub dest: PathBuf,
    pub state: PathBuf,
    pub sibling: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let sibling = tmp.path().join("sibling");
        std::fs::create_dir(&src).unwrap();
        std::fs::create_dir(&sibling).unwrap();
        std::fs::write(sibling.join("secret"), "keep me").unwrap();
        Env {
            dest: tmp.path().join("dest"),
            state: tmp.path().join("state/dest.json"),
            src,
            sibling,
            tmp,
        }
    }

    pub fn send_options(&self) -> SendOptions {
        SendOptions {
            root: self.src.clone(),
            ..Default::default()
        }
    }

    pub fn receive_options(&self) -> ReceiveOptions {
        ReceiveOptions::new(&self.dest, &self.state)
    }

    /// Writes `content` at `rel` under `src`, creating parents.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.src.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Everything under the temp dir except `src`, `dest` and the sidecar.
    pub fn outside(&self) -> BTreeMap<String, Node> {
        let mut all = snapshot(self.tmp.path());
        all.retain(|p, _| {
            !["src", "dest", "state"]
                .iter()
                .any(|skip| p.starts_with(skip))
        });
        all
    }
}

/// Runs a sender on `opts` and a receiver on `recv`, connected in-process.
pub async fn sync_with(
    opts: SendOptions,
    recv: ReceiveOptions,
) -> (
    Result<ReceiveSummary, SyncError>,
    Result<SendSummary, SyncError>,
) {
    let (to_receiver, receiver_in) = mpsc::channel(16);
    let (to_sender, sender_in) = mpsc::channel(16);
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = sent.clone();
    let incoming = stream(receiver_in).inspect(move |p| {
        if let Ok(p) = p {
            seen.lock().unwrap().push(p.clone());
        }
    });
    let results = tokio::join!(
        receive(recv, incoming, to_sender),
        send(opts, stream(sender_in), to_receiver)
    );
    write_fuzz_seed(&sent.lock().unwrap());
    results
}

/// The packets a receiver was fed, as a seed of fuzz/fuzz_targets/filesync_receive.rs
/// (length-delimited), into NODEKIT_FUZZ_SEED_DIR when bench/fuzz.sh sets it.
fn write_fuzz_seed(packets: &[Packet]) {
    let Some(dir) = std::env::var_os("NODEKIT_FUZZ_SEED_DIR") else {
        return;
    };
    let mut seed = Vec::new();
    for packet in packets {
        packet.encode_length_delimited(&mut seed).unwrap();
    }
    let name = blake3::hash(&seed).to_hex();
    std::fs::write(Path::new(&dir).join(&name[..16]), seed).unwrap();
}

/// Syncs `env.src` into `env.dest`, expecting success on both sides.
pub async fn sync(env: &Env) -> ReceiveSummary {
    let (r, s) = sync_with(env.send_options(), env.receive_options()).await;
    s.expect("send");
    r.expect("receive")
}

/// The packets of a channel as a stream that never fails.
pub fn stream(rx: mpsc::Receiver<Packet>) -> impl Stream<Item = Result<Packet, Infallible>> {
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|p| (Ok(p), rx)) },
    )
}

/// Feeds `packets` to a receiver into `env.dest`; returns its result and
/// the packets it sent back.
pub async fn receive_crafted(
    env: &Env,
    packets: Vec<Packet>,
) -> (Result<ReceiveSummary, SyncError>, Vec<Packet>) {
    let (tx, mut rx) = mpsc::channel(4096);
    write_fuzz_seed(&packets);
    let incoming = futures::stream::iter(packets.into_iter().map(Ok::<_, Infallible>));
    let result = receive(env.receive_options(), incoming, tx).await;
    let mut sent = Vec::new();
    while let Ok(p) = rx.try_recv() {
        sent.push(p);
    }
    (result, sent)
}

pub fn stat_packet(stat: Option<Stat>) -> Packet {
    Packet {
        r#type: PacketType::PacketStat as i32,
        stat,
        ..Default::default()
    }
}

pub fn data_packet(id: u32, data: &[u8]) -> Packet {
    Packet {
        r#type: PacketType::PacketData as i32,
        id,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

pub fn dir(path: &str) -> Stat {
    Stat {
        path: path.into(),
        mode: (1 << 31) | 0o755,
        ..Default::default()
    }
}

pub fn file(path: &str, size: i64) -> Stat {
    Stat {
        path: path.into(),
        mode: 0o644,
        size,
        ..Default::default()
    }
}

pub fn symlink(path: &str, target: &str) -> Stat {
    Stat {
        path: path.into(),
        mode: (1 << 27) | 0o777,
        linkname: target.into(),
        ..Default::default()
    }
}

pub fn hardlink(path: &str, target: &str) -> Stat {
    Stat {
        linkname: target.into(),
        ..file(path, 0)
    }
}

/// STAT packets for `stats` followed by the end-of-listing marker.
pub fn listing(stats: Vec<Stat>) -> Vec<Packet> {
    let mut packets: Vec<Packet> = stats.into_iter().map(|s| stat_packet(Some(s))).collect();
    packets.push(stat_packet(None));
    packets
}

/// One entry of a tree, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `d`, `f`, `l` or `p`.
    pub kind: char,
    /// Permission bits incl. setuid/setgid/sticky (0 for symlinks).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    /// File content or symlink target.
    pub content: Vec<u8>,
}

/// Every entry under `root` (not `root` itself), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let (kind, content) = if ft.is_dir() {
            ('d', Vec::new())
        } else if ft.is_symlink() {
            (
                'l',
                std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if ft.is_file() {
            ('f', std::fs::read(&path).unwrap())
        } else {
            ('p', Vec::new())
        };
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let node = Node {
            kind,
            perm: if kind == 'l' { 0 } else { meta.mode() & 0o7777 },
            uid: meta.uid(),
            gid: meta.gid(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            content,
        };
        out.insert(rel, node);
        if kind == 'd' {
            walk(root, &path, out);
        }
    }
}

/// Asserts that `dest` is an exact copy of `src` (types, modes, owners,
/// times, contents, link targets).
pub fn assert_same_tree(src: &Path, dest: &Path) {
    let (a, b) = (snapshot(src), snapshot(dest));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "paths differ"
    );
    for (path, node) in &a {
        assert_eq!(Some(node), b.get(path), "entry {path:?} differs");
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

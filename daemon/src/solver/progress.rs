//! Build progress as BuildKit's `Status` stream carries it: vertex records (started, completed,
//! cached, error) and step logs. Everything is kept for the job's life so a `Status` call that
//! arrives late still sees the whole build, as upstream's does.

use parking_lot::Mutex;
use std::time::SystemTime;

use nodekit_proto::moby::buildkit::v1::frontend::WarnRequest;
use nodekit_proto::moby::buildkit::v1::{
    StatusResponse, Vertex, VertexLog, VertexStatus, VertexWarning,
};
use tokio::sync::watch;

/// One job's progress: an append-only history plus a signal for subscribers.
pub struct Progress {
    history: Mutex<Vec<StatusResponse>>,
    /// Bumped on every append; `true` in the tuple once the job is over.
    version: watch::Sender<(usize, bool)>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            history: Mutex::new(Vec::new()),
            version: watch::channel((0, false)).0,
        }
    }
}

pub fn timestamp(at: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(at)
}

impl Progress {
    fn push(&self, update: StatusResponse) {
        let len = {
            let mut history = self.history.lock();
            history.push(update);
            history.len()
        };
        self.version.send_modify(|v| v.0 = len);
    }

    /// Records a vertex (re-sent whole on each change, as the printer expects).
    pub fn vertex(&self, vertex: Vertex) {
        self.push(StatusResponse {
            vertexes: vec![vertex],
            ..Default::default()
        });
    }

    /// Starts a step of the daemon's own (not an LLB vertex), named `name`, with a digest made
    /// from the job id and the name; returns the record for [`Progress::end_step`].
    pub fn begin_step(&self, job: &str, name: &str) -> Vertex {
        let digest = blake3::hash(format!("{job}\0{name}").as_bytes());
        let vertex = Vertex {
            digest: format!("sha256:{}", digest.to_hex()),
            name: name.to_string(),
            started: Some(timestamp(SystemTime::now())),
            ..Default::default()
        };
        self.vertex(vertex.clone());
        vertex
    }

    /// Completes a step begun with [`Progress::begin_step`], failed with `error` if given.
    pub fn end_step(&self, step: Vertex, error: Option<String>) {
        self.vertex(Vertex {
            completed: Some(timestamp(SystemTime::now())),
            error: error.unwrap_or_default(),
            ..step
        });
    }

    /// The latest record of vertex `digest`, if it has one.
    fn last_record(&self, digest: &str) -> Option<Vertex> {
        let history = self.history.lock();
        history
            .iter()
            .rev()
            .flat_map(|update| update.vertexes.iter())
            .find(|v| v.digest == digest)
            .cloned()
    }

    /// Records output of a vertex's process (stream 1 stdout, 2 stderr).
    pub fn log(&self, vertex: &str, stream: i64, msg: Vec<u8>) {
        self.push(StatusResponse {
            logs: vec![VertexLog {
                vertex: vertex.to_string(),
                timestamp: Some(timestamp(SystemTime::now())),
                stream,
                msg,
            }],
            ..Default::default()
        });
    }

    /// Records the layers of an image pulled from its registry, one status each.
    pub fn pulled(&self, vertex: &str, image: &crate::worker::ResolvedImage) {
        let now = Some(timestamp(SystemTime::now()));
        let statuses = image
            .layers()
            .iter()
            .map(|layer| VertexStatus {
                id: layer.digest().to_string(),
                vertex: vertex.to_string(),
                name: format!("pulled {} from {}", layer.digest(), image.name),
                current: layer.size() as i64,
                total: layer.size() as i64,
                timestamp: now,
                started: now,
                completed: now,
            })
            .collect();
        self.push(StatusResponse {
            statuses,
            ..Default::default()
        });
    }

    /// Records a piece of work of a step's that is done, as BuildKit's one-off statuses (`writing
    /// layer sha256:...`): started at `started`, completed now.
    pub fn status_done(&self, vertex: &str, name: &str, started: SystemTime) {
        self.push(StatusResponse {
            statuses: vec![VertexStatus {
                id: name.to_string(),
                vertex: vertex.to_string(),
                name: name.to_string(),
                timestamp: Some(timestamp(SystemTime::now())),
                started: Some(timestamp(started)),
                completed: Some(timestamp(SystemTime::now())),
                ..Default::default()
            }],
            ..Default::default()
        });
    }

    /// Records a blob a step sent somewhere (a push's layer): `name`, its bytes, done now.
    pub fn blob_done(&self, vertex: &str, name: &str, size: i64, started: SystemTime) {
        let now = Some(timestamp(SystemTime::now()));
        self.push(StatusResponse {
            statuses: vec![VertexStatus {
                id: name.to_string(),
                vertex: vertex.to_string(),
                name: name.to_string(),
                current: size,
                total: size,
                timestamp: now,
                started: Some(timestamp(started)),
                completed: now,
            }],
            ..Default::default()
        });
    }

    /// Records how a local source's transfer went (files and bytes sent vs kept).
    pub fn transfer(&self, vertex: &str, name: &str, summary: &nodekit_filesync::ReceiveSummary) {
        let now = Some(timestamp(SystemTime::now()));
        let total = summary.bytes_transferred + summary.bytes_reused;
        self.push(StatusResponse {
            statuses: vec![VertexStatus {
                id: format!("transferring {name}:"),
                vertex: vertex.to_string(),
                name: format!(
                    "transferring {name}: {} files sent, {} unchanged",
                    summary.files_transferred, summary.files_reused
                ),
                current: summary.bytes_transferred as i64,
                total: total as i64,
                timestamp: now,
                started: now,
                completed: now,
            }],
            ..Default::default()
        });
    }

    /// Records a frontend's warning (a Dockerfile lint, say) against its vertex. The vertex's
    /// last record goes along: BuildKit's printers show a vertex's warnings when the vertex
    /// itself changes, and it may be complete already.
    pub fn warning(&self, warning: WarnRequest) {
        let vertex = self.last_record(&warning.digest);
        self.push(StatusResponse {
            vertexes: vertex.into_iter().collect(),
            warnings: vec![VertexWarning {
                vertex: warning.digest,
                level: warning.level,
                short: warning.short,
                detail: warning.detail,
                url: warning.url,
                info: warning.info,
                ranges: warning.ranges,
            }],
            ..Default::default()
        });
    }

    /// Every update so far (what the build's history record keeps as its log).
    pub fn updates(&self) -> Vec<StatusResponse> {
        self.history.lock().clone()
    }

    /// Marks the job over: subscribers drain what is left and end.
    pub fn close(&self) {
        self.version.send_modify(|v| v.1 = true);
    }

    /// Every update from `from` on, waiting for new ones; `None` once the job is over and all
    /// updates were delivered.
    pub async fn next_batch(&self, from: usize) -> Option<Vec<StatusResponse>> {
        let mut receiver = self.version.subscribe();
        loop {
            let (len, closed) = *receiver.borrow_and_update();
            if len > from {
                let history = self.history.lock();
                return Some(history[from..len].to_vec());
            }
            if closed {
                return None;
            }
            receiver.changed().await.ok()?;
        }
    }
}

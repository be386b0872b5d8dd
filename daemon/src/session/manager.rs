//! Live client sessions by id. A build names its session; the daemon may be asked for it a
//! moment before the client's `Session` stream arrives, so lookups wait briefly.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::waitmap::WaitMap;

/// How long a build waits for its session to connect (upstream waits a few seconds too).
pub const SESSION_WAIT: Duration = Duration::from_secs(5);

/// One client's session: a gRPC channel to the services the client exposes.
pub struct Session {
    pub id: String,
    pub shared_key: String,
    /// Full gRPC method paths the client serves, lower-cased (`/moby.filesync.v1.filesync/diffcopy`).
    methods: HashSet<String>,
    pub channel: Channel,
    /// Cancelled when the client goes away.
    pub closed: CancellationToken,
}

impl Session {
    pub fn new(id: String, shared_key: String, methods: Vec<String>, channel: Channel) -> Session {
        Session {
            id,
            shared_key,
            methods: methods
                .into_iter()
                .map(|m| m.to_ascii_lowercase())
                .collect(),
            channel,
            closed: CancellationToken::new(),
        }
    }

    /// Whether the client serves `method` (matched case-insensitively, as upstream does).
    pub fn serves(&self, method: &str) -> bool {
        self.methods.contains(&method.to_ascii_lowercase())
    }
}

#[derive(Default)]
pub struct SessionManager {
    sessions: WaitMap<Arc<Session>>,
}

#[derive(Debug, thiserror::Error)]
#[error("session {0} not found: the client did not connect it within {SESSION_WAIT:?}")]
pub struct SessionNotFound(pub String);

impl SessionManager {
    pub fn register(&self, session: Arc<Session>) {
        self.sessions.insert(&session.id.clone(), session);
    }

    pub fn remove(&self, id: &str) {
        if let Some(session) = self.sessions.remove(id) {
            session.closed.cancel();
        }
    }

    /// How many client sessions are connected.
    pub fn active(&self) -> usize {
        self.sessions.len()
    }

    /// The session `id`, waiting up to [`SESSION_WAIT`] for it to connect.
    pub async fn get(&self, id: &str) -> Result<Arc<Session>, SessionNotFound> {
        self.sessions
            .get(id, SESSION_WAIT)
            .await
            .ok_or_else(|| SessionNotFound(id.to_string()))
    }
}

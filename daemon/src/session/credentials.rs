//! Registry credentials from a build's client: the session's Auth service, which buildctl and
//! buildx answer from the user's docker config (credential helpers included).

use std::sync::Arc;

use futures::future::BoxFuture;
use nodekit_proto::moby::filesync::v1::auth_client::AuthClient;
use nodekit_proto::moby::filesync::v1::CredentialsRequest;

use super::{Session, SessionManager};
use crate::worker::{CredentialSource, Credentials};

const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";

/// The client of one build, asked for credentials when a pull needs them (only then is its
/// session looked up: an image found in the store costs nothing).
pub struct SessionCredentials {
    sessions: Arc<SessionManager>,
    session_id: String,
}

impl SessionCredentials {
    pub fn new(sessions: Arc<SessionManager>, session_id: &str) -> SessionCredentials {
        SessionCredentials {
            sessions,
            session_id: session_id.to_string(),
        }
    }

    /// The build's session; a build without one (or whose client went away) asks nobody.
    async fn session(&self) -> Option<Arc<Session>> {
        if self.session_id.is_empty() {
            return None;
        }
        self.sessions.get(&self.session_id).await.ok()
    }
}

impl CredentialSource for SessionCredentials {
    fn credentials<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Option<Credentials>> {
        Box::pin(async move {
            let session = self.session().await.filter(|s| s.serves(CREDENTIALS))?;
            let request = CredentialsRequest { host: host.into() };
            let answer = AuthClient::new(session.channel.clone())
                .credentials(request)
                .await;
            match answer {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    // buildctl answers an empty pair for a host it has nothing for.
                    (!answer.username.is_empty() || !answer.secret.is_empty()).then_some(
                        Credentials {
                            username: answer.username,
                            secret: answer.secret,
                        },
                    )
                }
                Err(status) => {
                    tracing::warn!(%host, "the client's Auth service failed: {}", status.message());
                    None
                }
            }
        })
    }
}

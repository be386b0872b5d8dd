//! Client sessions: the HTTP/2 client over each `Control.Session` byte stream, lookup by id,
//! health checks, and the services reached through it (file sync, secrets, auth, content
//! stores).

pub mod content;
mod credentials;
mod health;
mod manager;
pub mod oci_layout;
mod transport;

pub use credentials::SessionCredentials;
pub use health::watch as watch_health;
pub use manager::{Session, SessionManager, SessionNotFound, SESSION_WAIT};
pub use transport::{byte_pipe, dial, until_closed};

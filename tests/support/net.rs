//! Loopback addresses for the servers a test starts (nodekitd's listeners, a registry,
//! Prometheus).

use std::net::SocketAddr;

/// A loopback address whose port was free a moment ago (the OS picked it for a listener that is
/// closed again at once).
pub fn free_loopback_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .expect("a free loopback port")
}

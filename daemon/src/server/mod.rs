//! gRPC serving on every configured address (plain h2c over tcp and unix sockets).

use std::future::Future;
use std::os::unix::fs::PermissionsExt;

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::config::ListenAddr;

/// A bound listener, ready to serve.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Binds every address up front, so a taken port fails the start rather than a later moment.
pub async fn bind_all(addrs: &[ListenAddr]) -> std::io::Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    for addr in addrs {
        let bound = match addr {
            ListenAddr::Tcp(socket) => {
                if let Some(warning) = exposure_warning(socket) {
                    tracing::warn!("{warning}");
                }
                TcpListener::bind(socket).await.map(Listener::Tcp)
            }
            ListenAddr::Unix(path) => bind_unix(path).map(Listener::Unix),
        };
        listeners.push(
            bound.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?,
        );
    }
    Ok(listeners)
}

/// What the operator must know about a tcp listener other hosts can reach: it speaks plain h2c,
/// and whoever reaches it can run builds as root on this node.
fn exposure_warning(socket: &std::net::SocketAddr) -> Option<String> {
    (!socket.ip().is_loopback()).then(|| {
        format!(
            "tcp://{socket} accepts builds without TLS or client certificates: anyone who can \
             reach it can run build steps as root on this node and write into its image store. \
             nodekitd has no TLS yet: restrict who reaches this port (NetworkPolicy, firewall), \
             or listen on 127.0.0.1 or a unix socket only"
        )
    })
}

fn bind_unix(path: &std::path::Path) -> std::io::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A socket file left by an earlier run would make bind fail.
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Idle time before the kernel probes a tcp peer that went away without closing (Go's default,
/// as buildkitd's listeners have it).
const TCP_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Accepted tcp connections with the options a request/response protocol needs. Without
/// `TCP_NODELAY`, Nagle's algorithm holds a small HTTP/2 frame back until the peer's delayed
/// acknowledgement arrives (up to 40 ms on Linux), once per round trip of a build's session.
pub fn tcp_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE))
}

/// How long open connections may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `routes` on every listener until `shutdown` resolves.
pub async fn serve(
    listeners: Vec<Listener>,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    for listener in listeners {
        let mut stopped = stop.subscribe();
        let signal = async move {
            let _ = stopped.recv().await;
        };
        // hyper's fixed 1 MiB HTTP/2 windows, not an adaptive one: that starts at 64 KiB, and h2
        // then takes buildctl's stream of small file-sync DATA frames for a flood and closes the
        // connection (GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames"; tried, 2026-12-04).
        let server = Server::builder().add_routes(routes.clone());
        servers.push(tokio::spawn(async move {
            match listener {
                Listener::Tcp(l) => {
                    server
                        .serve_with_incoming_shutdown(tcp_incoming(l), signal)
                        .await
                }
                Listener::Unix(l) => {
                    server
                        .serve_with_incoming_shutdown(UnixListenerStream::new(l), signal)
                        .await
                }
            }
        }));
    }
    shutdown.await;
    let _ = stop.send(());
    for mut server in servers {
        // Connections get a grace period to finish; a client that keeps a stream open past it
        // (a session, a Status stream) does not hold the daemon up.
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(Ok(Err(error))) => return Err(error),
            Ok(_) => {}
            Err(_) => server.abort(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::exposure_warning;

    #[test]
    fn only_listeners_other_hosts_can_reach_are_warned_about() {
        let warning = |a: &str| exposure_warning(&a.parse().unwrap());
        assert!(warning("127.0.0.1:2375").is_none());
        assert!(warning("[::1]:2375").is_none());
        let exposed = warning("0.0.0.0:2375").expect("a warning for every address");
        assert!(
            exposed.contains("tcp://0.0.0.0:2375") && exposed.contains("TLS"),
            "{exposed}"
        );
        assert!(warning("10.1.2.3:2375").is_some());
        assert!(warning("[::]:2375").is_some());
    }
}

//! gRPC serving on every configured address: tcp (TLS when configured, else h2c) and unix
//! sockets (never TLS; their file mode and group say who may connect).

pub mod debug;
pub mod profile;
pub mod tls;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::config::{ListenAddr, ListenerSecurity, SocketOwner};
use tls::ReloadingConfig;

/// A bound listener, ready to serve.
pub enum Listener {
    Tcp(TcpListener, Option<Arc<ReloadingConfig>>),
    Unix(UnixListener),
}

/// Binds every address up front, so a taken port or an unreadable certificate fails the start
/// rather than a later moment.
pub async fn bind_all(
    addrs: &[ListenAddr],
    security: &ListenerSecurity,
) -> anyhow::Result<Vec<Listener>> {
    let tls = match &security.tls {
        Some(files) => Some(Arc::new(ReloadingConfig::load(files.clone())?)),
        None => None,
    };
    let mut listeners = Vec::new();
    for addr in addrs {
        let bound = match addr {
            ListenAddr::Tcp(socket) => {
                if let Some(warning) = exposure_warning(socket, security.tls.as_ref()) {
                    tracing::warn!("{warning}");
                }
                TcpListener::bind(socket)
                    .await
                    .map(|l| Listener::Tcp(l, tls.clone()))
            }
            ListenAddr::Unix(path) => bind_unix(path, &security.socket_owner).map(Listener::Unix),
        };
        listeners.push(
            bound.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?,
        );
    }
    Ok(listeners)
}

/// What the operator must know about a tcp listener other hosts can reach without a client
/// certificate: whoever reaches it can run builds as root on this node.
fn exposure_warning(socket: &std::net::SocketAddr, tls: Option<&tls::TlsFiles>) -> Option<String> {
    if socket.ip().is_loopback() {
        return None;
    }
    let how = match tls {
        Some(files) if files.ca.is_some() => return None,
        Some(_) => "accepts TLS clients without client certificates",
        None => "accepts builds without TLS (plain h2c)",
    };
    Some(format!(
        "tcp://{socket} {how}: anyone who can reach it can run build steps as root on this \
         node and write into its image store. Require client certificates with --tlscert, \
         --tlskey and --tlscacert (or [grpc.tls] cert, key and ca), or listen on 127.0.0.1 \
         or a unix socket only"
    ))
}

fn bind_unix(path: &std::path::Path, owner: &SocketOwner) -> std::io::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A socket file left by an earlier run would make bind fail.
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::chown(path, owner.uid, owner.gid)?;
    }
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
                Listener::Tcp(l, None) => {
                    server
                        .serve_with_incoming_shutdown(tcp_incoming(l), signal)
                        .await
                }
                Listener::Tcp(l, Some(tls)) => {
                    let incoming = tls::tls_incoming(tcp_incoming(l), tls);
                    server.serve_with_incoming_shutdown(incoming, signal).await
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
    use super::tls::TlsFiles;

    #[test]
    fn only_listeners_other_hosts_can_reach_without_a_client_certificate_are_warned_about() {
        let files = |ca: Option<&str>| TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            ca: ca.map(Into::into),
        };
        let mtls = files(Some("ca.pem"));
        let server_only = files(None);
        let addr = "0.0.0.0:2375".parse().unwrap();
        assert!(exposure_warning(&addr, Some(&mtls)).is_none());
        let tls_only = exposure_warning(&addr, Some(&server_only)).expect("a warning");
        assert!(
            tls_only.contains("without client certificates"),
            "{tls_only}"
        );
        let warning = |a: &str| exposure_warning(&a.parse().unwrap(), None);
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

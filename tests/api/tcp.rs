//! The tcp path's socket options, on both ends of a real connection: nodekitd's listener and the
//! client library. Without TCP_NODELAY every round trip of a build's session waited for a delayed
//! acknowledgement (a fully cached rebuild took 330 ms over tcp against 50 ms over the unix socket).

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use socket2::SockRef;
use tonic::service::Routes;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// One of this process's connected tcp sockets and its options.
#[derive(Debug)]
struct TcpSocket {
    local: SocketAddr,
    peer: SocketAddr,
    nodelay: bool,
    keepalive: bool,
}

/// Every connected tcp socket this process holds.
fn tcp_sockets() -> Vec<TcpSocket> {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let fds: Vec<i32> = fds
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.into_iter()
        .filter_map(|fd| {
            // SAFETY: the descriptor is only borrowed for these calls; one that closed meanwhile
            // (or is no socket) just fails them.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = SockRef::from(&borrowed);
            Some(TcpSocket {
                local: socket.local_addr().ok()?.as_socket()?,
                peer: socket.peer_addr().ok()?.as_socket()?,
                nodelay: socket.tcp_nodelay().ok()?,
                keepalive: socket.keepalive().ok()?,
            })
        })
        .collect()
}

#[tokio::test]
async fn tcp_connections_send_small_frames_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = listener.local_addr().expect("address");
    let (_, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(nodekitd::server::serve(
        vec![nodekitd::server::Listener::Tcp(listener, None)],
        Routes::new(health),
        async move {
            let _ = stopped.await;
        },
    ));

    let channel = nodekit::connect::channel(&format!("tcp://{server}"))
        .await
        .expect("connect");
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health check over tcp");

    let sockets = tcp_sockets();
    let client = sockets.iter().find(|s| s.peer == server);
    let client = client.expect("the client's socket to the daemon");
    let accepted = sockets
        .iter()
        .find(|s| s.local == server && s.peer == client.local);
    let accepted = accepted.expect("the daemon's accepted socket");
    assert!(
        accepted.nodelay && accepted.keepalive,
        "accepted: {accepted:?}"
    );
    assert!(client.nodelay && client.keepalive, "client: {client:?}");

    drop(channel);
    let _ = stop.send(());
    serving.await.expect("server task").expect("served");
}

//! A gRPC channel to nodekitd over tcp or a unix socket (plain h2c, as buildctl uses).

use anyhow::{bail, Context};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// Idle time before the kernel probes a daemon that went away without closing.
const TCP_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn channel(addr: &str) -> anyhow::Result<Channel> {
    if let Some(path) = addr.strip_prefix("unix://") {
        let path = path.to_string();
        let connector = tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        });
        return Endpoint::try_from("http://localhost")?
            .connect_with_connector(connector)
            .await
            .with_context(|| format!("cannot connect to {addr}"));
    }
    let Some(host_port) = addr.strip_prefix("tcp://") else {
        bail!("unsupported address {addr:?}: expected unix:///path or tcp://host:port");
    };
    // TCP_NODELAY: a build's session is a stream of small request/response frames, and Nagle's
    // algorithm would hold each back for the daemon's delayed acknowledgement.
    Endpoint::from_shared(format!("http://{host_port}"))?
        .tcp_nodelay(true)
        .tcp_keepalive(Some(TCP_KEEPALIVE))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

//! A gRPC channel to nodekitd over tcp (h2c, or TLS as buildctl's `--tls*` flags) or a unix
//! socket.

use std::path::PathBuf;

use anyhow::{bail, Context};
use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Idle time before the kernel probes a daemon that went away without closing.
const TCP_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// A daemon and how to reach it.
#[derive(Clone, Debug)]
pub struct Target {
    /// `unix:///path` or `tcp://host:port`.
    pub addr: String,
    pub tls: Option<ClientTls>,
}

/// buildctl's `--tlscacert`, `--tlscert`, `--tlskey` and `--tlsservername`.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// The CA the daemon's certificate must be signed by (the system roots are not used).
    pub ca: Option<PathBuf>,
    /// This client's certificate and key, for a daemon that asks for one (mutual TLS).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the daemon's certificate must carry; default: the address's host.
    pub server_name: Option<String>,
}

impl Target {
    pub fn plain(addr: &str) -> Target {
        Target {
            addr: addr.into(),
            tls: None,
        }
    }
}

/// A plaintext channel to `addr`.
pub async fn channel(addr: &str) -> anyhow::Result<Channel> {
    open(&Target::plain(addr)).await
}

pub async fn open(target: &Target) -> anyhow::Result<Channel> {
    let addr = &target.addr;
    if let Some(path) = addr.strip_prefix("unix://") {
        if target.tls.is_some() {
            bail!("TLS options were given for the unix socket {addr}; they apply to tcp only");
        }
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
    let scheme = if target.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // TCP_NODELAY: a build's session is a stream of small request/response frames, and Nagle's
    // algorithm would hold each back for the daemon's delayed acknowledgement.
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host_port}"))?
        .tcp_nodelay(true)
        .tcp_keepalive(Some(TCP_KEEPALIVE));
    if let Some(tls) = &target.tls {
        endpoint = endpoint.tls_config(tls_config(tls, host_port)?)?;
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

fn tls_config(tls: &ClientTls, host_port: &str) -> anyhow::Result<ClientTlsConfig> {
    let read = |path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host)
        .trim_matches(|c| c == '[' || c == ']');
    let mut config = ClientTlsConfig::new().domain_name(tls.server_name.as_deref().unwrap_or(host));
    if let Some(ca) = &tls.ca {
        config = config.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => bail!("--tlscert and --tlskey go together"),
    }
    Ok(config)
}

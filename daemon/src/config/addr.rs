use std::net::SocketAddr;
use std::path::PathBuf;

use super::ConfigError;

/// Where nodekitd listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl ListenAddr {
    pub fn parse(text: &str) -> Result<ListenAddr, ConfigError> {
        let error = |reason: &str| ConfigError::Addr {
            addr: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(error("a unix socket path must be absolute"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Some(host_port) = text.strip_prefix("tcp://") {
            return host_port
                .parse()
                .map(ListenAddr::Tcp)
                .map_err(|_| error("expected tcp://IP:PORT"));
        }
        Err(error("expected unix:///path or tcp://IP:PORT"))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(path) => write!(f, "unix://{}", path.display()),
            ListenAddr::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

//! TLS on tcp listeners, as buildkitd: a server certificate and key, and with a CA, mutual TLS
//! (a client must present a certificate the CA signed, or the handshake fails). The files are
//! re-read when they change, so a rotated Kubernetes Secret is served to the next connection;
//! connections already open (running builds) keep the session they started with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

pub use crate::config::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS file {path} holds no usable {what}: {reason}")]
    Content {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("TLS certificate {cert} and key {key} do not make a server configuration: {reason}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// What identifies one version of the files: a Secret's rotation swaps the `..data` symlink,
/// which changes the inode and modification time `stat` sees through the link.
type Versions = Vec<Option<(SystemTime, u64, u64)>>;

/// The server configuration of the files' current version.
pub struct ReloadingConfig {
    files: TlsFiles,
    current: Mutex<(Versions, Arc<ServerConfig>)>,
}

impl ReloadingConfig {
    /// Loads the files; an error here stops the start, naming the file.
    pub fn load(files: TlsFiles) -> Result<ReloadingConfig, TlsError> {
        let versions = versions(&files);
        let config = server_config(&files)?;
        Ok(ReloadingConfig {
            files,
            current: Mutex::new((versions, Arc::new(config))),
        })
    }

    /// The configuration for a new connection: re-read when a file changed. A rotation caught
    /// half-written (a key that does not match the certificate yet) keeps the previous version
    /// and is tried again on the next connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        let versions = versions(&self.files);
        let mut current = self.current.lock();
        if versions != current.0 {
            match server_config(&self.files) {
                Ok(config) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS files changed; serving the new certificate");
                    *current = (versions, Arc::new(config));
                }
                Err(error) => {
                    tracing::warn!("TLS files changed but cannot be used yet, keeping the previous ones: {error}");
                }
            }
        }
        current.1.clone()
    }
}

fn versions(files: &TlsFiles) -> Versions {
    use std::os::unix::fs::MetadataExt;
    [Some(&files.cert), Some(&files.key), files.ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.ino(), meta.len()))
        })
        .collect()
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let builder = match &files.ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder(Arc::new(read_roots(ca)?))
                .build()
                .map_err(|e| TlsError::Content {
                    path: ca.clone(),
                    what: "CA certificate",
                    reason: e.to_string(),
                })?;
            ServerConfig::builder().with_client_cert_verifier(verifier)
        }
        None => ServerConfig::builder().with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: e.to_string(),
        })?;
    // gRPC clients (grpc-go in buildctl) insist on HTTP/2 being negotiated.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content_error(path, "PEM certificate", e.to_string()))?;
    if certs.is_empty() {
        return Err(content_error(
            path,
            "PEM certificate",
            "no CERTIFICATE block".into(),
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| content_error(path, "PEM private key", e.to_string()))
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| content_error(path, "CA certificate", e.to_string()))?;
    }
    Ok(roots)
}

fn content_error(path: &Path, what: &'static str, reason: String) -> TlsError {
    TlsError::Content {
        path: path.to_path_buf(),
        what,
        reason,
    }
}

/// A client gets this long to finish its handshake; a stalled one holds nothing else up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS connections over the accepted tcp connections. Each handshake runs on its own task, so
/// a slow or hostile client does not delay the next; a refused one is logged with its address
/// and reason (an unknown CA, no certificate) and never reaches gRPC.
pub fn tls_incoming(
    tcp: impl Stream<Item = std::io::Result<TcpStream>> + Send + 'static,
    config: Arc<ReloadingConfig>,
) -> impl Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
    let (ready, accepted) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut tcp = std::pin::pin!(tcp);
        loop {
            // Once the server stops taking connections, so does the listener.
            let connection = tokio::select! {
                next = tcp.next() => next,
                _ = ready.closed() => None,
            };
            let Some(connection) = connection else { break };
            let stream = match connection {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!("accepting a tcp connection failed: {error}");
                    continue;
                }
            };
            let acceptor = TlsAcceptor::from(config.current());
            let ready = ready.clone();
            tokio::spawn(async move {
                if let Some(tls) = handshake(acceptor, stream).await {
                    let _ = ready.send(Ok(tls)).await;
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(accepted)
}

async fn handshake(acceptor: TlsAcceptor, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "an unknown address".to_string(), |a| a.to_string());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(error)) => {
            tracing::warn!("TLS handshake with {peer} refused: {error}");
            None
        }
        Err(_) => {
            tracing::warn!(
                "TLS handshake with {peer} refused: not finished within {HANDSHAKE_TIMEOUT:?}"
            );
            None
        }
    }
}

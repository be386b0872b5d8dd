//! A loopback HTTP/1.1 server with hostile answers: an endless body, endless headers, silence,
//! a body that stalls, or a fixed file.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub enum Body {
    /// Zeros until the client hangs up, without a length.
    Endless,
    /// These bytes, with their length.
    Fixed(Vec<u8>),
    /// A status line, then header lines until the client hangs up.
    EndlessHeaders,
    /// Reads the request and answers nothing until the client hangs up.
    Silent,
    /// Headers announcing 1,000 bytes, 10 of them, then nothing until the client hangs up.
    Stalling,
}

pub struct HostileServer {
    pub url: String,
    /// What the server has sent, and whether a client hung up on an endless body.
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct Seen {
    sent: AtomicU64,
    hung_up: AtomicBool,
}

impl Seen {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    pub fn hung_up(&self) -> bool {
        self.hung_up.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileServer {
    pub async fn start(body: Body) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let body = Arc::new(body);
        let seen = Arc::new(Seen::default());
        let counts = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (body, counts) = (body.clone(), counts.clone());
                tokio::spawn(async move {
                    let _ = answer(stream, &body, &counts).await;
                });
            }
        });
        HostileServer { url, seen, task }
    }
}

async fn answer(mut stream: TcpStream, body: &Body, seen: &Seen) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 << 10 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head_only = request.starts_with(b"HEAD");
    match body {
        Body::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
                .await?;
            if !head_only {
                return endless_zeros(&mut stream, seen).await;
            }
        }
        Body::EndlessHeaders => {
            stream.write_all(b"HTTP/1.1 200 OK\r\n").await?;
            let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
            loop {
                stream.write_all(line.as_bytes()).await?;
            }
        }
        Body::Silent => return until_hung_up(&mut stream, seen).await,
        Body::Stalling => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                .await?;
            return until_hung_up(&mut stream, seen).await;
        }
        Body::Fixed(bytes) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            stream.write_all(head.as_bytes()).await?;
            if !head_only {
                stream.write_all(bytes).await?;
            }
        }
    }
    stream.shutdown().await
}

/// Sends nothing more and waits for the client to close the connection.
async fn until_hung_up(stream: &mut TcpStream, seen: &Seen) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).await? > 0 {}
    seen.hung_up.store(true, Ordering::SeqCst);
    Ok(())
}

/// Writes zeros until the client hangs up, counting them.
async fn endless_zeros(stream: &mut TcpStream, seen: &Seen) -> std::io::Result<()> {
    let zeros = vec![0u8; 1 << 16];
    loop {
        if let Err(error) = stream.write_all(&zeros).await {
            seen.hung_up.store(true, Ordering::SeqCst);
            return Err(error);
        }
        seen.sent.fetch_add(zeros.len() as u64, Ordering::SeqCst);
    }
}

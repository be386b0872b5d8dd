//! A real Prometheus (Debian's package) for one test: scraping one target every second on
//! loopback, stopped by its PID when dropped; and plain HTTP GETs to ask it and nodekitd.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics`.
    pub fn start(test: &str, target: SocketAddr) -> Prometheus {
        let dir =
            std::env::temp_dir().join(format!("nodekit-prometheus-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: nodekitd\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let addr = crate::free_loopback_addr();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("prometheus starts (tests/env/install.sh installs it)");
        let prometheus = Prometheus { addr, dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http_get(addr, "/-/ready").0.contains(" 200 ") {
            assert!(
                Instant::now() < deadline,
                "prometheus on {addr} did not get ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// The value of an instant query that yields one sample.
    pub fn query(&self, query: &str) -> Option<f64> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (_, body) = http_get(self.addr, &format!("/api/v1/query?query={encoded}"));
        let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    /// Waits up to `limit` for `query` to yield `want`; returns the last value seen.
    pub fn wait_for(&self, query: &str, want: f64, limit: Duration) -> Option<f64> {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.query(query);
            if value == Some(want) || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Status line with headers, and body, of a plain HTTP/1.0 GET.
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let (head, body) = http_get_bytes(addr, path);
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// As [`http_get`], with the body as it came (a binary answer).
pub fn http_get_bytes(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (String::new(), Vec::new());
    };
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => (
            String::from_utf8_lossy(&response[..end]).into_owned(),
            response[end + 4..].to_vec(),
        ),
        None => (String::from_utf8_lossy(&response).into_owned(), Vec::new()),
    }
}

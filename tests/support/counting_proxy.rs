//! A plain-HTTP proxy on loopback in front of a registry, recording every request line before
//! it forwards the request: what a push sent is known, exactly and at once, when the build
//! returns. Each client connection gets its own connection to the registry; requests are told
//! apart by their Content-Length (a chunked request is recorded as unreadable, and then fails
//! the test that reads the record). The registry sees the proxy's Host, so the upload
//! locations it answers point back through the proxy.
//!
//! It can also hold answers half-way ([`CountingProxy::hold_answers_after`]): a connection
//! whose answers passed a number of bytes stops forwarding until released, so a test can do
//! something to the puller in the middle of a blob (e.g. restart its containerd).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the proxy saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
}

#[derive(Default)]
struct Record {
    requests: Vec<SeenRequest>,
    unreadable: Vec<String>,
}

/// Whether answers are held: past how many bytes per connection, how many are held now.
#[derive(Default)]
struct HoldState {
    after: Option<u64>,
    held: usize,
}

#[derive(Default)]
struct Hold {
    state: Mutex<HoldState>,
    changed: Condvar,
}

pub struct CountingProxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    record: Arc<Mutex<Record>>,
    hold: Arc<Hold>,
    stopping: Arc<AtomicBool>,
    accepting: Option<JoinHandle<()>>,
}

impl CountingProxy {
    /// A proxy to `upstream` (`127.0.0.1:5000`).
    pub fn start(upstream: &str) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let record = Arc::new(Mutex::new(Record::default()));
        let hold = Arc::new(Hold::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let accepting = {
            let (record, hold, stopping) = (record.clone(), hold.clone(), stopping.clone());
            let upstream = upstream.to_string();
            std::thread::spawn(move || accept(&listener, &upstream, &record, &hold, &stopping))
        };
        CountingProxy {
            host,
            record,
            hold,
            stopping,
            accepting: Some(accepting),
        }
    }

    /// Every request so far, in order; forgets them.
    pub fn take(&self) -> Vec<SeenRequest> {
        let mut record = self.record.lock().unwrap();
        assert!(
            record.unreadable.is_empty(),
            "the proxy could not follow: {:?}",
            record.unreadable
        );
        std::mem::take(&mut record.requests)
    }

    /// From now on, a connection whose answers pass `bytes` stops forwarding them until
    /// [`CountingProxy::release`].
    pub fn hold_answers_after(&self, bytes: u64) {
        self.hold.state.lock().unwrap().after = Some(bytes);
    }

    /// Waits (up to `limit`) until some connection's answers are held; whether one is.
    pub fn wait_held(&self, limit: Duration) -> bool {
        let state = self.hold.state.lock().unwrap();
        let (state, _) = self
            .hold
            .changed
            .wait_timeout_while(state, limit, |s| s.held == 0)
            .unwrap();
        state.held > 0
    }

    /// Lets held answers go on, and holds no more.
    pub fn release(&self) {
        self.hold.state.lock().unwrap().after = None;
        self.hold.changed.notify_all();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.release();
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees it is to stop.
        let _ = TcpStream::connect(&self.host);
        if let Some(thread) = self.accepting.take() {
            let _ = thread.join();
        }
    }
}

fn accept(
    listener: &TcpListener,
    upstream: &str,
    record: &Arc<Mutex<Record>>,
    hold: &Arc<Hold>,
    stop: &AtomicBool,
) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let (upstream, record, hold) = (upstream.to_string(), record.clone(), hold.clone());
        std::thread::spawn(move || {
            if let Err(error) = relay(client, &upstream, &record, &hold) {
                record.lock().unwrap().unreadable.push(error);
            }
        });
    }
}

/// Forwards one client connection: its requests (recorded) up, the answers down as they come.
fn relay(
    client: TcpStream,
    upstream: &str,
    record: &Mutex<Record>,
    hold: &Arc<Hold>,
) -> Result<(), String> {
    let server = TcpStream::connect(upstream).map_err(|e| format!("{upstream}: {e}"))?;
    let (mut down_from, mut down_to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let hold = hold.clone();
    let answers = std::thread::spawn(move || {
        let _ = copy_answers(&mut down_from, &mut down_to, &hold);
        let _ = down_to.shutdown(Shutdown::Write);
    });
    let mut requests = BufReader::new(client);
    let mut up = server;
    let forwarded = loop {
        match forward_request(&mut requests, &mut up, record) {
            Ok(true) => continue,
            Ok(false) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    let _ = up.shutdown(Shutdown::Write);
    let _ = answers.join();
    forwarded
}

/// Copies answers down as they come, stopping while `hold` holds this connection.
fn copy_answers(from: &mut TcpStream, to: &mut TcpStream, hold: &Hold) -> std::io::Result<()> {
    let mut buffer = [0u8; 16 << 10];
    let mut forwarded = 0u64;
    loop {
        wait_unless_held(hold, forwarded);
        let read = from.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..read])?;
        forwarded += read as u64;
    }
}

/// Blocks while answers past `forwarded` bytes are to be held.
fn wait_unless_held(hold: &Hold, forwarded: u64) {
    let holds = |s: &HoldState| s.after.is_some_and(|after| forwarded > after);
    let mut state = hold.state.lock().unwrap();
    if !holds(&state) {
        return;
    }
    state.held += 1;
    hold.changed.notify_all();
    let mut state = hold.changed.wait_while(state, |s| holds(s)).unwrap();
    state.held -= 1;
}

/// Reads one request's head, records it, and forwards it with its body; false at the end of
/// the connection.
fn forward_request(
    from: &mut BufReader<TcpStream>,
    to: &mut TcpStream,
    record: &Mutex<Record>,
) -> Result<bool, String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let read = from.read_line(&mut line).map_err(|e| e.to_string())?;
        if read == 0 && head.is_empty() {
            return Ok(false);
        }
        if read == 0 {
            return Err(format!("the connection ended inside a request: {head:?}"));
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let (seen, length) = parse_head(&head)?;
    record.lock().unwrap().requests.push(seen);
    to.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let sent = std::io::copy(&mut from.by_ref().take(length), to).map_err(|e| e.to_string())?;
    if sent != length {
        return Err(format!("a body ended after {sent} of {length} bytes"));
    }
    Ok(true)
}

/// The request line and the body's length (0 without a Content-Length).
fn parse_head(head: &str) -> Result<(SeenRequest, u64), String> {
    let mut lines = head.lines();
    let mut words = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(format!("no request line in {head:?}"));
    };
    let mut length = 0;
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("{method} {target}: a chunked body"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().map_err(|_| format!("{head:?}"))?;
        }
    }
    let seen = SeenRequest {
        method: method.to_string(),
        target: target.to_string(),
    };
    Ok((seen, length))
}

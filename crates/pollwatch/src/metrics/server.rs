//! The `/metrics` endpoint: a minimal HTTP/1.1 server on pollwatch's own threads, so it
//! answers while every worker of the application's runtime is stuck.
//!
//! One thread (`pollwatch-metrics`) accepts; each connection gets a short-lived thread
//! (`pollwatch-metrics-conn`, at most [`MAX_CONNECTIONS`] at once; beyond that a connection is
//! answered `503` and closed). A connection carries one request and is closed after the
//! response. What is not a well-formed `GET /metrics` within the limits is refused:
//!
//! | request | response |
//! |---|---|
//! | `GET /metrics` (a query string is ignored) | `200`, Prometheus text format 0.0.4 |
//! | another method on `/metrics` | `405`, `Allow: GET` |
//! | another path | `404` |
//! | a request line that is not `METHOD TARGET HTTP/1.x` | `400` |
//! | a request head over [`MAX_HEAD_BYTES`] (8 KiB) | `431` |
//! | a head not complete within [`HEAD_TIMEOUT`] (2 s) | `408` |

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;

use crate::background::{self, Joiner};

/// The name of the accepting thread.
pub(crate) const THREAD_NAME: &str = "pollwatch-metrics";
/// The name of the threads that answer one connection each.
const CONNECTION_THREAD_NAME: &str = "pollwatch-metrics-conn";

/// The largest accepted request head (request line and headers), in bytes.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head; slower clients are cut off.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writing the response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once; more are refused with `503`.
pub(crate) const MAX_CONNECTIONS: usize = 8;

/// The content type of the Prometheus text format 0.0.4.
const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A running `/metrics` endpoint. Stops (and joins its thread) when dropped or on
/// [`stop`](Self::stop).
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Joiner,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` on `GET /metrics` from pollwatch's own threads.
    pub(crate) fn start(addr: SocketAddr, registry: Registry) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let registry = Arc::new(registry);
        let flag = stop.clone();
        let thread = background::spawn(THREAD_NAME, move || accept(&listener, &flag, &registry))
            .ok_or_else(|| io::Error::other("cannot start the metrics thread"))?;
        Ok(Self {
            addr,
            stop,
            thread: Joiner::new(Some(thread)),
        })
    }

    /// The address the endpoint listens on (with the port chosen when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the accepting thread (a connection being answered
    /// finishes on its own thread, within its time limits).
    pub fn stop(&self) {
        if self.stop.swap(true, SeqCst) {
            return;
        }
        // Wake the blocking `accept` with a connection of our own.
        let wake = match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, a.port()))
            }
            other => other,
        };
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            self.thread.join();
        }
        // Otherwise the thread is left to end with the process rather than hang the caller.
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept(listener: &TcpListener, stop: &AtomicBool, registry: &Arc<Registry>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(SeqCst) {
            return;
        }
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(_) => {
                // Out of file descriptors or similar: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if busy.fetch_add(1, SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = respond(&mut stream, Status::Busy, "", &[]);
            continue;
        }
        let registry = registry.clone();
        let done = busy.clone();
        let spawned = background::spawn(CONNECTION_THREAD_NAME, move || {
            serve(stream, &registry);
            done.fetch_sub(1, SeqCst);
        });
        if spawned.is_none() {
            busy.fetch_sub(1, SeqCst);
        }
    }
}

/// The responses the endpoint gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Timeout,
    HeadTooLarge,
    Busy,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Timeout => "408 Request Timeout",
            Status::HeadTooLarge => "431 Request Header Fields Too Large",
            Status::Busy => "503 Service Unavailable",
        }
    }
}

/// Answers one connection.
fn serve(mut stream: TcpStream, registry: &Registry) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let status = match read_head(&mut stream, Instant::now() + HEAD_TIMEOUT) {
        Ok(head) => route(&head),
        Err(Some(status)) => status,
        Err(None) => return,
    };
    if status != Status::Ok {
        let extra: &[(&str, &str)] = if status == Status::MethodNotAllowed {
            &[("Allow", "GET")]
        } else {
            &[]
        };
        let _ = respond(&mut stream, status, status.line(), extra);
        return;
    }
    let mut body = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut body, registry) {
        Ok(()) => {
            let _ = respond(
                &mut stream,
                Status::Ok,
                &body,
                &[("Content-Type", CONTENT_TYPE)],
            );
        }
        Err(_) => {
            let _ = respond(&mut stream, Status::Busy, "encoding failed", &[]);
        }
    }
}

/// Reads the request head (up to the blank line). `Err(None)`: the client went away.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, Option<Status>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Some(Status::Timeout));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| None::<Status>)?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Some(Status::Timeout))
            }
            Err(_) => return Err(None),
        };
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&head[searched_from..]) {
            head.truncate(searched_from + end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(Some(Status::HeadTooLarge));
        }
    }
}

/// Where the head ends (`\r\n\r\n` or `\n\n`), if it does.
fn find_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The response to a complete request head.
fn route(head: &[u8]) -> Status {
    if head.len() > MAX_HEAD_BYTES {
        return Status::HeadTooLarge;
    }
    let Ok(text) = std::str::from_utf8(head) else {
        return Status::BadRequest;
    };
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Status::BadRequest;
    };
    let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Status::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (path, method) {
        ("/metrics", "GET") => Status::Ok,
        ("/metrics", _) => Status::MethodNotAllowed,
        _ => Status::NotFound,
    }
}

fn respond(
    stream: &mut TcpStream,
    status: Status,
    body: &str,
    headers: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.line(),
        body.len()
    );
    if !headers.iter().any(|(name, _)| *name == "Content-Type") {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        for (head, status) in [
            ("GET /metrics HTTP/1.1\r\nHost: x", Status::Ok),
            ("GET /metrics?x=1 HTTP/1.0", Status::Ok),
            ("POST /metrics HTTP/1.1", Status::MethodNotAllowed),
            ("HEAD /metrics HTTP/1.1", Status::MethodNotAllowed),
            ("GET / HTTP/1.1", Status::NotFound),
            ("GET /metricsx HTTP/1.1", Status::NotFound),
            ("GET /metrics", Status::BadRequest),
            ("get /metrics HTTP/1.1", Status::BadRequest),
            ("GET metrics HTTP/1.1", Status::BadRequest),
            ("GET /metrics HTTP/2 extra", Status::BadRequest),
            ("\u{1}\u{2}garbage", Status::BadRequest),
        ] {
            assert_eq!(route(head.as_bytes()), status, "{head:?}");
        }
        assert_eq!(route(&[0xff, 0xfe]), Status::BadRequest);
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(find_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(find_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}

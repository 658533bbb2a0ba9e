//! The `/metrics` endpoint: a minimal HTTP/1.1 server on one pollwatch thread, so it answers
//! while every worker of the application's runtime is stuck.
//!
//! One thread (`pollwatch-metrics`) runs an event loop (mio) over the listener and at most
//! [`MAX_CONNECTIONS`] open connections; beyond that a new connection is answered `503` and
//! closed. A connection carries one request and is closed after the response. Every
//! connection works to two deadlines: its request head must arrive within [`HEAD_TIMEOUT`] of
//! its accept, and its whole response must be written within [`RESPONSE_TIMEOUT`] of its
//! head's end. A connection past a deadline is closed, so a client that sends or reads slowly
//! (or not at all) holds one of the connection places for at most their sum and never holds
//! the thread: other clients are answered meanwhile. What is not a well-formed `GET /metrics`
//! within the limits is refused:
//!
//! | request | response |
//! |---|---|
//! | `GET /metrics` (a query string is ignored) | `200`, Prometheus text format 0.0.4 |
//! | another method on `/metrics` | `405`, `Allow: GET` |
//! | another path | `404` |
//! | a request line that is not `METHOD TARGET HTTP/1.x` | `400` |
//! | a request head over [`MAX_HEAD_BYTES`] (8 KiB) | `431` |
//! | a head not complete within [`HEAD_TIMEOUT`] (2 s) | `408` (if the socket takes it), closed |
//! | a response not read within [`RESPONSE_TIMEOUT`] (5 s) | closed |
//! | a connection beyond [`MAX_CONNECTIONS`] (32) | `503` (if the socket takes it), closed |
//! | answering panics (a collector of the registry) | closed; the endpoint goes on |
//!
//! The connections closed at a deadline, turned away or closed by a panic are counted by
//! reason in `pollwatch_metrics_connections_dropped_total` (`head_timeout`,
//! `response_timeout`, `over_limit`, `panic`), a metric of the endpoint itself.
//!
//! Memory: a connection keeps its request head (at most [`MAX_HEAD_BYTES`]) and shares its
//! response with the connections asking within [`SHARE_WINDOW`] of the scrape it came from
//! while one of them is still sending it, so slow readers hold at most
//! `RESPONSE_TIMEOUT / SHARE_WINDOW + 1` encoded responses, not one each.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use mio::net::{TcpListener as Listener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::background::{self, Joiner};

/// The name of the endpoint's thread.
pub(crate) const THREAD_NAME: &str = "pollwatch-metrics";

/// The largest accepted request head (request line and headers), in bytes.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take, from its connection's accept, to send its request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client may take, from the end of its request head, to read the whole response.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once; more are refused with `503`.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// How recent a response still being sent must be for a new scrape to be given it too.
const SHARE_WINDOW: Duration = Duration::from_secs(1);
/// How long to wait before accepting again after accepting failed (out of file descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `i` is registered as `Token(FIRST_CONNECTION + i)`.
const FIRST_CONNECTION: usize = 2;

/// The content type of the Prometheus text format 0.0.4.
const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A running `/metrics` endpoint. Stops (and joins its thread) when dropped or on
/// [`stop`](Self::stop).
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Joiner,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` (with the endpoint's own connection counts added)
    /// on `GET /metrics` from a pollwatch thread.
    pub(crate) fn start(addr: SocketAddr, mut registry: Registry) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let mut listener = Listener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let dropped = Arc::new(ConnectionsDropped::default());
        registry.register_collector(Box::new(ConnectionsDroppedCollector(dropped.clone())));
        let stop = Arc::new(AtomicBool::new(false));
        let mut server = Endpoint {
            poll,
            listener,
            registry,
            connections: (0..MAX_CONNECTIONS).map(|_| None).collect(),
            dropped,
            shared: None,
            accept_again_at: None,
        };
        let flag = stop.clone();
        let thread = background::spawn(THREAD_NAME, move || server.run(&flag))
            .ok_or_else(|| io::Error::other("cannot start the metrics thread"))?;
        Ok(Self {
            addr,
            stop,
            waker,
            thread: Joiner::new(Some(thread)),
        })
    }

    /// The address the endpoint listens on (with the port chosen when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: closes every connection and the listener, and waits for the thread.
    pub fn stop(&self) {
        if self.stop.swap(true, SeqCst) {
            return;
        }
        if self.waker.wake().is_ok() {
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

/// Connections the endpoint closed before answering them in full, by reason.
#[derive(Debug, Default)]
struct ConnectionsDropped {
    /// The request head was not complete within [`HEAD_TIMEOUT`].
    head_timeout: AtomicU64,
    /// The response was not read within [`RESPONSE_TIMEOUT`].
    response_timeout: AtomicU64,
    /// [`MAX_CONNECTIONS`] were open already.
    over_limit: AtomicU64,
    /// Answering it panicked (a collector of the registry): the connection was closed, the
    /// endpoint went on.
    panic: AtomicU64,
}

/// Exports [`ConnectionsDropped`] with the endpoint's metrics.
#[derive(Debug)]
struct ConnectionsDroppedCollector(Arc<ConnectionsDropped>);

impl Collector for ConnectionsDroppedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "pollwatch_metrics_connections_dropped",
            "Connections to this /metrics endpoint closed before a full answer: head not \
             sent in time (head_timeout), response not read in time (response_timeout), or \
             turned away with 503 while every connection place was taken (over_limit), or \
             closed because answering it panicked (panic)",
            None,
            MetricType::Counter,
        )?;
        let dropped = &self.0;
        for (reason, count) in [
            ("head_timeout", &dropped.head_timeout),
            ("response_timeout", &dropped.response_timeout),
            ("over_limit", &dropped.over_limit),
            ("panic", &dropped.panic),
        ] {
            ConstCounter::new(count.load(Relaxed))
                .encode(metric.encode_family(&[("reason", reason)])?)?;
        }
        Ok(())
    }
}

/// One open connection.
struct Connection {
    stream: TcpStream,
    phase: Phase,
}

enum Phase {
    /// Reading the request head, due by `deadline`.
    Head { head: Vec<u8>, deadline: Instant },
    /// Writing `response` from `at`, due by `deadline`.
    Response {
        response: Arc<[u8]>,
        at: usize,
        deadline: Instant,
    },
}

impl Phase {
    fn deadline(&self) -> Instant {
        match self {
            Phase::Head { deadline, .. } | Phase::Response { deadline, .. } => *deadline,
        }
    }
}

/// What happened to a connection this turn.
enum Progress {
    /// Waits for the socket.
    Open,
    /// Answered, or the client went away: close it.
    Done,
}

/// The event loop's state, owned by its thread.
struct Endpoint {
    poll: Poll,
    listener: Listener,
    registry: Registry,
    connections: Vec<Option<Connection>>,
    dropped: Arc<ConnectionsDropped>,
    /// The newest `200` response, when it was encoded, while a connection still sends it.
    shared: Option<(Instant, Weak<[u8]>)>,
    /// Set when accepting failed: when to try again.
    accept_again_at: Option<Instant>,
}

impl Endpoint {
    fn run(&mut self, stop: &AtomicBool) {
        let mut events = Events::with_capacity(64);
        loop {
            let timeout = self.next_deadline().map(|at| {
                // Rounded up so a wake-up is never just before the deadline it is for.
                at.saturating_duration_since(Instant::now()) + Duration::from_millis(1)
            });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    crate::diagnostics::say(&format!(
                        "pollwatch: the metrics endpoint stopped ({e})"
                    ));
                    return;
                }
            }
            if stop.load(SeqCst) {
                return;
            }
            // A panic while answering (a collector's) closes the connection it was for, which
            // the unwinding drops, and the endpoint goes on with the others.
            let handled = catch_unwind(AssertUnwindSafe(|| {
                for event in &events {
                    match event.token() {
                        LISTENER => self.accept(),
                        WAKER => {}
                        Token(token) => self.progress(token - FIRST_CONNECTION),
                    }
                }
                if self.accept_again_at.is_some_and(|at| at <= Instant::now()) {
                    self.accept_again_at = None;
                    self.accept();
                }
                self.expire(Instant::now());
            }));
            // Counted each time, said the first time.
            if handled.is_err() && self.dropped.panic.fetch_add(1, Relaxed) == 0 {
                crate::diagnostics::say(
                    "pollwatch: a panic while answering a /metrics request (a collector of its \
                     registry); that connection was closed and the endpoint goes on. Counted in \
                     pollwatch_metrics_connections_dropped_total{reason=\"panic\"}.",
                );
            }
        }
    }

    /// The earliest time the loop must wake without an event.
    fn next_deadline(&self) -> Option<Instant> {
        self.connections
            .iter()
            .flatten()
            .map(|c| c.phase.deadline())
            .chain(self.accept_again_at)
            .min()
    }

    /// Accepts every waiting connection.
    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // Out of file descriptors or similar: try again shortly, do not spin.
                    self.accept_again_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            };
            let Some(free) = self.connections.iter().position(Option::is_none) else {
                self.dropped.over_limit.fetch_add(1, Relaxed);
                // One try: a client that does not take it is closed all the same.
                let _ = stream.write(&response(Status::Busy, "", &[]));
                continue;
            };
            let token = Token(FIRST_CONNECTION + free);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, token, interest)
                .is_err()
            {
                continue;
            }
            self.connections[free] = Some(Connection {
                stream,
                phase: Phase::Head {
                    head: Vec::with_capacity(512),
                    deadline: Instant::now() + HEAD_TIMEOUT,
                },
            });
            // Its request may be there already; edge-triggered readiness will not repeat it.
            self.progress(free);
        }
    }

    /// Reads or writes what connection `index` is ready for.
    fn progress(&mut self, index: usize) {
        let Some(mut connection) = self.connections.get_mut(index).and_then(Option::take) else {
            return;
        };
        crate::guarded::fault_point(crate::guarded::Seam::Metrics);
        match self.advance(&mut connection) {
            Progress::Open => self.connections[index] = Some(connection),
            Progress::Done => self.close(connection),
        }
    }

    fn advance(&mut self, connection: &mut Connection) -> Progress {
        if let Phase::Head { head, .. } = &mut connection.phase {
            let status = match read_head(&mut connection.stream, head) {
                Ok(None) => return Progress::Open,
                Ok(Some(status)) => status,
                Err(_) => return Progress::Done,
            };
            connection.phase = Phase::Response {
                response: self.answer(status),
                at: 0,
                deadline: Instant::now() + RESPONSE_TIMEOUT,
            };
        }
        let Phase::Response { response, at, .. } = &mut connection.phase else {
            return Progress::Open;
        };
        while *at < response.len() {
            match connection.stream.write(&response[*at..]) {
                Ok(0) => return Progress::Done,
                Ok(n) => *at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Done,
            }
        }
        let _ = connection.stream.flush();
        Progress::Done
    }

    /// The response to a request head that got `status`.
    fn answer(&mut self, status: Status) -> Arc<[u8]> {
        match status {
            Status::Ok => self.scrape(),
            Status::MethodNotAllowed => response(status, status.line(), &[("Allow", "GET")]).into(),
            _ => response(status, status.line(), &[]).into(),
        }
    }

    /// The metrics response: the one another connection is still sending if it is recent,
    /// else a new one.
    fn scrape(&mut self) -> Arc<[u8]> {
        if let Some((at, shared)) = &self.shared {
            if at.elapsed() < SHARE_WINDOW {
                if let Some(shared) = shared.upgrade() {
                    return shared;
                }
            }
        }
        let mut body = String::new();
        let response: Arc<[u8]> =
            match prometheus_client::encoding::prometheus_text::encode(&mut body, &self.registry) {
                Ok(()) => response(Status::Ok, &body, &[("Content-Type", CONTENT_TYPE)]).into(),
                Err(_) => return response(Status::Busy, "encoding failed", &[]).into(),
            };
        self.shared = Some((Instant::now(), Arc::downgrade(&response)));
        response
    }

    /// Closes every connection past its deadline, counting it; one still waiting for its
    /// head is told `408` if its socket takes it.
    fn expire(&mut self, now: Instant) {
        for index in 0..self.connections.len() {
            let late = self.connections[index]
                .as_ref()
                .is_some_and(|c| c.phase.deadline() <= now);
            if !late {
                continue;
            }
            let Some(mut connection) = self.connections[index].take() else {
                continue;
            };
            match connection.phase {
                Phase::Head { .. } => {
                    self.dropped.head_timeout.fetch_add(1, Relaxed);
                    let _ = connection.stream.write(&response(
                        Status::Timeout,
                        Status::Timeout.line(),
                        &[],
                    ));
                }
                Phase::Response { .. } => {
                    self.dropped.response_timeout.fetch_add(1, Relaxed);
                }
            }
            self.close(connection);
        }
    }

    fn close(&mut self, mut connection: Connection) {
        let _ = self.poll.registry().deregister(&mut connection.stream);
        let _ = connection.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Reads what has arrived of a request head into `head`. `Ok(None)`: not complete yet;
/// `Ok(Some(status))`: complete (or refused), answer `status`; `Err`: the client went away.
fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<Option<Status>> {
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&head[searched_from..]) {
            head.truncate(searched_from + end);
            return Ok(Some(route(head)));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Ok(Some(Status::HeadTooLarge));
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

/// A whole response: status line, headers, `body`; the connection closes after it.
fn response(status: Status, body: &str, headers: &[(&str, &str)]) -> Vec<u8> {
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
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
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

//! A tiny HTTP/1.1 client, twice: once over `std::net::TcpStream` (blocking, the mistake when
//! called from an async task) and once over `tokio::net::TcpStream` (the right way).
//!
//! It speaks just enough HTTP for the demo: `GET` requests, responses framed by
//! `Content-Length` (or by the server closing the connection). Sizes are bounded: a response
//! head may be at most [`MAX_HEAD_BYTES`] and a body at most [`MAX_BODY_BYTES`].

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest response head (status line and headers) the client accepts.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest response body the client accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A response: its status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// The parsed head of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The `Content-Length`, when the server sent one.
    pub content_length: Option<usize>,
    /// Whether the server will close the connection after this response.
    pub close: bool,
    /// The length of the head in bytes, including the blank line that ends it.
    pub len: usize,
}

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// The request did not complete within its timeout.
    Timeout(Duration),
    /// The server closed the connection before a complete response.
    Closed,
    /// The response is not HTTP/1.x the client understands; says what was wrong.
    Malformed(&'static str),
    /// The response head or body exceeded the client's limits.
    TooLarge,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "I/O error: {e}"),
            ClientError::Timeout(t) => write!(f, "no response within {t:?}"),
            ClientError::Closed => f.write_str("connection closed before a complete response"),
            ClientError::Malformed(what) => write!(f, "malformed response: {what}"),
            ClientError::TooLarge => f.write_str("response larger than the client's limits"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// The bytes of a `GET` request for `path` on `host`.
pub fn request(host: SocketAddr, path: &str, keep_alive: bool) -> Vec<u8> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: pollwatch-demo\r\n\
         Connection: {connection}\r\n\r\n"
    )
    .into_bytes()
}

/// Parses a response head from the start of `buf`: `Ok(None)` while the head is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ClientError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD_BYTES {
            Err(ClientError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| ClientError::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ClientError::Malformed("status line is not HTTP/1.x"));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..=999).contains(code))
        .ok_or(ClientError::Malformed("status code is not a number"))?;
    let mut head = Head {
        status,
        content_length: None,
        close: version == "HTTP/1.0",
        len: end + 4,
    };
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(ClientError::Malformed("header line without a colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| ClientError::Malformed("Content-Length is not a number"))?;
            head.content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ClientError::Malformed("chunked bodies are not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    if head.content_length.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ClientError::TooLarge);
    }
    Ok(Some(head))
}

/// What to do with the bytes read so far.
enum Progress {
    /// Read more.
    More,
    /// The response is complete: it used the first `usize` bytes of the buffer, and the
    /// `bool` says whether the server will close the connection.
    Done(Response, usize, bool),
}

/// Decides whether `buf` holds a complete response; `eof` says the server closed.
fn progress(buf: &[u8], eof: bool) -> Result<Progress, ClientError> {
    let Some(head) = parse_head(buf)? else {
        return if eof {
            Err(ClientError::Closed)
        } else {
            Ok(Progress::More)
        };
    };
    let body = &buf[head.len..];
    let length = match head.content_length {
        Some(n) if body.len() >= n => n,
        Some(_) if eof => return Err(ClientError::Closed),
        Some(_) => return Ok(Progress::More),
        None if body.len() > MAX_BODY_BYTES => return Err(ClientError::TooLarge),
        None if eof => body.len(),
        None => return Ok(Progress::More),
    };
    let response = Response {
        status: head.status,
        body: body[..length].to_vec(),
    };
    Ok(Progress::Done(response, head.len + length, head.close))
}

/// `GET http://{addr}{path}` with `std::net::TcpStream`: blocks the calling thread until the
/// response arrives or `timeout` passes. Inside an async task this is the mistake.
pub fn get_blocking(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<Response, ClientError> {
    // std reports an expired socket timeout as `WouldBlock` (or `TimedOut`).
    let timed_out = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout(timeout),
        _ => ClientError::Io(e),
    };
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(timed_out)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream
        .write_all(&request(addr, path, false))
        .map_err(timed_out)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        // A socket with a timeout is not restarted after a signal (pollwatch's stack capture
        // is one): retry, as every blocking client should.
        let n = match stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => read.map_err(timed_out)?,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Progress::Done(response, _, _) = progress(&buf, n == 0)? {
            return Ok(response);
        }
    }
}

/// `GET http://{addr}{path}` with `tokio::net::TcpStream` on a fresh connection: waits
/// without holding the thread.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, ClientError> {
    let exchange = async {
        let mut connection = Connection::connect(addr).await?;
        connection.get_once(path).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

/// A keep-alive HTTP/1.1 connection over `tokio::net::TcpStream`, for the load generator.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Connection {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            stream,
            buf: Vec::with_capacity(1024),
            closed: false,
        })
    }

    /// Whether the server said it will close the connection; open a new one then.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends `GET path` and reads the response, keeping the connection open.
    pub async fn get(&mut self, path: &str) -> Result<Response, ClientError> {
        self.exchange(path, true).await
    }

    async fn get_once(&mut self, path: &str) -> Result<Response, ClientError> {
        self.exchange(path, false).await
    }

    async fn exchange(&mut self, path: &str, keep_alive: bool) -> Result<Response, ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        self.stream
            .write_all(&request(self.addr, path, keep_alive))
            .await?;
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.stream.read(&mut chunk).await?;
            self.buf.extend_from_slice(&chunk[..n]);
            let eof = n == 0;
            if let Progress::Done(response, used, close) = progress(&self.buf, eof)? {
                self.buf.drain(..used);
                self.closed = close || eof || !keep_alive;
                return Ok(response);
            }
        }
    }
}

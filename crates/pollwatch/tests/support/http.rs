//! A tiny HTTP/1.1 client for the `/metrics` tests: raw requests, whole responses.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One response: status code, head lines, body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `request` as is and reads until the server closes. `None`: closed with no response.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Option<Response> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may close before reading everything (an oversized head): not an error here.
    let _ = stream.write_all(request);
    parse(&read_all(&mut stream))
}

/// Reads until the server closes the connection (or resets it).
pub fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return bytes,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("the server kept the connection open past the read timeout")
            }
            Err(_) => return bytes,
        }
    }
}

/// A whole response, or `None` for no bytes.
pub fn parse(bytes: &[u8]) -> Option<Response> {
    if bytes.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    Some(Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// `GET path`, the way Prometheus asks.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\nAccept: text/plain\r\n\r\n"
    );
    raw(addr, request.as_bytes()).expect("a response")
}

/// The value of the sample line that starts with `series` (name and labels, exactly).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// The sample lines of metric `name` (any labels).
pub fn lines_of<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    body.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

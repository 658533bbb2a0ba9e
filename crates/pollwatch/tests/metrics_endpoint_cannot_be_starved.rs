//! `/metrics` keeps answering scrapes while other clients read a large response slowly or
//! never, send their request head one byte at a time forever, or send garbage: every
//! connection has a deadline, one thread serves them all, nothing panics, and the connections
//! it cuts off are counted in `pollwatch_metrics_connections_dropped_total`.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pollwatch::test_support::{
    METRICS_HEAD_TIMEOUT as HEAD_TIMEOUT, METRICS_MAX_HEAD_BYTES as MAX_HEAD_BYTES,
};
use support::http::{self, sample};
use support::Watched;

/// The endpoint's count of connections dropped for `reason`, read with a scrape that must
/// succeed.
fn dropped(addr: SocketAddr, reason: &str) -> f64 {
    let response = http::get(addr, "/metrics");
    assert_eq!(response.status, 200);
    let series = format!("pollwatch_metrics_connections_dropped_total{{reason=\"{reason}\"}}");
    sample(&response.body, &series).unwrap_or_else(|| panic!("no {series}"))
}

// A large response needs many sites, and sites need tokio's task spans (`--cfg tokio_unstable`).
#[cfg(tokio_unstable)]
mod large_response {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;

    use pollwatch::test_support::METRICS_RESPONSE_TIMEOUT as RESPONSE_TIMEOUT;

    use super::*;
    use crate::support::{letters, spawn_named};

    const REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";

    /// Scrapes until the count of connections dropped for `reason` reaches `count` (the endpoint
    /// says so only through a scrape); fails if it has not within `within`.
    fn wait_until_dropped(addr: SocketAddr, reason: &str, count: f64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now = dropped(addr, reason);
            if now >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{reason}: {now} of {count} connections dropped"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    #[test]
    fn slow_readers_of_a_large_response_do_not_starve_scrapes() {
        // 200 sites named with 4,000 bytes each make a response of about eight megabytes (the
        // 100 sites exported alone repeat their label in 21 series), more than a socket's
        // buffers hold (loopback's take several). Names are sites of their own here (letters:
        // a name's digits would fold into one site; names use up to 3/4 of the table).
        let watched = Watched::new_with(
            pollwatch::Builder::new()
                .threshold(Duration::from_millis(20))
                .max_sites(400)
                .names_per_location(200),
        );
        let server = watched.serve_metrics();
        let addr = server.local_addr();
        let rt = watched.runtime(1);
        watched.scope(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..200)
                    .map(|i| {
                        spawn_named(
                            &format!("site-{}-{}", letters(i), "x".repeat(4000)),
                            async {},
                        )
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            })
        });
        let full = http::get(addr, "/metrics");
        assert_eq!(full.status, 200);
        assert!(full.body.contains("site=\"<other>\""));
        let full_len = full.head.len() + 4 + full.body.len();

        // Eight clients ask and never read; eight read one byte at a time, slowly.
        let never: Vec<TcpStream> = (0..8)
            .map(|_| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(REQUEST).unwrap();
                stream
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let trickling: Vec<_> = (0..8)
            .map(|_| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(REQUEST).unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut got = 0;
                    let mut byte = [0u8; 1];
                    while !stop.load(Relaxed) {
                        match stream.read(&mut byte) {
                            Ok(1) => got += 1,
                            _ => return got,
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    got
                })
            })
            .collect();

        // A normal client is answered in full, again and again, meanwhile.
        for _ in 0..5 {
            let response = http::get(addr, "/metrics");
            assert_eq!(response.status, 200);
            assert!(
                response.body.contains("site=\"<other>\""),
                "a whole response"
            );
        }

        // Each of the sixteen is cut off at its response deadline, and counted.
        wait_until_dropped(addr, "response_timeout", 16.0, RESPONSE_TIMEOUT * 6);
        stop.store(true, Relaxed);
        for reader in trickling {
            let got = reader.join().unwrap();
            assert!(got < full_len, "a slow reader got the whole response");
        }
        for mut stream in never {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            // What the sockets' buffers held, then the end: the connection is closed.
            let got = http::read_all(&mut stream);
            assert!(
                got.len() < full_len,
                "a silent reader got the whole response"
            );
        }
        assert_eq!(dropped(addr, "head_timeout"), 0.0);
    }
}

#[test]
fn a_client_sending_its_head_a_byte_at_a_time_forever_is_cut_off_and_counted() {
    let watched = Watched::new(Duration::from_millis(20));
    let server = watched.serve_metrics();
    let addr = server.local_addr();
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).unwrap();
    // Each read waits this long for the server's answer: the pace of the bytes sent.
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let head = b"GET /metrics HTTP/1.1\r\nX-Forever: ";
    let mut answer = Vec::new();
    let mut scraped = false;
    for sent in 0.. {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if slow.write_all(&[byte]).is_err() {
            break;
        }
        let mut chunk = [0u8; 256];
        match slow.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if sent == 3 {
            // Scrapes are answered while it trickles.
            assert_eq!(http::get(addr, "/metrics").status, 200);
            scraped = true;
        }
        assert!(
            started.elapsed() < HEAD_TIMEOUT * 5,
            "still connected after {:?}",
            started.elapsed()
        );
    }
    assert!(scraped);
    if let Some(response) = http::parse(&answer) {
        assert_eq!(response.status, 408);
    }
    assert_eq!(dropped(addr, "head_timeout"), 1.0);
}

/// A small deterministic generator (xorshift64) for the garbage.
struct Garbage(u64);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_gets_a_400_or_a_closed_connection_and_never_stops_the_endpoint() {
    let watched = Watched::new(Duration::from_millis(20));
    let server = watched.serve_metrics();
    let addr = server.local_addr();
    let mut garbage = Garbage(0x9e37_79b9_7f4a_7c15);
    for case in 0..200 {
        let len = 1 + (garbage.next() % 2048) as usize;
        let mut request = garbage.bytes(len);
        match case % 4 {
            // A head that ends.
            0 | 1 => request.extend_from_slice(b"\r\n\r\n"),
            // A request line of garbage, then a proper end.
            2 => {
                request.retain(|&b| b != b'\n');
                request.extend_from_slice(b" /metrics HTTP/1.1\r\n\r\n");
            }
            // Longer than any head may be, never ending.
            _ => request.extend(garbage.bytes(MAX_HEAD_BYTES)),
        }
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // The server may answer and close before reading it all.
        let _ = stream.write_all(&request);
        // No more is coming: a head that never ended is the client going away.
        let _ = stream.shutdown(Shutdown::Write);
        if let Some(response) = http::parse(&http::read_all(&mut stream)) {
            assert!(
                [400, 431].contains(&response.status),
                "case {case}: {}",
                response.head
            );
        }
    }
    // The endpoint still answers, no garbage waited for a deadline, and none made it panic
    // (a panic is contained, and the connection closed: only this count tells).
    assert_eq!(dropped(addr, "head_timeout"), 0.0);
    assert_eq!(dropped(addr, "response_timeout"), 0.0);
    assert_eq!(dropped(addr, "panic"), 0.0);
}

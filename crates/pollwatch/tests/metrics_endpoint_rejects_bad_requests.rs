//! `/metrics` answers only `GET /metrics`: other paths get 404, other methods 405, garbage
//! 400, an oversized head 431 (or a closed connection), and clients that are too slow or too
//! many are cut off, while normal scrapes keep being answered.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pollwatch::test_support::{
    METRICS_HEAD_TIMEOUT as HEAD_TIMEOUT, METRICS_MAX_CONNECTIONS as MAX_CONNECTIONS,
    METRICS_MAX_HEAD_BYTES as MAX_HEAD_BYTES,
};
use pollwatch::MetricsServer;
use support::http::{self, raw};
use support::Watched;

fn serve() -> (Watched, MetricsServer) {
    let watched = Watched::new(Duration::from_millis(20));
    let server = watched.serve_metrics();
    (watched, server)
}

fn scrape_ok(addr: SocketAddr) {
    let response = http::get(addr, "/metrics");
    assert_eq!(response.status, 200);
    assert!(response.body.contains("# TYPE pollwatch_sites gauge"));
}

#[test]
fn other_methods_paths_and_garbage_are_refused() {
    let (_watched, server) = serve();
    let addr = server.local_addr();

    let post = raw(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET"));
    let delete = raw(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(delete.status, 405);

    assert_eq!(http::get(addr, "/").status, 404);
    assert_eq!(http::get(addr, "/other").status, 404);
    assert_eq!(http::get(addr, "/metrics/../admin").status, 404);

    for garbage in [
        &b"hello\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET /metrics HTTP/1.1 trailing\r\n\r\n",
    ] {
        let response = raw(addr, garbage).unwrap();
        assert_eq!(response.status, 400, "{garbage:?}");
    }
    scrape_ok(addr);
}

#[test]
fn an_oversized_head_is_refused() {
    let (_watched, server) = serve();
    let addr = server.local_addr();
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 1024));
    request.extend_from_slice(b"\r\n\r\n");
    // A 431, or the connection closed without one: both leave the server answering.
    if let Some(response) = raw(addr, &request) {
        assert_eq!(response.status, 431);
    }
    scrape_ok(addr);
}

#[test]
fn a_silent_client_is_cut_off_and_scrapes_are_answered_meanwhile() {
    let (_watched, server) = serve();
    let addr = server.local_addr();
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(HEAD_TIMEOUT * 5)).unwrap();
    // Half a request line, then nothing.
    silent.write_all(b"GET /met").unwrap();

    let scraped = Instant::now();
    scrape_ok(addr);
    assert!(
        scraped.elapsed() < HEAD_TIMEOUT,
        "the scrape waited for the silent client"
    );

    let answer = http::read_all(&mut silent);
    let waited = started.elapsed();
    assert!(waited >= HEAD_TIMEOUT, "cut off after {waited:?}");
    assert!(waited < HEAD_TIMEOUT * 3, "cut off only after {waited:?}");
    if let Some(response) = http::parse(&answer) {
        assert_eq!(response.status, 408);
    }
    scrape_ok(addr);
}

#[test]
fn a_client_trickling_bytes_is_cut_off_at_the_deadline() {
    let (_watched, server) = serve();
    let addr = server.local_addr();
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let request = b"GET /metrics HTTP/1.1\r\nHost: slow\r\n\r\n";
    let mut answer = Vec::new();
    for byte in request {
        // Each byte arrives well within a read timeout, but the whole head does not arrive
        // within the deadline.
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        let mut chunk = [0u8; 256];
        match std::io::Read::read(&mut slow, &mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
        if started.elapsed() > HEAD_TIMEOUT * 3 {
            panic!("still connected after {:?}", started.elapsed());
        }
    }
    assert!(started.elapsed() >= HEAD_TIMEOUT);
    if let Some(response) = http::parse(&answer) {
        assert_eq!(response.status, 408);
    }
    scrape_ok(addr);
}

#[test]
fn too_many_idle_clients_are_turned_away_and_scrapes_resume() {
    let (_watched, server) = serve();
    let addr = server.local_addr();
    // Idle connections take every connection place until the head deadline.
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let turned_away = raw(addr, b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(turned_away.status, 503);
    drop(idle);
    let deadline = Instant::now() + HEAD_TIMEOUT * 3;
    loop {
        let response = http::get(addr, "/metrics");
        if response.status == 200 {
            break;
        }
        assert_eq!(response.status, 503);
        assert!(Instant::now() < deadline, "never answered again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = http::get(addr, "/metrics").body;
    let refused = http::sample(
        &body,
        "pollwatch_metrics_connections_dropped_total{reason=\"over_limit\"}",
    );
    assert!(refused >= Some(1.0), "{body}");
}

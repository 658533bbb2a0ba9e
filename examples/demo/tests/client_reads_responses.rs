//! The demo's tiny HTTP client parses responses, and talks to the demo's own service.

use std::sync::Arc;
use std::time::Duration;

use pollwatch_demo::client::{self, parse_head, ClientError, Connection, Head};
use pollwatch_demo::routes::cpu::Hashing;
use pollwatch_demo::routes::fs::DataFile;
use pollwatch_demo::routes::AppState;
use pollwatch_demo::service::Service;
use pollwatch_demo::upstream::Upstream;

#[test]
fn an_incomplete_head_asks_for_more() {
    assert!(matches!(
        parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"),
        Ok(None)
    ));
}

#[test]
fn a_complete_head_gives_status_length_and_size() {
    let bytes = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nx: y\r\n\r\nnope!";
    let head = parse_head(bytes).expect("valid").expect("complete");
    assert_eq!(
        head,
        Head {
            status: 404,
            content_length: Some(5),
            close: false,
            len: bytes.len() - 5,
        }
    );
}

#[test]
fn connection_close_and_http_1_0_close_the_connection() {
    let close = parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(close.close);
    let old = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
    assert!(old.close);
}

#[test]
fn garbage_and_chunked_bodies_are_errors() {
    for bad in [
        &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(
            matches!(parse_head(bad), Err(ClientError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn an_endless_head_is_too_large() {
    let endless = vec![b'a'; client::MAX_HEAD_BYTES + 1];
    assert!(matches!(parse_head(&endless), Err(ClientError::TooLarge)));
}

#[test]
fn the_good_routes_answer_through_both_clients() {
    let upstream = Upstream::start().expect("upstream starts");
    let state = AppState {
        data_file: Arc::new(DataFile::create(4096).expect("data file")),
        locks: Arc::default(),
        hashing: Arc::new(Hashing::calibrate(Duration::from_millis(1))),
        upstream: upstream.addr(),
        upstream_timeout: Duration::from_secs(5),
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let service = Service::start("127.0.0.1:0".parse().unwrap(), state)
            .await
            .expect("service starts");
        let addr = service.addr();

        let mut connection = Connection::connect(addr).await.expect("connects");
        let fs = connection.get("/good/fs").await.expect("answers");
        assert_eq!(fs.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&fs.body),
            "good_fs: read 4096 bytes on the blocking pool\n"
        );
        // The same connection serves a second request.
        let upstream_call = connection.get("/good/client").await.expect("answers");
        assert_eq!(upstream_call.status, 200);

        let missing = client::get(addr, "/nowhere", Duration::from_secs(5))
            .await
            .expect("answers");
        assert_eq!(missing.status, 404);

        let blocking = tokio::task::spawn_blocking(move || {
            client::get_blocking(addr, "/good/block-on", Duration::from_secs(5))
        })
        .await
        .unwrap()
        .expect("answers");
        assert_eq!(
            String::from_utf8_lossy(&blocking.body),
            "good_block_on: got 42 with .await\n"
        );

        service.stop(Duration::from_secs(5)).await.expect("stops");
    });
    upstream.stop().expect("upstream stops");
}

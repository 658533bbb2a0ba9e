//! `pollwatch::axum::watch_routes` makes each route of a real axum service a pollwatch site of
//! its own, named by its method and template, with no change to the handlers and in any build,
//! and a stall is attributed to its route.
#![cfg(feature = "axum")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use pollwatch::Builder;

const THRESHOLD: Duration = Duration::from_millis(20);

/// `GET path` over HTTP/1.1 on a connection of its own: the response's status.
fn get_status(addr: SocketAddr, path: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[test]
fn each_route_is_a_site_named_by_its_method_and_template_with_its_own_polls_and_stalls() {
    let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = pollwatch::axum::watch_routes(
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(
                "/users/{id}",
                get(|| async {
                    tokio::task::yield_now().await;
                    "a user"
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    std::thread::sleep(Duration::from_millis(120));
                    "late"
                }),
            ),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(async move { axum::serve(listener, app).await });
    for id in 0..5 {
        assert_eq!(get_status(addr, &format!("/users/{id}")), 200);
    }
    for _ in 0..3 {
        assert_eq!(get_status(addr, "/health"), 200);
    }
    assert_eq!(get_status(addr, "/slow"), 200);
    assert_eq!(get_status(addr, "/nowhere"), 404);
    server.abort();
    drop(rt);
    handle.shutdown();
    let report = handle.report();
    let site = |name: &str| {
        report
            .sites
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no site {name}: {:#?}", report.sites))
    };
    let users = site("GET /users/{id}");
    assert!(users.file.ends_with("src/axum.rs"), "{users:#?}");
    assert_eq!(users.kind, "watched");
    assert_eq!(
        (users.tasks_spawned, users.polls),
        (5, 10),
        "five requests, two polls each"
    );
    let health = site("GET /health");
    assert_eq!((health.tasks_spawned, health.polls), (3, 3));
    assert_eq!(
        (&health.file, health.line, health.col),
        (&users.file, users.line, users.col),
        "one layer, one location"
    );
    let slow = site("GET /slow");
    assert_eq!((slow.polls, slow.slow_polls), (1, 1));
    assert_eq!(report.stalls.len(), 1, "{:#?}", report.stalls);
    assert_eq!(report.stalls[0].site, slow.label);
    assert_eq!(report.stalls[0].cause, "sleep");
    assert_eq!(
        report.sites.iter().map(|s| s.polls).sum::<u64>(),
        10 + 3 + 1,
        "a request that matched no route is not watched"
    );
}

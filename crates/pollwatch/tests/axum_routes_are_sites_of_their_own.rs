//! `pollwatch::axum::watch_routes` makes each route of a real axum service a pollwatch site of
//! its own, named by its method and template, with no change to the handlers and in any build,
//! and a stall is attributed to its route.
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use pollwatch::Builder;

const THRESHOLD: Duration = Duration::from_millis(20);

/// `GET path` over HTTP/1.1 on a connection of its own: the response's status.
fn get_status(addr: SocketAddr, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    support::http::raw(addr, request.as_bytes())
        .unwrap_or_else(|| panic!("no response to GET {path}"))
        .status
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
    support::routes::assert_each_route_is_a_site(&handle.report(), "src/axum.rs");
}

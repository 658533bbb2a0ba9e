//! The `watch_routes` middleware makes each route of an axum service a pollwatch site of its
//! own, named by its template, with no change to the handlers and in any build.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use pollwatch::Builder;
use pollwatch_demo::client;
use pollwatch_demo::watch_routes::watch_routes;

const THRESHOLD: Duration = Duration::from_millis(20);
const TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn each_route_is_a_site_named_by_its_template_with_its_own_polls_and_stalls() {
    let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = watch_routes(
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
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        for id in 0..5 {
            let response = client::get(addr, &format!("/users/{id}"), TIMEOUT).await;
            assert_eq!(response.unwrap().status, 200);
        }
        for _ in 0..3 {
            assert_eq!(
                client::get(addr, "/health", TIMEOUT).await.unwrap().status,
                200
            );
        }
        assert_eq!(
            client::get(addr, "/slow", TIMEOUT).await.unwrap().status,
            200
        );
        assert_eq!(
            client::get(addr, "/nowhere", TIMEOUT).await.unwrap().status,
            404
        );
        server.abort();
    });
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
    let users = site("/users/{id}");
    assert!(users.file.ends_with("src/watch_routes.rs"), "{users:#?}");
    assert_eq!(users.kind, "watched");
    assert_eq!(
        (users.tasks_spawned, users.polls),
        (5, 10),
        "five requests, two polls each"
    );
    let health = site("/health");
    assert_eq!((health.tasks_spawned, health.polls), (3, 3));
    assert_eq!(
        (&health.file, health.line, health.col),
        (&users.file, users.line, users.col),
        "one middleware, one location"
    );
    let slow = site("/slow");
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

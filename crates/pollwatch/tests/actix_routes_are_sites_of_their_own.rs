//! `pollwatch::actix::WatchRoutes` makes each route of a real actix-web app a pollwatch site
//! of its own, named by its method and pattern, with no change to the handlers and in any
//! build, and a stall is attributed to its route.
#![cfg(feature = "actix-web")]

mod support;

use std::time::Duration;

use actix_web::test::{call_service, init_service, TestRequest};
use actix_web::{web, App};
use pollwatch::Builder;

const THRESHOLD: Duration = Duration::from_millis(20);

#[test]
fn each_route_is_a_site_named_by_its_method_and_pattern_with_its_own_polls_and_stalls() {
    let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
    actix_web::rt::System::new().block_on(async {
        let app = init_service(
            App::new()
                .wrap(pollwatch::actix::WatchRoutes)
                .route("/health", web::get().to(|| async { "ok" }))
                .route(
                    "/users/{id}",
                    web::get().to(|| async {
                        tokio::task::yield_now().await;
                        "a user"
                    }),
                )
                .route(
                    "/slow",
                    web::get().to(|| async {
                        std::thread::sleep(Duration::from_millis(120));
                        "late"
                    }),
                ),
        )
        .await;
        let status = |path: String| {
            let request = TestRequest::get().uri(&path).to_request();
            let app = &app;
            async move { call_service(app, request).await.status().as_u16() }
        };
        for id in 0..5 {
            assert_eq!(status(format!("/users/{id}")).await, 200);
        }
        for _ in 0..3 {
            assert_eq!(status("/health".to_owned()).await, 200);
        }
        assert_eq!(status("/slow".to_owned()).await, 200);
        assert_eq!(status("/nowhere".to_owned()).await, 404);
    });
    handle.shutdown();
    support::routes::assert_each_route_is_a_site(&handle.report(), "src/actix.rs");
}

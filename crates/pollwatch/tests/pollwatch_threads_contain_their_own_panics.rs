//! Each of pollwatch's threads contains a panic of its own work and goes on: a panic injected
//! into the watchdog's scan, the reporter's tick and the `/metrics` endpoint's answer is
//! counted and said, and afterwards a stall is still caught, described and served.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::{Duration, Instant};

use support::http::{self, sample};
use support::{spawn_named, Watched};

const THRESHOLD: Duration = Duration::from_millis(20);

/// Waits for `done`, polled, for at most 10 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn each_thread_goes_on_after_a_panic_of_its_own() {
    let watched = Watched::new(THRESHOLD);
    let server = watched.serve_metrics();
    for thread in ["watchdog", "reporter", "metrics"] {
        pollwatch::test_support::inject_panic(thread);
    }

    // The watchdog's next scan and the reporter's next tick panic: both are caught and said.
    wait_until("both panics counted", || {
        watched.handle.report().dropped.host_panics >= 2
    });
    let report = watched.handle.report();
    assert_eq!(report.dropped.host_panics, 2);
    for work in [
        "scanning the threads for stalls",
        "summarizing the warnings",
    ] {
        assert!(
            report.diagnostics.iter().any(|d| d.contains(work)),
            "{work}: {:?}",
            report.diagnostics
        );
    }
    // The endpoint's next answer panics: that connection is closed, unanswered.
    assert!(http::raw(server.local_addr(), b"GET /metrics HTTP/1.1\r\n\r\n").is_none());

    // All three go on: a stall is caught by the watchdog, described by the reporter, and
    // served by the endpoint.
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            spawn_named("sleeper", async {
                std::thread::sleep(Duration::from_millis(150));
            })
            .await
            .unwrap();
        })
    });
    // Described by the reporter, which may still be parsing the debug info for the first
    // stack, and ended (metrics count a stall when it ends).
    wait_until("the stall described and ended", || {
        watched
            .handle
            .report()
            .stalls
            .iter()
            .any(|s| s.task_name == "sleeper" && s.ended)
    });
    let report = watched.report();
    let stall = report
        .stalls
        .iter()
        .find(|s| s.task_name == "sleeper")
        .unwrap();
    assert_eq!(stall.cause, "sleep");
    assert!(stall.call_site.is_some(), "{stall:?}");
    let response = http::get(server.local_addr(), "/metrics");
    assert_eq!(response.status, 200);
    let body = &response.body;
    assert_eq!(
        sample(
            body,
            "pollwatch_metrics_connections_dropped_total{reason=\"panic\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert!(body.contains("cause=\"sleep\""), "{body}");
    assert_eq!(
        sample(body, "pollwatch_dropped_events_total{kind=\"host_panics\"}"),
        Some(2.0)
    );
}

//! `init()` with the `prometheus` feature serves `/metrics` on the configured address and stops
//! serving when its guard is dropped. (Its own test binary: `init` installs the global
//! subscriber.)

mod support;

use support::http;

#[test]
fn init_serves_metrics_until_the_guard_is_dropped() {
    let report_dir = std::env::temp_dir().join(format!("pollwatch-metrics-{}", std::process::id()));
    let builder = pollwatch::Builder::new()
        .report_dir(&report_dir)
        .metrics_addr("127.0.0.1:0".parse().unwrap());
    // This test is about /metrics alone: no tokio-console feed when that feature is on too.
    #[cfg(feature = "console")]
    let builder = builder.console(false);
    let guard = builder.try_init().unwrap();
    let addr = guard.metrics_addr().expect("serving with the feature on");
    assert_eq!(http::get(addr, "/metrics").status, 200);
    drop(guard);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after the guard was dropped"
    );
    let _ = std::fs::remove_dir_all(report_dir);
}

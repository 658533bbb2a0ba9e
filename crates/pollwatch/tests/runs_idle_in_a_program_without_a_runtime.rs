//! Installed in a program that never builds a tokio runtime (tracing events and spans, plain
//! threads), pollwatch stays out of the way: nothing panics, the setup check does not claim
//! that task spans are hidden, the watchdog runs with no thread to watch, and dropping the
//! guard writes a report of zero sites and no stall. (Its own test binary: `init` installs the
//! global subscriber.)

use std::time::{Duration, Instant};

use pollwatch::Builder;

#[test]
fn a_program_without_a_runtime_gets_an_empty_report() {
    let dir = std::env::temp_dir().join(format!("pollwatch-no-runtime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::env::set_var("POLLWATCH_REPORT_DIR", &dir);
    std::env::set_var("POLLWATCH_METRICS_ADDR", "127.0.0.1:0");
    std::env::set_var("TOKIO_CONSOLE_BIND", "127.0.0.1:0");
    let guard = Builder::new()
        .with_default_env()
        .unwrap()
        .setup_check_after(Duration::from_millis(20))
        .init();

    tracing::info!("an event outside any span");
    let span = tracing::info_span!("work", step = 1);
    span.in_scope(|| tracing::warn!("an event inside a span"));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let span = tracing::info_span!("thread", i);
                let _entered = span.enter();
                tracing::info!(i, "from a plain thread");
                tracing::info_span!("nested").in_scope(|| tracing::debug!("deeper"));
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    // The setup check runs on the reporter's tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !guard.handle().setup_checked() {
        assert!(Instant::now() < deadline, "the setup check never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let handle = guard.handle();
    assert_ne!(pollwatch::test_support::watchdog_tid(handle), 0, "watching");
    assert_eq!(
        pollwatch::test_support::slot_count(handle),
        0,
        "no thread polled"
    );
    let diagnostics = handle.diagnostics();
    assert!(
        !diagnostics.iter().any(|d| d.contains("no task span")),
        "no runtime runs, so nothing is hidden: {diagnostics:#?}"
    );

    drop(guard);
    let report = pollwatch_report::json::read(&dir.join("report.json")).expect("written on drop");
    assert!(report.sites.is_empty(), "{:#?}", report.sites);
    assert_eq!(report.totals.polls, 0);
    assert_eq!(report.totals.stalls, 0);
    assert_eq!(report.totals.threads, 0);
    assert!(report.stalls.is_empty() && report.slow_polls.is_empty());
    assert_eq!(report.dropped.host_panics, 0);
    assert!(dir.join("report.txt").exists());
    assert!(dir.join(pollwatch_report::hlog::FILE).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

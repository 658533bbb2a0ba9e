//! A second `init` is refused before it starts anything: `try_init` returns
//! `InitError::AlreadyInstalled` (not an address error, although the first install holds the
//! addresses it would serve on), `init` panics saying a global subscriber is already
//! installed, no thread of pollwatch's or console-subscriber's is added, and the pollwatch
//! installed first goes on catching stalls. (Its own test binary: `init` installs the global
//! subscriber.)
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pollwatch::InitError;

/// The names of this process's threads that belong to pollwatch or console-subscriber.
fn background_threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("pollwatch") || name.starts_with("console"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_second_init_is_refused_and_the_first_runs_on() {
    let dir = std::env::temp_dir().join(format!("pollwatch-second-init-{}", std::process::id()));
    std::env::set_var("POLLWATCH_REPORT_DIR", &dir);
    std::env::set_var("POLLWATCH_THRESHOLD", "20ms");
    std::env::set_var("POLLWATCH_METRICS_ADDR", "127.0.0.1:0");
    std::env::set_var("TOKIO_CONSOLE_BIND", "127.0.0.1:0");
    let guard = pollwatch::try_init().expect("the first install");
    // The second asks for the address the first serves on, as two installs with the default
    // address do.
    #[cfg(feature = "prometheus")]
    std::env::set_var(
        "POLLWATCH_METRICS_ADDR",
        guard.metrics_addr().unwrap().to_string(),
    );
    // A new thread names itself once running: wait for all of the first install's.
    let mut expected = vec!["pollwatch-repor", "pollwatch-watch"];
    if cfg!(feature = "prometheus") {
        expected.push("pollwatch-metri");
    }
    if cfg!(feature = "console") {
        expected.push("console_subscri");
    }
    if cfg!(any(feature = "metrics", feature = "opentelemetry")) {
        expected.push("pollwatch-publi");
    }
    expected.sort();
    let deadline = Instant::now() + Duration::from_secs(10);
    while background_threads() != expected {
        assert!(Instant::now() < deadline, "{:?}", background_threads());
        std::thread::sleep(Duration::from_millis(5));
    }
    let running = background_threads();

    let err = pollwatch::try_init().expect_err("a second install is refused");
    assert!(matches!(err, InitError::AlreadyInstalled), "{err:?}");
    assert!(
        err.to_string()
            .contains("a global tracing subscriber is already installed"),
        "{err}"
    );
    assert_eq!(background_threads(), running, "try_init started nothing");

    let panic = catch_unwind(AssertUnwindSafe(pollwatch::init)).expect_err("init panics");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("a global tracing subscriber is already installed"),
        "{message:?}"
    );
    assert_eq!(background_threads(), running, "init started nothing");

    // The first install is still the subscriber, and catches a stall.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(100)) })
            .await
            .unwrap()
    });
    drop(rt);
    let written = guard.finish().unwrap();
    let report = pollwatch_report::json::read(&written.json).unwrap();
    assert_eq!(report.totals.stalls, 1, "{:#?}", report.stalls);
    std::fs::remove_dir_all(&dir).unwrap();
}

//! An application that installs its own handler for pollwatch's capture signal after pollwatch
//! started (here through `tokio::signal`) never has it called by pollwatch: stalls from then
//! on are still caught and reported, without a stack, and the report says the handler was
//! replaced and what to set; the application's handler still gets the signals sent to it, and
//! pollwatch goes on catching stalls. (Its own test binary: the disposition is the process's.)
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(all(tokio_unstable, target_os = "linux"))]

mod support;

use std::time::{Duration, Instant};

use pollwatch::Report;
use support::{spawn_named, Watched};
use tokio::signal::unix::{signal, SignalKind};

const THRESHOLD: Duration = Duration::from_millis(20);

fn stall_named<'a>(report: &'a Report, name: &str) -> &'a pollwatch_report::Stall {
    let stalls: Vec<_> = report
        .stalls
        .iter()
        .filter(|s| s.task_name == name)
        .collect();
    assert_eq!(stalls.len(), 1, "{name}: {:#?}", report.stalls);
    stalls[0]
}

/// A report once the stalls of the tasks named `names` have been reported and have ended
/// (waiting up to 10 s: the reporter handles the watchdog's samples on its own thread and
/// sends no signal a test could wait on).
fn reported(watched: &Watched, names: &[&str]) -> Report {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = watched.report();
        let done = names.iter().all(|name| {
            report
                .stalls
                .iter()
                .any(|s| s.task_name == *name && s.ended)
        });
        if done {
            return report;
        }
        assert!(Instant::now() < deadline, "{names:?}: {:#?}", report.stalls);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A task named `name` that sleeps on its worker for four thresholds.
async fn stall(name: &str) {
    spawn_named(name, async { std::thread::sleep(THRESHOLD * 4) })
        .await
        .unwrap();
}

#[test]
fn a_handler_installed_after_start_is_never_called_and_stalls_are_still_reported() {
    let watched = Watched::new(THRESHOLD);
    let signal_number = pollwatch_capture::default_signal().unwrap();
    let rt = watched.runtime(2);
    watched.scope(|| rt.block_on(stall("before")));
    let report = reported(&watched, &["before"]);
    assert!(
        !stall_named(&report, "before").backtrace.is_empty(),
        "pollwatch's handler captures before the application takes the signal"
    );

    // The application takes the signal.
    let mut host = rt.block_on(async { signal(SignalKind::from_raw(signal_number)).unwrap() });
    watched.scope(|| rt.block_on(stall("after")));
    watched.scope(|| rt.block_on(stall("later")));
    let report = reported(&watched, &["after", "later"]);
    let never_called = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), host.recv())
            .await
            .is_err()
    });
    assert!(
        never_called,
        "pollwatch sent the application's handler a signal"
    );

    for name in ["after", "later"] {
        let stall = stall_named(&report, name);
        assert!(stall.backtrace.is_empty(), "{stall:#?}");
        assert_eq!(stall.call_site_missing.as_deref(), Some("no_stack"));
    }
    assert_eq!(report.totals.stalls, 3);
    let said: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| {
            d.contains(&format!(
                "installed its own handler for signal {signal_number}"
            ))
        })
        .collect();
    assert_eq!(said.len(), 1, "said once: {:#?}", report.diagnostics);
    assert!(said[0].contains("POLLWATCH_SIGNAL"), "{}", said[0]);

    // The application's handler works: a signal sent to the process reaches it.
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal_number}"))
        .arg(std::process::id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    let received = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), host.recv())
            .await
            .is_ok()
    });
    assert!(received, "the application's handler gets its signals");
    assert_eq!(watched.final_report().dropped.host_panics, 0);
}

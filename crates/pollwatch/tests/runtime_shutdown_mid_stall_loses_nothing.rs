//! A runtime shut down while one of its workers is stalled (the watchdog following the stall
//! and capturing its stack) neither panics nor hangs pollwatch: the stall is counted once and
//! ends in the report with its whole length, and pollwatch goes on to catch the stalls of the
//! next runtime. Each way a runtime goes away is tried: `shutdown_timeout`,
//! `shutdown_background`, and a drop on another thread while its worker is still stuck.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pollwatch::Report;
use support::{spawn_named, Watched};

const THRESHOLD: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug)]
enum Shutdown {
    Timeout,
    Background,
    DropOnAnotherThread,
}

/// Waits (up to 10 s) until `done` holds for a fresh report: the watchdog and the reporter
/// work on their own ticks and send no signal a test could wait on.
fn wait_for(watched: &Watched, what: &str, done: impl Fn(&Report) -> bool) -> Report {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        watched.handle.flush();
        let report = watched.handle.report();
        if done(&report) {
            return report;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stalls_named<'a>(report: &'a Report, name: &str) -> Vec<&'a pollwatch_report::Stall> {
    report
        .stalls
        .iter()
        .filter(|s| s.task_name == name)
        .collect()
}

/// A task named "stuck" holds a worker until released; the runtime goes away by `shutdown`
/// while the stall is open; then the worker is released.
fn shut_down_mid_stall(shutdown: Shutdown) {
    let watched = Watched::new(THRESHOLD);
    let rt = watched.runtime(2);
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    watched.scope(|| {
        let _entered = rt.enter();
        spawn_named("stuck", async move {
            started_tx.send(Instant::now()).unwrap();
            // A blocking wait on the worker: the stall, open until the test ends it.
            let _ = release_rx.recv();
        });
    });
    let started = started_rx.recv().unwrap();
    wait_for(&watched, "the stall is caught while open", |r| {
        stalls_named(r, "stuck").len() == 1
    });

    // The runtime goes away while its worker is still stuck in the stalled poll.
    let dropper = match shutdown {
        Shutdown::Timeout => {
            rt.shutdown_timeout(Duration::from_millis(10));
            None
        }
        Shutdown::Background => {
            rt.shutdown_background();
            None
        }
        Shutdown::DropOnAnotherThread => Some(std::thread::spawn(move || drop(rt))),
    };
    let held = started.elapsed();
    release_tx.send(()).unwrap();
    if let Some(dropper) = dropper {
        dropper.join().expect("dropping the runtime does not panic");
    }
    let report = wait_for(&watched, "the stall has ended", |r| {
        stalls_named(r, "stuck").iter().all(|s| s.ended)
    });
    let stuck = stalls_named(&report, "stuck");
    assert_eq!(stuck.len(), 1, "{shutdown:?}: counted once: {stuck:#?}");
    // The TSC's scaling to ns against the system clock `held` comes from: 1% allowed.
    assert!(
        stuck[0].duration_ns >= held.as_nanos() as u64 * 99 / 100,
        "{shutdown:?}: its whole length, at least the {held:?} before the shutdown: {:?}",
        stuck[0]
    );

    // pollwatch goes on: a stall in a new runtime is caught.
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            spawn_named("again", async { std::thread::sleep(THRESHOLD * 4) })
                .await
                .unwrap();
        })
    });
    let report = watched.final_report();
    assert_eq!(
        report.totals.stalls, 2,
        "{shutdown:?}: {:#?}",
        report.stalls
    );
    assert_eq!(stalls_named(&report, "stuck").len(), 1);
    assert_eq!(stalls_named(&report, "again").len(), 1);
    assert_eq!(report.dropped.host_panics, 0, "{:#?}", report.diagnostics);
    assert_eq!(report.dropped.stall_samples, 0);
}

#[test]
fn shutdown_timeout_mid_stall() {
    shut_down_mid_stall(Shutdown::Timeout);
}

#[test]
fn shutdown_background_mid_stall() {
    shut_down_mid_stall(Shutdown::Background);
}

#[test]
fn a_drop_on_another_thread_mid_stall() {
    shut_down_mid_stall(Shutdown::DropOnAnotherThread);
}

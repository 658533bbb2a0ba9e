//! A thread that stalls and then exits (a `block_on` on a short-lived thread, one that panics
//! out of its stalled poll) leaves one stall, ended with its whole length, and its slot is
//! reclaimed; the watchdog goes on to catch the next stall. A new thread that takes the exited
//! thread's slot before the watchdog's next look is never mistaken for the stalled one: the
//! stall keeps its own length, not the new thread's poll.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pollwatch::{Builder, Report};
use support::Watched;

const THRESHOLD: Duration = Duration::from_millis(10);

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
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The stalls of the stalling threads, in detection order.
fn short_lived(report: &Report) -> Vec<&pollwatch_report::Stall> {
    report
        .stalls
        .iter()
        .filter(|s| s.thread == "short-lived")
        .collect()
}

/// Starts a thread that runs `block_on` of a future blocking until released (its stall),
/// then panics out of the poll when `panics`; returns the release and the thread.
fn stalling_thread(
    watched: &Watched,
    panics: bool,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>, Instant) {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let dispatch = watched.dispatch.clone();
    let thread = std::thread::Builder::new()
        .name("short-lived".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    started_tx.send(Instant::now()).unwrap();
                    let _ = release_rx.recv();
                    if panics {
                        panic!("the stalled poll panics, and its thread ends");
                    }
                });
            })
        })
        .unwrap();
    let started = started_rx.recv().unwrap();
    (release_tx, thread, started)
}

/// Starts a thread that runs one `block_on`, slow (past the threshold) but too short to be
/// caught as a stall but by chance (then a stall of its own, on its own thread, which the
/// test leaves aside), and lives on until the returned sender is dropped;
/// returns once the poll has ended. Its slow poll has the same sequence number on its
/// thread as the stalled poll on the exited one.
fn quick_thread(watched: &Watched) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let dispatch = watched.dispatch.clone();
    let (polled_tx, polled_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async { std::thread::sleep(THRESHOLD + Duration::from_millis(1)) });
            polled_tx.send(()).unwrap();
            let _ = exit_rx.recv();
        })
    });
    polled_rx.recv().unwrap();
    (exit_tx, thread)
}

#[test]
fn threads_that_exit_after_a_stall_leave_one_stall_each_and_no_slot() {
    // A long tick: everything below happens between two of the watchdog's looks.
    let watched = Watched::new_with(
        Builder::new()
            .threshold(THRESHOLD)
            .tick(Duration::from_millis(100)),
    );
    let rounds = 4;
    for round in 0..rounds {
        let panics = round % 2 == 1;
        let (release, thread, started) = stalling_thread(&watched, panics);
        wait_for(&watched, "the stall is caught while open", |r| {
            short_lived(r).len() == round + 1
        });
        let held = started.elapsed();
        release.send(()).unwrap();
        assert_eq!(thread.join().is_err(), panics);
        // Its slot is reclaimed now, and a new thread takes it and ends a short poll before
        // the watchdog looks again.
        watched.handle.flush();
        let (exit, quick) = quick_thread(&watched);
        let report = wait_for(&watched, "the stall has ended", |r| {
            r.stalls.iter().all(|s| s.ended)
        });
        drop(exit);
        quick.join().unwrap();
        let stalls = short_lived(&report);
        assert_eq!(stalls.len(), round + 1, "{:#?}", report.stalls);
        let stall = stalls.last().unwrap();
        // pollwatch times polls with the TSC, scaled to ns against the system clock that
        // `held` comes from: allow 1% for the scaling (the next thread's poll is ~11 ms).
        let at_least = held.as_nanos() as u64 * 99 / 100;
        assert!(
            stall.duration_ns >= at_least,
            "the stall's own length, at least {held:?}, not the next thread's poll: {stall:#?}"
        );
    }
    watched.handle.flush();
    let slots = pollwatch::test_support::slot_count(&watched.handle);
    let report = watched.final_report();
    assert_eq!(short_lived(&report).len(), rounds, "{:#?}", report.stalls);
    // Beyond those, only a quick thread's poll caught by chance is a stall.
    let quick = report.stalls.len() - rounds;
    assert_eq!(
        report.totals.stalls,
        (rounds + quick) as u64,
        "{:#?}",
        report.stalls
    );
    assert!(report.stalls.iter().all(|s| s.ended));
    assert_eq!(report.dropped.host_panics, 0, "{:#?}", report.diagnostics);
    // One stalling thread and one short-lived one at a time.
    assert!(
        slots <= 2,
        "{slots} slots after {} threads polled, two at a time",
        report.totals.threads
    );
    assert_eq!(report.totals.threads as usize, rounds * 2);
}

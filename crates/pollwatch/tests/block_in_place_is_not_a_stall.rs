//! A poll blocking inside `tokio::task::block_in_place` holds no worker (the worker's queue
//! went to another thread first), so it is counted as blocking in place: never a stall, never
//! a stall or slow-poll warning. The same blocking call outside it is still a stall.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use pollwatch::Builder;
use support::{Captured, Watched};

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(150);

/// Runs `blocking` in one task spawned from this file on a two-worker runtime; returns the
/// final report and the WARN events about this file's tasks.
fn run_in_task(blocking: impl FnOnce() + Send + 'static) -> (pollwatch::Report, Vec<String>) {
    let output = Captured::default();
    let watched = Watched::with_output(Builder::new().threshold(THRESHOLD), &output);
    let rt = watched.runtime(2);
    watched.scope(|| rt.block_on(async { tokio::spawn(async move { blocking() }).await.unwrap() }));
    drop(rt);
    let report = watched.final_report();
    let warnings = output
        .text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("block_in_place_is_not_a_stall.rs"))
        .map(str::to_owned)
        .collect();
    (report, warnings)
}

/// The site of the task `run_in_task` spawned.
fn site(report: &pollwatch::Report) -> &pollwatch_report::SiteReport {
    report
        .sites
        .iter()
        .find(|s| s.file.contains("block_in_place_is_not_a_stall.rs"))
        .expect("the task's site")
}

#[test]
fn a_sleep_inside_block_in_place_is_counted_in_place_not_as_a_stall() {
    let (report, warnings) =
        run_in_task(|| tokio::task::block_in_place(|| std::thread::sleep(BLOCK)));
    let site = site(&report);
    assert_eq!(site.polls_in_place, 1, "the watchdog caught it: {site:#?}");
    assert_eq!(report.totals.polls_in_place, 1);
    assert_eq!((site.stalls, report.totals.stalls), (0, 0));
    assert!(
        report.stalls.iter().all(|s| s.site != site.label),
        "{:#?}",
        report.stalls
    );
    assert!(
        report.slow_polls.iter().all(|s| s.site != site.label),
        "not listed as a slow poll: {:#?}",
        report.slow_polls
    );
    assert!(
        warnings.is_empty(),
        "no stall or slow-poll warning: {warnings:#?}"
    );
    let text = pollwatch_report::text::render(&report, 10);
    assert!(
        text.contains("polls blocking in place (allowed, not stalls): 1"),
        "{text}"
    );
    // It is still a poll, and a slow one, in the site's poll times.
    assert!(site.slow_polls >= 1 && site.max_ns >= BLOCK.as_nanos() as u64);
}

#[test]
fn the_same_sleep_outside_block_in_place_is_a_stall() {
    let (report, warnings) = run_in_task(|| std::thread::sleep(BLOCK));
    let site = site(&report);
    assert_eq!(site.polls_in_place, 0);
    assert_eq!(site.stalls, 1, "{site:#?}");
    let stall = report
        .stalls
        .iter()
        .find(|s| s.site == site.label)
        .expect("the stall is listed");
    assert_eq!(stall.cause, "sleep");
    assert!(
        warnings.iter().any(|w| w.contains("so far")),
        "a stall warning while it ran: {warnings:#?}"
    );
}

#[test]
fn blocking_after_leaving_block_in_place_is_a_stall() {
    // The watchdog first finds the poll in place, then looks again at twice, four times ...
    // the threshold and finds it blocking outside: from then on it is a stall.
    let (report, warnings) = run_in_task(|| {
        tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(60)));
        std::thread::sleep(Duration::from_millis(300));
    });
    let site = site(&report);
    assert_eq!(site.polls_in_place, 0, "{site:#?}");
    assert_eq!(site.stalls, 1, "{site:#?}");
    let stall = report
        .stalls
        .iter()
        .find(|s| s.site == site.label)
        .expect("the stall is listed");
    assert_eq!(stall.cause, "sleep");
    assert!(
        stall.duration_ns >= Duration::from_millis(360).as_nanos() as u64,
        "the poll's own length: {stall:#?}"
    );
    assert!(!warnings.is_empty(), "warned about: {warnings:#?}");
}

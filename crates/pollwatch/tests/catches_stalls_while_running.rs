//! The watchdog reports stalls while they run: even when every worker and the `block_on`
//! thread are stuck, in two runtimes at once, again at 2x, 4x ... the threshold, without /proc
//! or signals, and with the per-site rate limit.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use pollwatch::Builder;
use support::{Captured, Watched};

const THRESHOLD: Duration = Duration::from_millis(20);

#[test]
fn every_worker_and_the_block_on_thread_stuck_are_all_caught_while_stuck() {
    let watched = Watched::new_with(Builder::new().threshold(THRESHOLD));
    let rt = watched.runtime(2);
    let block = Duration::from_millis(200);
    // Both workers and the block_on thread block at the same time.
    let all_in = Arc::new(Barrier::new(3));
    watched.scope(|| {
        rt.block_on(async {
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let all_in = all_in.clone();
                    tokio::spawn(async move {
                        all_in.wait();
                        std::thread::sleep(block);
                    })
                })
                .collect();
            all_in.wait();
            std::thread::sleep(block);
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    let report = watched.final_report();
    assert_eq!(report.stalls.len(), 3, "{:#?}", report.stalls);
    let mut threads: Vec<_> = report.stalls.iter().map(|s| s.tid).collect();
    threads.sort();
    threads.dedup();
    assert_eq!(threads.len(), 3, "three different threads held");
    for stall in &report.stalls {
        assert!(
            stall.detected_after_ns < block.as_nanos() as u64,
            "caught while still stuck: {stall:#?}"
        );
        assert!(stall.ended);
        assert!(stall.duration_ns >= block.as_nanos() as u64);
    }
    assert!(report
        .stalls
        .iter()
        .any(|s| s.site.contains("catches_stalls_while_running.rs")));
}

#[test]
fn two_runtimes_in_one_process_are_both_watched() {
    let watched = Watched::new_with(Builder::new().threshold(THRESHOLD));
    let first = watched.runtime(1);
    let second = watched.runtime(1);
    let block = Duration::from_millis(100);
    watched.scope(|| {
        let a = first.spawn(async move { std::thread::sleep(block) });
        let b = second.spawn(async move { std::thread::sleep(block) });
        first.block_on(a).unwrap();
        second.block_on(b).unwrap();
    });
    let report = watched.final_report();
    let tids: std::collections::HashSet<i32> = report.stalls.iter().map(|s| s.tid).collect();
    assert_eq!(report.stalls.len(), 2, "{:#?}", report.stalls);
    assert_eq!(tids.len(), 2);
}

#[test]
fn a_long_stall_is_looked_at_again_and_an_unfinished_one_is_still_reported() {
    let watched = Watched::new_with(Builder::new().threshold(THRESHOLD));
    let rt = watched.runtime(1);
    let release = Arc::new(Barrier::new(2));
    let in_task = release.clone();
    let task = watched.scope(|| {
        rt.spawn(async move {
            // Stuck until the test has looked at the report.
            in_task.wait();
        })
    });
    // Wait until the stall has been sampled at 2x and 4x the threshold.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = watched.handle.report();
        if report.stalls.first().is_some_and(|s| s.samples.len() >= 2) {
            break report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no resamples: {:#?}",
            report.stalls
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let stall = &report.stalls[0];
    assert!(!stall.ended, "still running, still reported");
    assert_eq!(stall.state, "sleeping", "{stall:#?}");
    assert!(stall.samples[0].at_ns >= 2 * THRESHOLD.as_nanos() as u64);
    assert!(stall.samples[1].at_ns >= 4 * THRESHOLD.as_nanos() as u64);
    release.wait();
    rt.block_on(task).unwrap();
    let report = watched.final_report();
    assert!(report.stalls[0].ended);
}

#[test]
fn without_proc_or_signals_a_stall_still_has_task_site_and_duration() {
    let watched = Watched::new_with(Builder::new().threshold(THRESHOLD).inspect_threads(false));
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            tokio::task::Builder::new()
                .name("fallback")
                .spawn(async { std::thread::sleep(Duration::from_millis(100)) })
                .unwrap()
                .await
                .unwrap()
        })
    });
    let report = watched.final_report();
    assert_eq!(report.stalls.len(), 1, "{:#?}", report.stalls);
    let stall = &report.stalls[0];
    assert_eq!(stall.task_name, "fallback");
    assert!(stall.site.contains("catches_stalls_while_running.rs"));
    assert!(stall.duration_ns >= 100_000_000);
    assert_eq!(stall.state, "unknown");
    assert!(stall.backtrace.is_empty() && stall.syscall.is_none());
    assert!(stall.message.contains("\"fallback\""), "{}", stall.message);
}

#[test]
fn with_backtraces_off_the_thread_state_is_still_read() {
    let watched = Watched::new_with(Builder::new().threshold(THRESHOLD).backtraces(false));
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(100)) })
                .await
                .unwrap()
        })
    });
    let report = watched.final_report();
    let stall = report
        .stalls
        .iter()
        .find(|s| s.site.contains("catches_stalls"))
        .expect("a stall");
    assert!(stall.backtrace.is_empty() && stall.capture_ns.is_none());
    assert_eq!(stall.cause, "sleep");
}

#[test]
fn warnings_are_rate_limited_per_site_but_every_stall_is_counted() {
    let output = Captured::default();
    let watched = Watched::with_output(
        Builder::new()
            .threshold(THRESHOLD)
            .stall_warnings_per_minute(2),
        &output,
    );
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            for _ in 0..4 {
                tokio::spawn(async { std::thread::sleep(Duration::from_millis(60)) })
                    .await
                    .unwrap();
            }
        })
    });
    let report = watched.final_report();
    let site = report
        .sites
        .iter()
        .find(|s| s.stalls > 0)
        .expect("a site with stalls");
    assert_eq!(site.stalls, 4);
    assert_eq!(site.warnings_suppressed, 2);
    assert_eq!(report.dropped.stall_warnings_suppressed, 2);
    assert_eq!(report.stalls.len(), 4, "every stall is listed");
    let text = output.text();
    let caught = text.lines().filter(|l| l.contains("so far")).count();
    let ended = text.lines().filter(|l| l.contains("ended=true")).count();
    assert_eq!((caught, ended), (2, 2), "{text}");
    assert!(
        !text.contains("in one poll"),
        "no duplicate slow-poll warnings: {text}"
    );
}

#[test]
fn the_innermost_span_inside_the_task_is_named() {
    let output = Captured::default();
    let watched = Watched::with_output(Builder::new().threshold(THRESHOLD), &output);
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async {
                let span = tracing::info_span!("load_users", user = 3);
                span.in_scope(|| std::thread::sleep(Duration::from_millis(100)));
            })
            .await
            .unwrap()
        })
    });
    let report = watched.final_report();
    let stall = report
        .stalls
        .iter()
        .find(|s| s.site.contains("catches_stalls"))
        .expect("a stall");
    assert_eq!(
        stall.span.as_deref(),
        Some("load_users{user=3}"),
        "{stall:#?}"
    );
    assert!(
        output.text().contains("span=\"load_users{user=3}\""),
        "{}",
        output.text()
    );
}

#[test]
fn a_stall_followed_by_other_polls_keeps_its_exact_duration() {
    // The watchdog looks every 25 ms; by its look after the stall ends, the worker has polled
    // other tasks, so the watchdog can only estimate the end. The report has the poll's own
    // measurement instead.
    let watched = Watched::new_with(
        Builder::new()
            .threshold(Duration::from_millis(10))
            .tick(Duration::from_millis(25)),
    );
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            let stuck = support::spawn_named("stuck", async {
                std::thread::sleep(Duration::from_millis(40));
            });
            let busy: Vec<_> = (0..50)
                .map(|_| {
                    support::spawn_named("busy", async {
                        let until = std::time::Instant::now() + Duration::from_millis(120);
                        while std::time::Instant::now() < until {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            stuck.await.unwrap();
            for b in busy {
                b.await.unwrap();
            }
        })
    });
    let report = watched.final_report();
    let site = support::site_named(&report, "stuck");
    let stalls: Vec<_> = report
        .stalls
        .iter()
        .filter(|s| s.site == site.label)
        .collect();
    assert_eq!(stalls.len(), 1, "{:#?}", report.stalls);
    assert!(stalls[0].ended);
    assert_eq!(stalls[0].duration_ns, site.max_ns, "{:#?}", stalls[0]);
    assert!(stalls[0]
        .message
        .contains(&pollwatch_report::units::format_duration_ns(site.max_ns)));
}

//! The report directory is kept up to date while the application runs: the interval log
//! counts every poll once, the reports are rewritten periodically, and writing on request
//! works any number of times.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pollwatch::Builder;
use pollwatch_report::{hlog, json, Report};
use support::{site_named, spawn_named, Watched};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pollwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `tasks` tasks named "worker" that each yield `polls - 1` times, in `rounds` rounds.
fn run_load(watched: &Watched, rounds: usize, tasks: usize, polls: usize) {
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            for _ in 0..rounds {
                let handles: Vec<_> = (0..tasks)
                    .map(|_| {
                        spawn_named("worker", async move {
                            for _ in 1..polls {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    });
}

/// Waits (up to 20 s) for `path` to exist: the reporter thread writes it on its own schedule
/// and sends no signal a test could wait on.
fn wait_for_file(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn count(log: &hlog::Log, site: Option<&str>) -> u64 {
    log.series(site).map(|i| i.histogram.len()).sum()
}

#[test]
fn the_interval_log_counts_every_poll_once() {
    let dir = temp_dir("live-log");
    let watched = Watched::new_with(
        Builder::new()
            .report_dir(&dir)
            .log_interval(Duration::from_millis(20)),
    );
    run_load(&watched, 10, 20, 5);
    watched.handle.shutdown();
    let report = watched.handle.report();
    let files = watched.handle.write_report(&dir).unwrap();
    let log = hlog::read(&files.json.with_file_name(hlog::FILE)).unwrap();
    assert!(!log.truncated_tail);
    let intervals = log.series(None).count();
    // The load lasts at least 150 ms, 7 intervals of 20 ms; the reporter thread writes them on
    // its own schedule and, starved of CPU on a busy machine, folds late ones together.
    assert!(intervals >= 2, "{intervals} intervals");
    // Intervals follow each other without gaps.
    let all: Vec<_> = log.series(None).collect();
    for pair in all.windows(2) {
        let end = pair[0].start_s + pair[0].length_s;
        assert!(
            (pair[1].start_s - end).abs() < 0.002,
            "{end} -> {}",
            pair[1].start_s
        );
    }
    let site = site_named(&report, "worker");
    assert_eq!(site.polls, 10 * 20 * 5);
    // A task's drop is recorded as a poll until its span closes: an interval written in
    // between keeps it as one (docs/reports.md).
    let logged = count(&log, Some(&site.label));
    assert!(
        (site.polls..=site.polls + site.drops).contains(&logged),
        "{logged} logged; {} polls, {} drops",
        site.polls,
        site.drops
    );
    let drops: u64 = report.sites.iter().map(|s| s.drops).sum();
    let all = count(&log, None);
    assert!(
        (report.totals.polls..=report.totals.polls + drops).contains(&all),
        "{all} logged; {} polls, {drops} drops",
        report.totals.polls
    );
    // The log's percentiles are the report's (both come from the same buckets; the report's
    // are capped at the exact maximum), when the log holds the same polls.
    let mut merged = pollwatch_report::histogram::new_histogram();
    for i in log.series(Some(&site.label)) {
        merged.add(&i.histogram).unwrap();
    }
    let from_log = pollwatch_report::histogram::percentiles(&merged);
    if logged == site.polls {
        assert_eq!(from_log.p50_ns.min(site.max_ns), site.percentiles.p50_ns);
        assert_eq!(from_log.p99_ns.min(site.max_ns), site.percentiles.p99_ns);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reports_are_rewritten_while_running() {
    let dir = temp_dir("flush");
    let watched = Watched::new_with(
        Builder::new()
            .report_dir(&dir)
            .flush_every(Duration::from_millis(50))
            .log_interval(Duration::from_millis(20)),
    );
    run_load(&watched, 2, 10, 3);
    // No write was requested: the reporter thread writes on its own.
    let json_file = dir.join(pollwatch_report::write::JSON_FILE);
    assert!(
        wait_for_file(&json_file),
        "{} never written",
        json_file.display()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut read: Report;
    loop {
        read = json::read(&json_file).unwrap();
        let polls = read
            .sites
            .iter()
            .find(|s| s.name == "worker")
            .map(|s| s.polls);
        if polls == Some(2 * 10 * 3) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        site_named(&read, "worker").polls,
        2 * 10 * 3,
        "the periodic report caught up"
    );
    assert!(dir.join(hlog::FILE).exists());
    watched.handle.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn write_report_works_any_number_of_times_anywhere() {
    let live = temp_dir("again-live");
    let elsewhere = temp_dir("again-elsewhere");
    let watched = Watched::new_with(
        Builder::new()
            .report_dir(&live)
            .log_interval(Duration::from_millis(20)),
    );
    for round in 1..=3u64 {
        run_load(&watched, 1, 10, 2);
        for dir in [&live, &elsewhere] {
            let files = watched.handle.write_report(dir).unwrap();
            let report = json::read(&files.json).unwrap();
            let site = site_named(&report, "worker");
            assert_eq!(site.polls, round * 20);
            let log = hlog::read(dir).unwrap();
            let at = dir.display();
            assert_eq!(
                count(&log, Some(&site.label)),
                round * 20,
                "round {round} in {at}"
            );
            assert_eq!(
                count(&log, None),
                report.totals.polls,
                "round {round} in {at}"
            );
        }
    }
    watched.handle.shutdown();
    for dir in [live, elsewhere] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn without_a_live_log_the_written_log_covers_the_whole_run() {
    let dir = temp_dir("whole-run");
    let watched = Watched::new(Duration::from_millis(50));
    run_load(&watched, 2, 5, 4);
    let files = watched.handle.write_report(&dir).unwrap();
    let report = json::read(&files.json).unwrap();
    let log = hlog::read(&dir).unwrap();
    assert_eq!(log.series(None).count(), 1);
    assert_eq!(count(&log, None), report.totals.polls);
    assert_eq!(count(&log, Some(&site_named(&report, "worker").label)), 40);
    watched.handle.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_report_dir_is_diagnosed_and_counted() {
    let blocker = temp_dir("not-a-dir");
    std::fs::write(&blocker, b"a file where the report directory should be").unwrap();
    let watched = Watched::new_with(
        Builder::new()
            .report_dir(blocker.join("reports"))
            .log_interval(Duration::from_millis(10)),
    );
    let started = std::time::Instant::now();
    run_load(&watched, 3, 5, 2);
    watched.handle.shutdown();
    let ran = started.elapsed();
    let report = watched.handle.report();
    assert_eq!(
        site_named(&report, "worker").polls,
        30,
        "the application ran on"
    );
    // The first try fails, then one retry per backoff period (1 s, doubling) while the run
    // lasted, and the last try at shutdown (made whatever the backoff).
    let failed = report.dropped.report_writes_failed;
    assert!(
        (1..=2 + ran.as_secs()).contains(&failed),
        "{failed} failed writes in {ran:?}"
    );
    let diagnostics = watched.handle.diagnostics();
    assert!(
        diagnostics
            .iter()
            .any(|d| d.contains("not-a-dir") && d.contains("report")),
        "{diagnostics:?}"
    );
    std::fs::remove_file(&blocker).unwrap();
}

#[test]
fn a_full_interval_log_rolls_over_and_keeps_its_timing() {
    let dir = temp_dir("roll-over");
    let watched = Watched::new_with(
        Builder::new()
            .report_dir(&dir)
            .log_interval(Duration::from_millis(10))
            .log_max_bytes(4096),
    );
    // Many sites, so each interval is a few hundred bytes: the log fills within the run.
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            for round in 0..150 {
                let handles: Vec<_> = (0..8)
                    .map(|i| {
                        spawn_named(["a", "b", "c", "d", "e", "f", "g", "h"][i], async move {
                            tokio::task::yield_now().await;
                        })
                    })
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(5 + round % 3)).await;
            }
        })
    });
    watched.handle.shutdown();
    let report = watched.handle.report();
    let rolled = hlog::read(&dir.join("report.1.hlog")).unwrap();
    let current = hlog::read(&dir.join(hlog::FILE)).unwrap();
    let first_rolled = rolled.series(None).next().unwrap();
    // The new log may have no interval yet, when the run ended right after it began.
    if let Some(first_current) = current.series(None).next() {
        assert!(
            first_current.start_s > first_rolled.start_s,
            "the new log's intervals are timed from the same base"
        );
    }
    for log in [&rolled, &current] {
        assert_eq!(log.start_time_unix_s, rolled.start_time_unix_s);
    }
    let kept = count(&rolled, None) + count(&current, None);
    assert!(
        kept > 0 && kept <= report.totals.polls,
        "{kept} of {}",
        report.totals.polls
    );
    for file in ["report.1.hlog", hlog::FILE] {
        let len = std::fs::metadata(dir.join(file)).unwrap().len();
        assert!(len < 4096 + 4096, "{file} is {len} bytes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

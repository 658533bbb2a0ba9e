//! Reports to test with, built from real histograms.
#![allow(dead_code)]

use std::path::PathBuf;

use pollwatch_report::histogram::{self, Histogram};
use pollwatch_report::{
    CallSiteCount, Dropped, Frame, Harm, Report, SiteReport, SlowPoll, Stall, StallSample, Totals,
    FORMAT, VERSION,
};

/// A site with a histogram of `values_ns`.
pub fn site(id: u32, label: &str, values_ns: &[u64]) -> SiteReport {
    let mut h = histogram::new_histogram();
    for &v in values_ns {
        h.saturating_record(v);
    }
    site_from(id, label, &h)
}

/// A site whose figures come from `h`.
pub fn site_from(id: u32, label: &str, h: &Histogram<u64>) -> SiteReport {
    let busy_ns = h
        .iter_recorded()
        .map(|v| v.value_iterated_to() * v.count_at_value())
        .sum();
    SiteReport {
        id,
        label: label.to_owned(),
        file: label.split(':').next().unwrap_or_default().to_owned(),
        line: 10 + id,
        col: 5,
        name: String::new(),
        kind: "task".to_owned(),
        tasks_spawned: 1 + u64::from(id),
        polls: h.len(),
        slow_polls: h.count_between(10_000_000, histogram::HIGHEST_NS),
        busy_ns,
        max_ns: h.max(),
        drops: 1,
        drop_ns: 2_000,
        percentiles: histogram::percentiles(h),
        histogram: histogram::encode(h),
        stalls: 0,
        warnings_suppressed: 0,
        polls_in_place: 0,
        delay_task_ns: 0,
        delay_unknown_stalls: 0,
        call_sites: Vec::new(),
    }
}

/// A stall caught at `site`: a `std::fs::read_to_string` blocked in `read()`.
pub fn stall(site: &str) -> Stall {
    Stall {
        task_id: 7,
        task_name: "ingest".to_owned(),
        site: site.to_owned(),
        thread: "tokio-rt-worker".to_owned(),
        worker_index: None,
        tid: 4242,
        started_at_ns: 1_500_000_000,
        detected_after_ns: 12_100_000,
        detection_lag_ns: 2_100_000,
        duration_ns: 312_000_000,
        ended: true,
        cpu_ns: Some(900_000),
        run_ns: None,
        runqueue_wait_ns: None,
        throttled_ns: None,
        state: "sleeping".to_owned(),
        syscall: Some("read".to_owned()),
        blocked_on: Some("/data/users.json".to_owned()),
        cause: "file_io".to_owned(),
call_site: Some("src/store.rs:17".to_owned()),
        call_site_path: None,
        call_function: None,
        call_site_missing: None,
        blocking_call: Some("std::fs::read_to_string".to_owned()),
        dependency_call: None,
        kind: "poll".into(),
        dropping: None,
        suggestion: "Use tokio::fs::read_to_string or spawn_blocking.".to_owned(),
        span: Some("load_users{user=3}".to_owned()),
        backtrace: vec![Frame {
            function: "app::store::load".to_owned(),
            file: Some("src/store.rs".to_owned()),
            line: Some(17),
            module: None,
        }],
        capture_ns: Some(40_000),
        samples: vec![StallSample {
            at_ns: 20_000_000,
            state: "sleeping".to_owned(),
            syscall: Some("read".to_owned()),
            call_site: Some("src/store.rs:17".to_owned()),
            cpu_ns: Some(1_000_000),
        }],
        harm: Some(Harm {
            looks: 4,
            workers: 2,
            global_queue_max: 6,
            local_queue_max: Some(9),
            delay_task_ns: 3_744_000_000,
            local_set: false,
        }),
        message: "task \"ingest\" (src/ingest.rs:42:5) held worker \"tokio-rt-worker\" for 312ms: blocked in read() on /data/users.json at src/store.rs:17 (std::fs::read_to_string). Use tokio::fs::read_to_string or spawn_blocking.".to_owned(),
    }
}

/// A report with two sites: `src/ingest.rs` holds its threads far longer than `src/tick.rs`.
pub fn two_site_report() -> Report {
    let ingest: Vec<u64> = (1..=1_000u64)
        .map(|i| i * 10_000)
        .chain([312_000_000, 45_000_000])
        .collect();
    let tick: Vec<u64> = (1..=200u64).map(|i| 20_000 + i * 100).collect();
    let mut sites = vec![
        site(0, "src/ingest.rs:42:5 \"ingest\"", &ingest),
        site(1, "src/tick.rs:80:9", &tick),
    ];
    sites[0].stalls = 1;
    // The stall's harm (see `stall`).
    sites[0].delay_task_ns = 3_744_000_000;
    sites[0].call_sites = vec![CallSiteCount {
        call_site: "src/store.rs:17".to_owned(),
        blocking_call: Some("std::fs::read_to_string".to_owned()),
        cause: "file_io".to_owned(),
        count: 1,
    }];
    let stalls = vec![stall(&sites[0].label)];
    let slow_polls = vec![
        SlowPoll {
            task_id: 7,
            task_name: "ingest".to_owned(),
            site: sites[0].label.clone(),
            thread: "tokio-runtime-worker".to_owned(),
            duration_ns: 45_000_000,
            kind: "poll".to_owned(),
            ended_at_ns: 1_000_000_000,
        },
        SlowPoll {
            task_id: 7,
            task_name: "ingest".to_owned(),
            site: sites[0].label.clone(),
            thread: "tokio-runtime-worker".to_owned(),
            duration_ns: 312_000_000,
            kind: "drop".to_owned(),
            ended_at_ns: 2_000_000_000,
        },
    ];
    Report {
        format: FORMAT.to_owned(),
        version: VERSION,
        pollwatch_version: "0.1.0".to_owned(),
        taken_at_unix_ms: 1_700_000_000_000,
        uptime_ns: 60_000_000_000,
        threshold_ns: 10_000_000,
        max_sites: 1024,
        totals: Totals {
            polls: sites.iter().map(|s| s.polls).sum(),
            slow_polls: sites.iter().map(|s| s.slow_polls).sum(),
            busy_ns: sites.iter().map(|s| s.busy_ns).sum(),
            tasks_spawned: 3,
            threads: 2,
            stalls: 1,
            polls_in_place: 0,
            delay_task_ns: sites.iter().map(|s| s.delay_task_ns).sum(),
        },
        dropped: Dropped::default(),
        sites,
        slow_polls,
        diagnostics: Vec::new(),
        stalls,
    }
}

/// A fresh, empty directory for one test, under cargo's per-target temporary directory. Each
/// test passes its own `test` name; the directory is emptied at the start of the next run.
pub fn fresh_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pollwatch-report-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

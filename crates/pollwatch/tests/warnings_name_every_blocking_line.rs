//! The live log names every distinct blocking line: warnings are limited per blocking line
//! (spawn site and call site), not per spawn site, so one spawn site (a server's accept loop)
//! blocking at eight lines logs all eight, as does stable mode, where every stall's site is the
//! worker's. What a line does not warn about is counted and said once, in a summary.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use pollwatch::Builder;
use support::Captured;
#[cfg(tokio_unstable)]
use support::Watched;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(100);
/// The file the blocking lines are in, as call sites name it.
const FILE: &str = "warnings_name_every_blocking_line.rs";

/// Blocks for [`BLOCK`] at the `which`th of eight lines of this file; returns that line.
#[rustfmt::skip]
fn block_at(which: usize) -> u32 {
    match which % 8 {
        0 => { std::thread::sleep(BLOCK); line!() }
        1 => { std::thread::sleep(BLOCK); line!() }
        2 => { std::thread::sleep(BLOCK); line!() }
        3 => { std::thread::sleep(BLOCK); line!() }
        4 => { std::thread::sleep(BLOCK); line!() }
        5 => { std::thread::sleep(BLOCK); line!() }
        6 => { std::thread::sleep(BLOCK); line!() }
        _ => { std::thread::sleep(BLOCK); line!() }
    }
}

/// A task spawned at one line for all: what a server's accept loop does.
fn spawn_at_one_site(which: usize) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move { block_at(which) })
}

/// The lines of this file named by the warnings of stalls caught while running.
fn lines_warned(text: &str) -> BTreeSet<u32> {
    text.lines()
        .filter(|l| l.contains("so far"))
        .filter_map(|l| {
            let at = l.find(&format!("call_site=\"crates/pollwatch/tests/{FILE}:"))?;
            let rest = &l[at..];
            let line = rest.split(':').nth(1)?.trim_end_matches('"');
            line.split('"').next()?.parse().ok()
        })
        .collect()
}

/// The summaries of warnings over the limit, with the count each says.
#[cfg(tokio_unstable)]
fn summaries(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter(|l| l.contains("not warned about one by one"))
        .map(|l| {
            let count = l
                .split("suppressed=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (count, l.to_owned())
        })
        .collect()
}

#[cfg(tokio_unstable)]
#[test]
fn one_spawn_site_blocking_at_eight_lines_warns_at_each() {
    let output = Captured::default();
    let watched = Watched::with_output(Builder::new().threshold(THRESHOLD), &output);
    let rt = watched.runtime(1);
    let lines: BTreeSet<u32> = watched.scope(|| {
        rt.block_on(async {
            let mut lines = BTreeSet::new();
            for which in 0..8 {
                lines.insert(spawn_at_one_site(which).await.unwrap());
            }
            lines
        })
    });
    drop(rt);
    let report = watched.final_report();
    assert_eq!(lines.len(), 8);
    let text = output.text();
    // Each stall is caught while it runs: it blocks five thresholds.
    assert_eq!(report.totals.stalls, 8, "{:#?}", report.stalls);
    assert_eq!(
        lines_warned(&text),
        lines,
        "one warning per blocking line:\n{text}"
    );
    assert!(
        summaries(&text).is_empty(),
        "nothing was over the limit:\n{text}"
    );
}

/// Stable mode: the worker hooks give every stall the one site `worker (task unknown)`.
#[test]
fn stable_mode_blocking_at_eight_lines_warns_at_each() {
    let output = Captured::default();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(output.clone())
        .with_ansi(false)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let subscriber = tracing::Dispatch::new(tracing_subscriber::registry().with(fmt));
    let (rt, handle) = tracing::dispatcher::with_default(&subscriber, || {
        let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1).enable_all();
        // The stable worker hooks, in either build: events go to this thread's subscriber.
        pollwatch::test_support::worker_hooks(&handle, &mut builder);
        (builder.build().unwrap(), handle)
    });
    let lines: BTreeSet<u32> = rt.block_on(async {
        // The worker hooks see a worker from its first park on.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut lines = BTreeSet::new();
        for which in 0..8 {
            lines.insert(spawn_at_one_site(which).await.unwrap());
        }
        lines
    });
    drop(rt);
    handle.shutdown();
    let report = support::consistent(handle.report());
    let text = output.text();
    let worker_stalls = report.stalls.iter().filter(|s| s.task_id == 0).count();
    assert_eq!(worker_stalls, 8, "{:#?}", report.stalls);
    assert_eq!(
        lines_warned(&text),
        lines,
        "one warning per blocking line:\n{text}"
    );
    drop(subscriber);
}

#[cfg(tokio_unstable)]
#[test]
fn stalls_over_the_limit_at_one_line_are_said_in_one_summary() {
    const LIMIT: u32 = 5;
    let output = Captured::default();
    let watched = Watched::with_output(
        Builder::new()
            .threshold(Duration::from_millis(10))
            .stall_warnings_per_minute(LIMIT),
        &output,
    );
    let rt = watched.runtime(1);
    let line = watched.scope(|| {
        rt.block_on(async {
            let mut line = 0;
            for _ in 0..30 {
                line = tokio::spawn(async {
                    std::thread::sleep(Duration::from_millis(40));
                    line!() - 1
                })
                .await
                .unwrap();
            }
            line
        })
    });
    drop(rt);
    let report = watched.final_report();
    let text = output.text();
    let call_site = format!("crates/pollwatch/tests/{FILE}:{line}");
    let stalls = report
        .stalls
        .iter()
        .filter(|s| s.call_site.as_deref() == Some(&call_site))
        .count() as u64;
    assert!(stalls > u64::from(LIMIT), "{stalls} stalls caught: {text}");
    let warned = text
        .lines()
        .filter(|l| l.contains("so far") && l.contains(&call_site))
        .count() as u64;
    assert_eq!(warned, u64::from(LIMIT), "{text}");
    let said: Vec<_> = summaries(&text)
        .into_iter()
        .filter(|(_, l)| l.contains(&call_site))
        .collect();
    assert_eq!(said.len(), 1, "one summary for the line:\n{text}");
    assert_eq!(said[0].0, stalls - u64::from(LIMIT), "{}", said[0].1);
    assert!(
        said[0]
            .1
            .contains(&format!("{} more stalls at {call_site}", stalls - 5)),
        "{}",
        said[0].1
    );
}

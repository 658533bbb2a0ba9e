//! Scraped over HTTP again and again while tasks stall and slow drops are relabelled, no
//! counter series of `/metrics` (histogram buckets, sums and counts included) ever decreases,
//! and once everything has settled the stall counters are exact.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use support::http::{self, sample};
use support::{site_named, spawn_named, Watched};

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(30);

/// Holds its thread when dropped: a task's drop that is first recorded as a poll.
struct SlowDrop;

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(BLOCK);
    }
}

/// Every counter series of a scrape (`*_total`, `*_bucket`, `*_sum`, `*_count`) and its value.
fn counters(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = &series[..series.find('{').unwrap_or(series.len())];
            ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.ends_with(s))
                .then(|| (series.to_owned(), value.parse().unwrap()))
        })
        .collect()
}

/// Scrapes `addr` until `stop`, asserting that no series decreases or vanishes from one
/// scrape to the next; returns how many scrapes it made.
fn scrape_until(addr: SocketAddr, stop: &AtomicBool) -> usize {
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut scrapes = 0;
    while !stop.load(Relaxed) {
        let response = http::get(addr, "/metrics");
        assert_eq!(response.status, 200);
        let now = counters(&response.body);
        for (series, before) in &last {
            let after = now.get(series);
            assert!(
                after.is_some_and(|a| a >= before),
                "scrape {scrapes}: {series} went from {before} to {after:?}"
            );
        }
        last = now;
        scrapes += 1;
    }
    scrapes
}

#[test]
fn no_counter_decreases_while_drops_are_relabelled_and_stalls_settle() {
    let watched = Watched::new(THRESHOLD);
    let server = watched.serve_metrics();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        std::thread::spawn(move || scrape_until(addr, &stop))
    };
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            for _ in 0..10 {
                // A task whose future holds its thread when it is dropped (aborted)...
                let guard = SlowDrop;
                let dropper = spawn_named("slow_drop", async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                });
                tokio::task::yield_now().await;
                dropper.abort();
                // ...and one that blocks in its poll: a stall.
                let sleeper = spawn_named("sleeper", async {
                    std::thread::sleep(BLOCK);
                });
                assert!(dropper.await.unwrap_err().is_cancelled());
                sleeper.await.unwrap();
            }
        })
    });
    // Every stall has ended and every slow-poll record is drained: the figures are final.
    watched.handle.shutdown();
    let body = http::get(addr, "/metrics").body;
    stop.store(true, Relaxed);
    let scrapes = scraper.join().expect("no counter decreased");
    assert!(scrapes > 0);

    let report = watched.handle.report();
    let sleeper = site_named(&report, "sleeper");
    let label = &sleeper.label;
    let stalls: f64 = http::lines_of(&body, "pollwatch_stalls_total")
        .iter()
        .filter(|l| l.contains(&format!("site=\"{}\"", label.replace('"', "\\\""))))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(stalls, sleeper.stalls as f64, "{body}");
    // The held time is the sum of the stalls' own lengths, as the report has them.
    let held = sample(
        &body,
        &format!(
            "pollwatch_stall_held_seconds_total{{site=\"{}\"}}",
            label.replace('"', "\\\"")
        ),
    )
    .unwrap_or(0.0);
    let lengths_ns: u64 = report
        .stalls
        .iter()
        .filter(|s| s.site == *label)
        .map(|s| s.duration_ns)
        .sum();
    assert!(
        (held - lengths_ns as f64 / 1e9).abs() < 1e-6,
        "held {held}, stalls {lengths_ns} ns"
    );
    // The slow drops, relabelled from slow polls in reports, are counted where they held the
    // thread.
    let dropper = site_named(&report, "slow_drop");
    assert_eq!(dropper.drops, 10);
    assert!(dropper.drop_ns >= 10 * BLOCK.as_nanos() as u64);
    let slow = sample(
        &body,
        &format!(
            "pollwatch_slow_polls_total{{site=\"{}\"}}",
            dropper.label.replace('"', "\\\"")
        ),
    );
    assert_eq!(slow, Some((dropper.slow_polls + 10) as f64), "{body}");
}

//! Nested polls, `spawn_blocking`, worker spans and drops are each handled as DESIGN.md says.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use support::{site_named, spawn_local_named, spawn_named, Watched};

// A threshold no poll that does not block reaches on a busy machine (two CPU hogs on two
// cores deschedule a thread for a few scheduler slices, not 100 ms), and blocking well past it.
const THRESHOLD: Duration = Duration::from_millis(100);
const BLOCK: Duration = Duration::from_millis(300);

#[test]
fn a_local_set_inside_block_on_blames_the_local_task_not_block_on() {
    let watched = Watched::new(THRESHOLD);
    let rt = watched.scope(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });
    watched.scope(|| {
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            spawn_local_named("local", async { std::thread::sleep(BLOCK) })
                .await
                .unwrap();
        });
    });
    let report = watched.report();
    let local = site_named(&report, "local");
    assert_eq!(local.kind, "local");
    assert_eq!(local.slow_polls, 1, "the local task held the thread");
    assert!(local.max_ns >= BLOCK.as_nanos() as u64);
    for site in report.sites.iter().filter(|s| s.kind != "local") {
        assert_eq!(
            site.slow_polls, 0,
            "{} is not blamed for the nested poll",
            site.label
        );
    }
    assert!(
        report.totals.busy_ns < 2 * BLOCK.as_nanos() as u64,
        "nested time is counted once"
    );
    assert_eq!(report.slow_polls.len(), 1);
    assert_eq!(report.slow_polls[0].site, local.label);
}

#[test]
fn spawn_blocking_and_worker_threads_are_never_flagged() {
    let watched = Watched::new(THRESHOLD);
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            tokio::task::spawn_blocking(|| std::thread::sleep(BLOCK))
                .await
                .unwrap();
            tokio::time::sleep(BLOCK).await;
        })
    });
    drop(rt);
    let report = watched.report();
    assert_eq!(report.totals.slow_polls, 0, "{:#?}", report.slow_polls);
    for site in &report.sites {
        assert!(
            ["task", "block_on", "local"].contains(&site.kind.as_str()),
            "{} is {}",
            site.label,
            site.kind
        );
        assert!(
            site.max_ns < THRESHOLD.as_nanos() as u64,
            "{} held its thread",
            site.label
        );
    }
}

struct SlowDrop;

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(BLOCK);
    }
}

#[test]
fn a_slow_drop_is_labelled_a_drop_and_not_counted_as_a_poll() {
    let watched = Watched::new(THRESHOLD);
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            let guard = SlowDrop;
            let task = spawn_named("slow_drop", async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
            tokio::task::yield_now().await;
            task.abort();
            let _ = task.await;
        })
    });
    let report = watched.report();
    let site = site_named(&report, "slow_drop");
    assert_eq!(site.drops, 1);
    assert!(site.drop_ns >= BLOCK.as_nanos() as u64);
    assert_eq!(site.slow_polls, 0, "the slow drop is not a slow poll");
    assert!(site.max_ns < THRESHOLD.as_nanos() as u64);
    let slow: Vec<_> = report
        .slow_polls
        .iter()
        .filter(|s| s.site == site.label)
        .collect();
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].kind, "drop");
}

#[test]
fn a_blocking_poll_is_flagged_once_and_a_quick_one_is_not() {
    let watched = Watched::new(THRESHOLD);
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            let slow = spawn_named("slow", async { std::thread::sleep(BLOCK) });
            let quick = spawn_named("quick", async {
                std::thread::sleep(Duration::from_millis(1))
            });
            slow.await.unwrap();
            quick.await.unwrap();
        })
    });
    let report = watched.report();
    let slow = site_named(&report, "slow");
    let quick = site_named(&report, "quick");
    assert_eq!(slow.slow_polls, 1);
    assert_eq!(quick.slow_polls, 0);
    let entry = report
        .slow_polls
        .iter()
        .find(|s| s.site == slow.label)
        .unwrap();
    assert!(entry.duration_ns >= BLOCK.as_nanos() as u64);
    assert_eq!(entry.kind, "poll");
    assert!(entry.thread.starts_with("tokio-r"), "{}", entry.thread);
}

//! Every poll of every task is counted exactly once, compared with tokio's own poll hook.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use support::{site_named, spawn_named, Watched};

const TASKS: u64 = 200;
const YIELDS: u64 = 50;

#[test]
fn every_poll_is_counted_once_and_matches_tokios_poll_hook() {
    let watched = Watched::new(Duration::from_secs(1));
    let hook_polls = Arc::new(AtomicU64::new(0));
    let counter = hook_polls.clone();
    let rt = watched.runtime_with(2, move |b| {
        b.on_before_task_poll(move |_| {
            counter.fetch_add(1, Relaxed);
        });
    });
    watched.scope(|| {
        rt.block_on(async {
            let handles: Vec<_> = (0..TASKS)
                .map(|_| {
                    spawn_named("yielder", async {
                        for _ in 0..YIELDS {
                            tokio::task::yield_now().await
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        })
    });
    drop(rt);
    let report = watched.report();
    let site = site_named(&report, "yielder");
    assert_eq!(site.tasks_spawned, TASKS);
    assert_eq!(
        site.polls,
        TASKS * (YIELDS + 1),
        "one poll per yield plus the last"
    );
    assert_eq!(
        site.drops, TASKS,
        "each completed task's drop is a drop, not a poll"
    );
    let task_polls: u64 = report
        .sites
        .iter()
        .filter(|s| s.kind == "task")
        .map(|s| s.polls)
        .sum();
    assert_eq!(
        task_polls,
        hook_polls.load(Relaxed),
        "pollwatch and tokio's hook agree"
    );
    let block_on = report
        .sites
        .iter()
        .find(|s| s.kind == "block_on")
        .expect("block_on site");
    assert!(block_on.polls >= 1);
    assert_eq!(report.totals.slow_polls, 0);
    let hist = pollwatch_report::histogram::decode(&site.histogram).unwrap();
    assert_eq!(hist.len(), site.polls, "the histogram holds every poll");
}

//! Threads come and go (runtimes built and dropped, `block_in_place` replacement workers,
//! `block_on` on short-lived threads). The slot of a thread that exited is reclaimed once its
//! data is merged: what it recorded stays in every count, and the number of slots a scan, a
//! report or a scrape goes through stays at the number of threads alive at once.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use support::{site_named, spawn_named, Watched};

const RUNTIMES: usize = 50;
const TASKS: usize = 4;

#[test]
fn a_hundred_exited_workers_leave_their_counts_and_not_their_slots() {
    let watched = Watched::new(Duration::from_millis(10));
    for _ in 0..RUNTIMES {
        let rt = watched.runtime(2);
        watched.scope(|| {
            rt.block_on(async {
                for _ in 0..TASKS {
                    spawn_named("churn", async {}).await.unwrap();
                }
            })
        });
        // Dropping the runtime joins its worker threads: their slots can be reclaimed now.
        drop(rt);
        watched.handle.flush();
    }
    let slots = pollwatch::test_support::slot_count(&watched.handle);
    let report = watched.final_report();
    let churn = site_named(&report, "churn");
    assert_eq!(
        churn.polls,
        (RUNTIMES * TASKS) as u64,
        "every poll of an exited thread is still counted"
    );
    assert_eq!(churn.tasks_spawned, (RUNTIMES * TASKS) as u64);
    assert!(
        report.totals.threads as usize > RUNTIMES,
        "threads that polled, exited ones included: {}",
        report.totals.threads
    );
    // The test thread (`block_on`) and one runtime's two workers at a time.
    assert!(
        slots <= 4,
        "{slots} slots held after {} threads polled",
        report.totals.threads
    );
}

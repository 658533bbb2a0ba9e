//! A stall is one poll holding its thread past the threshold by itself. A `LocalSet` (or any
//! poll that drives others) running many short polls in one go is not one, whatever it adds
//! up to; a blocking poll nested in it is, and two blocking polls in one outer poll are two.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::{Duration, Instant};

use support::{site_named, spawn_local_named, Watched};

// Well above what the LocalSet's own code between two polls takes on a busy machine (a debug
// build with two CPU hogs beside it held it 11-15 ms against a 10 ms threshold), and below
// what one LocalSet tick of 61 short polls adds up to.
const THRESHOLD: Duration = Duration::from_millis(50);
const BLOCK: Duration = Duration::from_millis(200);
/// One short poll's work: far below the threshold, 61 of them far above.
const SHORT: Duration = Duration::from_millis(1);

/// Spins on the CPU for `duration`: work, not a blocking call.
fn work_for(duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn current_thread(watched: &Watched) -> tokio::runtime::Runtime {
    watched.scope(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

#[test]
fn a_local_set_running_many_short_polls_is_not_a_stall() {
    let watched = Watched::new(THRESHOLD);
    let rt = current_thread(&watched);
    watched.scope(|| {
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            // Spawned 20 at a time, so that the spawning poll's own work stays short on a busy
            // machine too (a debug build's 200 spawns took 22 ms with two CPU hogs beside).
            let mut tasks = Vec::new();
            for _ in 0..10 {
                for _ in 0..20 {
                    tasks.push(spawn_local_named("short", async {
                        for _ in 0..3 {
                            work_for(SHORT);
                            tokio::task::yield_now().await;
                        }
                    }));
                }
                tokio::task::yield_now().await;
            }
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
    let report = watched.final_report();
    let short = site_named(&report, "short");
    assert_eq!(short.polls, 800, "every poll is measured");
    // The LocalSet's own poll runs up to 61 of these in one go (tens of milliseconds), but no
    // poll holds the thread past the threshold by itself: no stall. (On a machine short of
    // CPU a 0.5 ms poll can still be held past it, and is then a slow poll, and a stall when
    // the watchdog sees it running; the thread waiting for a CPU between two polls is a
    // `descheduled` stall of the LocalSet's own poll, blaming no code.)
    // (Nor does a wait for the process's memory-map lock, `memory_map`.)
    let blaming_code = report
        .sites
        .iter()
        .flat_map(|s| &s.call_sites)
        .filter(|c| c.cause != "descheduled" && c.cause != "memory_map")
        .map(|c| c.count)
        .sum::<u64>();
    assert!(
        blaming_code <= short.slow_polls,
        "a stall is a poll that was slow by itself ({} slow): {:#?}",
        short.slow_polls,
        report.stalls
    );
}

#[test]
fn a_blocking_poll_inside_a_local_set_is_its_own_stall() {
    let watched = Watched::new(THRESHOLD);
    let rt = current_thread(&watched);
    watched.scope(|| {
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            for _ in 0..20 {
                spawn_local_named("short", async { work_for(SHORT) });
            }
            spawn_local_named("blocking", async { std::thread::sleep(BLOCK) })
                .await
                .unwrap();
        });
    });
    let report = watched.final_report();
    let blocking = site_named(&report, "blocking");
    let short = site_named(&report, "short");
    let stalls: Vec<_> = report
        .stalls
        .iter()
        .filter(|s| s.site == blocking.label)
        .collect();
    assert_eq!(stalls.len(), 1, "{:#?}", report.stalls);
    let blaming_code = report
        .stalls
        .iter()
        .filter(|s| s.cause != "descheduled" && s.cause != "memory_map")
        .count() as u64;
    assert!(
        blaming_code <= 1 + short.slow_polls,
        "short polls are stalls only when slow by themselves: {:#?}",
        report.stalls
    );
    let stall = stalls[0];
    assert_eq!(stall.cause, "sleep");
    assert!(stall.ended);
    assert!(stall.duration_ns >= BLOCK.as_nanos() as u64);
    assert!(
        stall.duration_ns <= blocking.max_ns + 1_000_000,
        "its own time: {} vs its poll's {}",
        stall.duration_ns,
        blocking.max_ns
    );
}

#[test]
fn two_blocking_polls_in_one_outer_poll_are_two_stalls() {
    let watched = Watched::new(THRESHOLD);
    let rt = current_thread(&watched);
    watched.scope(|| {
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            // Both are ready at once: the LocalSet polls them one after the other in one tick.
            let first = spawn_local_named("first", async { std::thread::sleep(BLOCK) });
            let second = spawn_local_named("second", async { std::thread::sleep(BLOCK) });
            first.await.unwrap();
            second.await.unwrap();
        });
    });
    let report = watched.final_report();
    let mut blamed: Vec<&str> = report.stalls.iter().map(|s| s.task_name.as_str()).collect();
    blamed.sort_unstable();
    assert_eq!(blamed, ["first", "second"], "{:#?}", report.stalls);
    for stall in &report.stalls {
        assert!(stall.ended, "{stall:#?}");
        assert!(stall.call_site.is_some(), "{stall:#?}");
        assert!(
            stall.duration_ns >= BLOCK.as_nanos() as u64
                && stall.duration_ns < 2 * BLOCK.as_nanos() as u64,
            "each its own length: {stall:#?}"
        );
    }
}

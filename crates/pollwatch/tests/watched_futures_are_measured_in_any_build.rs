//! Watched futures are a poll source that needs no `--cfg tokio_unstable` and no tracing: a
//! blocking call or a CPU loop inside one is caught while it runs, at its line, with its
//! cause, and every poll is counted exactly. No `cfg` gate: CI runs this in the stable build.

mod support;

use std::time::Duration;

use pollwatch::{Builder, Watch};
use support::{consistent, site_at, site_named};

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(150);
const FILE: &str = "watched_futures_are_measured_in_any_build.rs";

/// The tests here build pollwatches, each the current one until the next is built: they take
/// turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A pollwatch fed by watched futures alone (no layer, no hooks), now the current one.
fn pollwatch() -> pollwatch::Handle {
    pollwatch::test_support::start(Builder::new().threshold(THRESHOLD))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The report once the watchdog and reporter have handled everything pending.
fn final_report(handle: &pollwatch::Handle) -> pollwatch::Report {
    handle.shutdown();
    consistent(handle.report())
}

#[test]
fn a_sleep_in_a_spawned_watched_future_is_caught_live_at_its_line() {
    let _turn = one_at_a_time();
    let handle = pollwatch();
    let rt = runtime();
    let (spawned_at, slept_at) = rt.block_on(async {
        let spawned_at = line!() + 1;
        let task = pollwatch::spawn(async {
            std::thread::sleep(BLOCK);
            line!() - 1
        });
        (spawned_at, task.await.unwrap())
    });
    drop(rt);
    let report = final_report(&handle);
    let site = site_at(&report, FILE, spawned_at);
    assert_eq!(site.kind, "watched");
    assert_eq!((site.tasks_spawned, site.polls, site.slow_polls), (1, 1, 1));
    let stall = support::only_stall(&report, FILE);
    assert_eq!(stall.site, site.label);
    assert_eq!(stall.cause, "sleep", "{stall:#?}");
    assert_eq!(stall.blocking_call.as_deref(), Some("std::thread::sleep"));
    assert!(stall.task_id > 0, "inside a tokio task: its id");
    support::assert_call_site_at(stall, FILE, slept_at);
    assert!(
        stall.detected_after_ns < BLOCK.as_nanos() as u64,
        "caught while still blocked: {stall:#?}"
    );
    assert!(stall.ended && stall.duration_ns >= BLOCK.as_nanos() as u64);
}

#[test]
fn a_spawned_watched_future_names_its_task_on_every_poll() {
    let _turn = one_at_a_time();
    let handle = pollwatch();
    let rt = runtime();
    let task_id = rt.block_on(async {
        let task = pollwatch::spawn(async {
            // Two polls before the stall: the task's id is read on the first, kept after.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            std::thread::sleep(BLOCK);
        });
        let id = task.id().to_string();
        task.await.unwrap();
        id.parse::<u64>().unwrap()
    });
    drop(rt);
    let report = final_report(&handle);
    let stall = support::only_stall(&report, FILE);
    assert_eq!(stall.task_id, task_id, "{stall:#?}");
}

#[test]
fn a_poll_that_panics_is_ended_and_counted() {
    let _turn = one_at_a_time();
    let handle = pollwatch();
    let rt = runtime();
    let (spawned_at, after_at) = rt.block_on(async {
        let spawned_at = line!() + 1;
        let task = pollwatch::spawn(async {
            tokio::task::yield_now().await;
            panic!("the second poll panics");
        });
        assert!(task.await.unwrap_err().is_panic());
        // Polled on a thread whose last poll unwound: a poll of its own, not nested in it.
        let after_at = line!() + 1;
        pollwatch::spawn(async {}).await.unwrap();
        (spawned_at, after_at)
    });
    drop(rt);
    let report = final_report(&handle);
    let panicked = site_at(&report, FILE, spawned_at);
    assert_eq!(
        (panicked.polls, panicked.slow_polls),
        (2, 0),
        "{panicked:#?}"
    );
    let after = site_at(&report, FILE, after_at);
    assert_eq!((after.polls, after.slow_polls), (1, 0), "{after:#?}");
    assert!(report.stalls.is_empty(), "{:#?}", report.stalls);
}

#[inline(never)]
fn spin_for(duration: Duration) -> u64 {
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

#[test]
fn a_cpu_loop_in_a_watched_future_is_cpu_work_at_its_site() {
    let _turn = one_at_a_time();
    let handle = pollwatch();
    let rt = runtime();
    let watched_at = rt.block_on(async {
        tokio::spawn(async {
            let watched_at = line!() + 1;
            async { spin_for(BLOCK) }.watched().await;
            watched_at
        })
        .await
        .unwrap()
    });
    drop(rt);
    let report = final_report(&handle);
    let site = site_at(&report, FILE, watched_at);
    assert_eq!(site.slow_polls, 1);
    let stall = support::only_stall(&report, FILE);
    assert_eq!(stall.site, site.label);
    assert_eq!(stall.cause, "cpu", "{stall:#?}");
    assert_eq!(stall.state, "running on CPU");
    assert!(
        stall
            .backtrace
            .iter()
            .any(|f| f.function.contains("spin_for")),
        "{stall:#?}"
    );
    assert!(stall.detected_after_ns < BLOCK.as_nanos() as u64);
}

/// A future that is pending `polls - 1` times (waking itself each time), then ready.
async fn polled(polls: usize) {
    for _ in 1..polls {
        tokio::task::yield_now().await;
    }
}

#[test]
fn every_poll_of_every_watched_future_is_counted_once() {
    const FUTURES: usize = 24;
    const POLLS: usize = 7;
    let _turn = one_at_a_time();
    let handle = pollwatch();
    let rt = runtime();
    let (spawned_at, named_at, blocked_on_at) = rt.block_on(async {
        let spawned_at = line!() + 2;
        let tasks: Vec<_> = (0..FUTURES)
            .map(|_| pollwatch::spawn(polled(POLLS)))
            .collect();
        // Named sites: digit runs fold, so these are one site.
        let named_at = line!() + 2;
        let named: Vec<_> = (0..FUTURES)
            .map(|i| tokio::spawn(polled(POLLS).watched_named(&format!("job-{i}"))))
            .collect();
        for task in tasks.into_iter().chain(named) {
            task.await.unwrap();
        }
        // Outside a task: the `block_on` future's own polls.
        let blocked_on_at = line!() + 1;
        polled(POLLS).watched().await;
        (spawned_at, named_at, blocked_on_at)
    });
    drop(rt);
    let report = final_report(&handle);
    let spawned = site_at(&report, FILE, spawned_at);
    assert_eq!(spawned.tasks_spawned, FUTURES as u64);
    assert_eq!(spawned.polls, (FUTURES * POLLS) as u64);
    assert_eq!(spawned.drops, 0);
    let named = site_named(&report, "job-#");
    assert_eq!(named.line, named_at);
    assert_eq!(named.polls, (FUTURES * POLLS) as u64);
    let blocked_on = site_at(&report, FILE, blocked_on_at);
    assert_eq!(
        (blocked_on.tasks_spawned, blocked_on.polls),
        (1, POLLS as u64)
    );
    assert_eq!(
        report.sites.iter().map(|s| s.polls).sum::<u64>(),
        ((2 * FUTURES + 1) * POLLS) as u64,
        "no other poll counted: {:#?}",
        support::labels(&report)
    );
}

#[test]
fn a_handle_feeds_its_own_pollwatch_whichever_is_current() {
    let _turn = one_at_a_time();
    let mine = pollwatch();
    let current = pollwatch();
    let rt = runtime();
    let watched_at = rt.block_on(async {
        let watched_at = line!() + 1;
        mine.watch(polled(3)).await;
        polled(2).watched().await;
        watched_at
    });
    let mine = final_report(&mine);
    let current = final_report(&current);
    assert_eq!(site_at(&mine, FILE, watched_at).polls, 3);
    assert_eq!(mine.sites.iter().map(|s| s.polls).sum::<u64>(), 3);
    assert_eq!(site_at(&current, FILE, watched_at + 1).polls, 2);
    assert_eq!(current.sites.iter().map(|s| s.polls).sum::<u64>(), 2);
}

#[test]
fn a_panic_in_a_watched_future_ends_its_poll() {
    let _turn = one_at_a_time();
    let handle = pollwatch();
    let rt = runtime();
    let panicked = rt.block_on(async {
        pollwatch::spawn(async {
            tokio::task::yield_now().await;
            panic!("the watched future fails");
        })
        .await
    });
    assert!(panicked.unwrap_err().is_panic());
    // The worker that ran it goes on polling, and its polls are not nested in the one that
    // panicked.
    rt.block_on(async {
        for _ in 0..4 {
            pollwatch::spawn(polled(2)).await.unwrap();
        }
    });
    drop(rt);
    let report = final_report(&handle);
    assert_eq!(
        report.sites.iter().map(|s| s.polls).sum::<u64>(),
        2 + 4 * 2,
        "the poll that panicked is counted"
    );
    // (The panic hook may take long enough printing a backtrace to be a stall: it ended.)
    assert!(
        report.stalls.iter().all(|s| s.ended),
        "no poll left open: {:#?}",
        report.stalls
    );
}

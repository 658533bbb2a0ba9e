//! In a build with `--cfg tokio_unstable`, a watched future polled inside a task that the
//! tracing layer (and the runtime hooks) also see is one poll, at the watched future's site.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use pollwatch::Watch;
use support::{site_at, Watched};

const FILE: &str = "watched_futures_beside_the_layer_count_each_poll_once.rs";

/// A future that is pending `polls - 1` times (waking itself each time), then ready.
async fn polled(polls: usize) {
    for _ in 1..polls {
        tokio::task::yield_now().await;
    }
}

#[test]
fn a_watched_task_seen_by_the_layer_is_counted_once_at_its_site() {
    counted_once(false);
}

#[test]
fn a_watched_task_seen_by_the_layer_and_the_hooks_is_counted_once_at_its_site() {
    counted_once(true);
}

/// Each test's pollwatch is the current one (which `.watched()` feeds) until the next is
/// built: they take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn counted_once(with_hooks: bool) {
    const TASKS: usize = 16;
    const POLLS: usize = 5;
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let watched = Watched::new(Duration::from_millis(100));
    let handle = watched.handle.clone();
    let rt = watched.runtime_with(2, |runtime| {
        if with_hooks {
            // The task hooks, in this build.
            handle.runtime(runtime);
        }
    });
    let block_on_at = line!() + 2;
    let (watched_at, in_spawn_at) = watched.scope(|| {
        rt.block_on(async {
            // Spawned by tokio, its whole future watched here.
            let watched_at = line!() + 3;
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let future = polled(POLLS).watched();
                    tokio::spawn(future)
                })
                .collect();
            // Spawned by pollwatch, a watched future inside: the innermost names the polls it
            // runs in (all but the first, which yields before it).
            let in_spawn_at = line!() + 3;
            let spawned: Vec<_> = (0..TASKS)
                .map(|_| {
                    let inner = polled(POLLS).watched();
                    pollwatch::spawn(async {
                        tokio::task::yield_now().await;
                        inner.await
                    })
                })
                .collect();
            for task in tasks.into_iter().chain(spawned) {
                task.await.unwrap();
            }
            (watched_at, in_spawn_at)
        })
    });
    drop(rt);
    let report = watched.final_report();
    let site = site_at(&report, FILE, watched_at);
    assert_eq!(site.polls, (TASKS * POLLS) as u64, "{site:#?}");
    let inner = site_at(&report, FILE, in_spawn_at);
    assert_eq!(inner.polls, (TASKS * POLLS) as u64, "{inner:#?}");
    let spawn = site_at(&report, FILE, in_spawn_at + 1);
    assert_eq!(spawn.polls, TASKS as u64, "{spawn:#?}");
    let in_file: u64 = report
        .sites
        .iter()
        .filter(|s| s.file.ends_with(FILE))
        .map(|s| s.polls)
        .sum();
    let block_on = site_at(&report, FILE, block_on_at).polls;
    assert_eq!(
        in_file - block_on,
        (2 * TASKS * POLLS + TASKS) as u64,
        "each task poll counted once: {:#?}",
        report.sites
    );
}

//! tokio's runtime hooks as the poll source: with no tracing subscriber at all, every poll of
//! every task is counted at its spawn site and a blocking poll is caught with its call site;
//! beside the tracing layer on the same handle, a poll both see is counted once, at the
//! layer's named site; the `block_on` root future is not seen (documented).
// The runtime hooks exist only under `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use pollwatch::{Builder, Handle, Report};
use tracing_subscriber::layer::SubscriberExt;

const THRESHOLD: Duration = Duration::from_millis(20);
const TASKS: u64 = 10;

fn runtime_with(handle: &Handle) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    handle.runtime(&mut builder);
    builder.build().unwrap()
}

/// `TASKS` tasks of two polls each, named `worker`, then one that blocks 100 ms; returns the
/// line of the blocking call.
async fn workload() -> u32 {
    for _ in 0..TASKS {
        tokio::task::Builder::new()
            .name("worker")
            .spawn(async { tokio::task::yield_now().await })
            .unwrap()
            .await
            .unwrap();
    }
    tokio::spawn(async {
        std::thread::sleep(Duration::from_millis(100));
        line!() - 1
    })
    .await
    .unwrap()
}

/// The sites spawned from this file.
fn sites_here(report: &Report) -> Vec<&pollwatch_report::SiteReport> {
    report
        .sites
        .iter()
        .filter(|s| s.file.contains("runtime_hooks_measure_every_task_poll"))
        .collect()
}

#[test]
fn the_hooks_alone_count_every_poll_and_catch_a_stall() {
    // No subscriber anywhere: the thread's default is `NoSubscriber`.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let dir = std::env::temp_dir().join(format!("pollwatch-hooks-{}", std::process::id()));
    // What `pollwatch::runtime` does, with a threshold and a report directory of the test's.
    let settings = Builder::new().threshold(THRESHOLD).report_dir(&dir);
    // `/metrics` on a port of its own: the default one may be another process's.
    #[cfg(feature = "prometheus")]
    let settings = settings.metrics_addr(([127, 0, 0, 1], 0).into());
    let guard = settings.runtime(&mut builder);
    let handle = guard.handle().clone();
    let rt = builder.build().unwrap();
    let line = rt.block_on(workload());
    drop(rt);
    guard.finish().expect("the report is written");
    let _ = std::fs::remove_dir_all(&dir);
    let report = support::consistent(handle.report());

    let sites = sites_here(&report);
    let named: Vec<_> = sites.iter().filter(|s| s.polls == 2 * TASKS).collect();
    assert_eq!(named.len(), 1, "one site with every poll: {sites:#?}");
    assert_eq!(named[0].tasks_spawned, TASKS);
    assert_eq!(named[0].name, "", "the hooks see no task names");
    assert!(
        sites.iter().all(|s| s.kind != "block_on"),
        "the block_on root future is not seen: {sites:#?}"
    );

    let stall = support::only_stall(&report, "runtime_hooks_measure_every_task_poll.rs");
    assert_eq!(stall.cause, "sleep");
    assert!(stall.ended);
    assert!(stall.duration_ns >= 100_000_000, "{stall:#?}");
    support::assert_call_site_at(stall, "runtime_hooks_measure_every_task_poll.rs", line);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
}

#[test]
fn hooks_beside_the_layer_count_each_poll_once_at_the_named_site() {
    let (layer, handle) = Builder::new().threshold(THRESHOLD).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let rt = runtime_with(&handle);
    tracing::dispatcher::with_default(&dispatch, || rt.block_on(workload()));
    drop(rt);
    handle.shutdown();
    let report = support::consistent(handle.report());

    let sites = sites_here(&report);
    let tasks: Vec<_> = sites.iter().filter(|s| s.kind == "task").collect();
    let polls: u64 = tasks.iter().map(|s| s.polls).sum();
    let spawned: u64 = tasks.iter().map(|s| s.tasks_spawned).sum();
    assert_eq!(polls, 2 * TASKS + 1, "each poll once: {tasks:#?}");
    assert_eq!(spawned, TASKS + 1, "each task once: {tasks:#?}");
    let worker = tasks
        .iter()
        .find(|s| s.name == "worker")
        .expect("the layer names the site");
    assert_eq!(worker.polls, 2 * TASKS, "{tasks:#?}");
    // The layer alone sees the block_on root future.
    assert!(sites.iter().any(|s| s.kind == "block_on"), "{sites:#?}");
    let stall = support::only_stall(&report, "runtime_hooks_measure_every_task_poll.rs");
    assert_eq!(stall.cause, "sleep");
    assert_eq!(
        report.stalls.len(),
        1,
        "one stall, not one per source: {:#?}",
        report.stalls
    );
}

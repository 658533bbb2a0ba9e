//! Watchdog idle CPU: the `pollwatch-watch` thread's CPU time over an idle stretch (10 s by
//! default) with 1,000 sites registered: 1,000 tasks with distinct names (one site each, the
//! layer's site table sized to keep them apart), all parked while the runtime sits idle.
//!
//! `cargo run --release -p pollwatch-bench -- watchdog-idle` (env: `IDLE_SECS`, default 10;
//! `SITES`, default 1000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

use crate::measure::{env_usize, thread_cpu_ns};
use crate::report::at_most;

pub fn run() {
    let idle_secs = env_usize("IDLE_SECS", 10);
    let sites = env_usize("SITES", 1000);
    println!();
    println!("## watchdog idle CPU: {sites} sites registered, {idle_secs} s idle, 2 workers");
    let (layer, handle) = pollwatch::Builder::new()
        .max_sites(sites * 2 + 16)
        .names_per_location(sites + 16)
        .build();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let thread_dispatch = dispatch.clone();
    let rt = tracing::dispatcher::with_default(&dispatch, || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                std::mem::forget(tracing::dispatcher::set_default(&thread_dispatch));
            })
            .build()
            .unwrap()
    });
    let release = Arc::new(Notify::new());
    let tasks = tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let tasks: Vec<_> = (0..sites)
                .map(|i| {
                    let release = release.clone();
                    tokio::task::Builder::new()
                        .name(&format!("idle-{}", letters(i)))
                        .spawn(async move { release.notified().await })
                        .unwrap()
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(500)).await;
            tasks
        })
    });
    let registered = handle.report().sites.len();
    let tid = pollwatch::test_support::watchdog_tid(&handle);
    let before = thread_cpu_ns(tid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(idle_secs as u64));
    let wall = start.elapsed();
    let after = thread_cpu_ns(tid);
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            release.notify_waiters();
            for task in tasks {
                task.await.unwrap();
            }
        });
        drop(rt);
    });
    handle.shutdown();
    println!();
    match (before, after) {
        (Some(before), Some(after)) => {
            let percent = (after - before) as f64 / wall.as_nanos() as f64 * 100.0;
            println!("| sites in the report | idle s | watchdog CPU ms | % of one core |");
            println!("|---:|---:|---:|---:|");
            println!(
                "| {registered} | {:.1} | {:.2} | {percent:.3} |",
                wall.as_secs_f64(),
                (after - before) as f64 / 1e6
            );
            println!();
            at_most(
                &format!("watchdog idle CPU with {registered} sites"),
                percent,
                0.3,
                "% of a core",
            );
        }
        _ => {
            println!("watchdog CPU: not measurable here (no watchdog thread id or /proc schedstat)")
        }
    }
}

/// `i` in letters (`a`, `b`, ..., `ba`, ...): task names without digits, which a site would
/// fold together.
fn letters(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (i % 26) as u8);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

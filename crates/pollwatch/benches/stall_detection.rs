//! Live stall capture, measured: detection lag (detected minus poll start plus threshold),
//! capture time (signal sent to frames stored), and the watchdog thread's own CPU use while
//! nothing stalls.
//!
//! `cargo bench -p pollwatch --bench stall_detection` (env: `STALLS`, default 60; `IDLE_SECS`,
//! default 10).

use std::time::{Duration, Instant};

use pollwatch_report::Stall;
use tokio::runtime::Runtime;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

const THRESHOLD: Duration = Duration::from_millis(20);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// CPU time of thread `tid` of this process, ns (Linux schedstat).
fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let stalls = env("STALLS", 60);
    let idle_secs = env("IDLE_SECS", 10);
    let (layer, handle) = pollwatch::Builder::new().threshold(THRESHOLD).build();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let rt = runtime(&dispatch);

    // Idle phase first: a runtime doing ordinary async work, nothing stalls.
    // The watchdog publishes its thread id as soon as it starts.
    let tid = (0..1000)
        .find_map(|_| {
            let tid = pollwatch::test_support::watchdog_tid(&handle);
            (tid != 0).then_some(tid).or_else(|| {
                std::thread::sleep(Duration::from_millis(1));
                None
            })
        })
        .unwrap_or(0);
    let cpu_before = thread_cpu_ns(tid);
    let idle_start = Instant::now();
    idle_load(&dispatch, &rt, Duration::from_secs(idle_secs));
    let idle_wall = idle_start.elapsed();
    let cpu_after = thread_cpu_ns(tid);

    stall_load(&dispatch, &rt, stalls);
    drop(rt);
    handle.shutdown();
    let report = handle.report();

    println!(
        "stall_detection: {stalls} stalls of {}ms (threshold {}ms, tick {}ms), 2 workers",
        (THRESHOLD * 3).as_millis(),
        THRESHOLD.as_millis(),
        pollwatch::config::DEFAULT_TICK.as_millis()
    );
    print_detection(&report.stalls, stalls);
    print_watchdog_cpu(cpu_before, cpu_after, idle_wall);
}

/// A runtime of 2 workers whose threads all report to `dispatch`.
fn runtime(dispatch: &Dispatch) -> Runtime {
    let thread_dispatch = dispatch.clone();
    tracing::dispatcher::with_default(dispatch, || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                std::mem::forget(tracing::dispatcher::set_default(&thread_dispatch));
            })
            .build()
            .unwrap()
    })
}

/// Ordinary async work for `length`: batches of 50 tasks that each sleep 1ms; nothing stalls.
fn idle_load(dispatch: &Dispatch, rt: &Runtime, length: Duration) {
    tracing::dispatcher::with_default(dispatch, || {
        rt.block_on(async {
            let deadline = tokio::time::Instant::now() + length;
            while tokio::time::Instant::now() < deadline {
                let tasks: Vec<_> = (0..50)
                    .map(|_| {
                        tokio::spawn(async { tokio::time::sleep(Duration::from_millis(1)).await })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            }
        })
    });
}

/// `stalls` sequential stalls of 3x the threshold, alternating sleep and CPU spin.
fn stall_load(dispatch: &Dispatch, rt: &Runtime, stalls: u64) {
    tracing::dispatcher::with_default(dispatch, || {
        rt.block_on(async {
            for i in 0..stalls {
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        std::thread::sleep(THRESHOLD * 3);
                    } else {
                        let start = Instant::now();
                        while start.elapsed() < THRESHOLD * 3 {
                            std::hint::spin_loop();
                        }
                    }
                })
                .await
                .unwrap();
            }
        })
    });
}

/// How many of the `stalls` caused were caught, and how late and how fast their capture was.
fn print_detection(caught: &[Stall], stalls: u64) {
    let mut lags: Vec<f64> = caught
        .iter()
        .map(|s| s.detection_lag_ns as f64 / 1e6)
        .collect();
    let mut captures: Vec<f64> = caught
        .iter()
        .filter_map(|s| s.capture_ns)
        .map(|c| c as f64 / 1e3)
        .collect();
    println!(
        "caught {} of {stalls} stalls while running ({} with a call site)",
        caught.len(),
        caught.iter().filter(|s| s.call_site.is_some()).count()
    );
    if !lags.is_empty() {
        println!(
            "detection lag: median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
            percentile(&mut lags, 0.5),
            percentile(&mut lags, 0.9),
            percentile(&mut lags, 1.0)
        );
    }
    if !captures.is_empty() {
        println!(
            "capture time: median {:.0} µs, p90 {:.0} µs, max {:.0} µs ({} captures)",
            percentile(&mut captures, 0.5),
            percentile(&mut captures, 0.9),
            percentile(&mut captures, 1.0),
            captures.len()
        );
    }
}

/// The watchdog thread's CPU use over the idle phase of `idle_wall`, from its CPU time before
/// and after.
fn print_watchdog_cpu(cpu_before: Option<u64>, cpu_after: Option<u64>, idle_wall: Duration) {
    match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => println!(
            "watchdog CPU while nothing stalls: {:.3}% of one core ({:.1} ms over {:.1} s)",
            (after - before) as f64 / idle_wall.as_nanos() as f64 * 100.0,
            (after - before) as f64 / 1e6,
            idle_wall.as_secs_f64()
        ),
        _ => println!("watchdog CPU: not measurable here (no /proc schedstat)"),
    }
}

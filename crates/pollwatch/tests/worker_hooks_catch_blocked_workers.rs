//! tokio's stable worker hooks are a poll source in any build: a worker asleep in one
//! blocking call for longer than the threshold is caught while it blocks, whatever task runs
//! on it (none of these tasks is watched), at the call's line, with its cause. What holds no
//! worker (a parked runtime, `spawn_blocking`, `block_in_place`) and what a worker only does
//! on a CPU are not stalls at this level. No `cfg` gate: CI runs this in the stable build.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use pollwatch::Builder;
use support::consistent;

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(150);
const FILE: &str = "worker_hooks_catch_blocked_workers.rs";

/// The tests here take turns: each has two workers and a watchdog that signals them, on a
/// machine with two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A two-worker runtime fed to a new pollwatch through its worker hooks alone.
fn runtime() -> (tokio::runtime::Runtime, pollwatch::Handle) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let handle = pollwatch::test_support::start(Builder::new().threshold(THRESHOLD));
    // The stable worker hooks, in either build (`pollwatch::runtime` sets them without the
    // flag).
    pollwatch::test_support::worker_hooks(&handle, &mut builder);
    (started(builder.build().unwrap()), handle)
}

/// `runtime` once every worker has parked: the hooks see a worker's busy periods from its
/// first park on.
fn started(runtime: tokio::runtime::Runtime) -> tokio::runtime::Runtime {
    let metrics = runtime.metrics();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (0..metrics.num_workers()).any(|w| metrics.worker_park_count(w) == 0) {
        assert!(Instant::now() < deadline, "the workers never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
    runtime
}

/// Evaluates a blocking call and returns the line it is on, for checking the call site.
macro_rules! blocking_at_line {
    ($call:expr) => {{
        {
            let _value = $call;
        }
        line!()
    }};
}

/// Runs `blocking` in one unwatched task; returns the final report and the line `blocking`
/// returned.
fn run_in_task(blocking: impl FnOnce() -> u32 + Send + 'static) -> (pollwatch::Report, u32) {
    let (rt, handle) = runtime();
    let line = rt.block_on(async { tokio::spawn(async move { blocking() }).await.unwrap() });
    drop(rt);
    (final_report(&handle), line)
}

/// The report once the watchdog and reporter have handled everything pending.
fn final_report(handle: &pollwatch::Handle) -> pollwatch::Report {
    handle.shutdown();
    consistent(handle.report())
}

/// The worker source's site, with what every report of it shows.
fn worker_site(report: &pollwatch::Report) -> &pollwatch_report::SiteReport {
    let site = report
        .sites
        .iter()
        .find(|s| s.kind == "worker")
        .unwrap_or_else(|| panic!("no worker site: {:#?}", report.sites));
    assert!(
        site.file.ends_with(FILE),
        "where the hooks were added: {site:#?}"
    );
    assert_eq!(site.name, "worker (task unknown)");
    assert!(site.polls >= 1, "busy periods are counted: {site:#?}");
    assert_eq!(site.slow_polls, 0, "never judged by length: {site:#?}");
    assert_eq!(site.tasks_spawned, 0);
    site
}

/// The one stall, a worker's, caught while it blocked, at `line` of this file.
fn the_worker_stall(report: &pollwatch::Report, line: u32) -> &pollwatch_report::Stall {
    let site = worker_site(report);
    assert_eq!(report.stalls.len(), 1, "{:#?}", report.stalls);
    let stall = &report.stalls[0];
    assert_eq!(stall.site, site.label);
    assert_eq!(site.stalls, 1);
    assert_eq!(stall.task_id, 0, "the task is unknown at this level");
    // The worker is known, by tokio's index (two workers here).
    let worker = stall.worker_index.expect("the worker's index");
    assert!(worker < 2, "{stall:#?}");
    assert!(
        stall
            .message
            .contains(&format!("held worker {worker} (\"{}\")", stall.thread)),
        "{}",
        stall.message
    );
    assert!(
        stall.detected_after_ns < BLOCK.as_nanos() as u64,
        "caught while still blocked: {stall:#?}"
    );
    assert!(stall.ended, "{stall:#?}");
    // Timed from the call's first sighting (the watchdog reads a worker from half the
    // threshold into its busy period, every tick, when it gets a CPU): most of the call, and
    // far more than a tick or the threshold.
    assert!(
        stall.duration_ns >= (BLOCK / 2).as_nanos() as u64,
        "the call's length, from its first sighting: {stall:#?}"
    );
    support::assert_call_site_at(stall, FILE, line);
    stall
}

#[test]
// `Builder::runtime` sets the worker hooks in a build without the flag (with it, the task
// hooks: `runtime_hooks_measure_every_task_poll`). CI runs this file in both builds.
#[cfg(not(tokio_unstable))]
fn a_sleep_in_an_unwatched_task_is_the_worker_s_stall_at_its_line() {
    let _turn = one_at_a_time();
    let dir = std::env::temp_dir().join(format!("pollwatch-workers-{}", std::process::id()));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    // The one-call setup, with a threshold and report directory of its own.
    let settings = Builder::new().threshold(THRESHOLD).report_dir(&dir);
    // `/metrics` on a port of its own: the default one may be another process's.
    #[cfg(feature = "prometheus")]
    let settings = settings.metrics_addr(([127, 0, 0, 1], 0).into());
    let guard = settings.runtime(&mut builder);
    let rt = started(builder.build().unwrap());
    let line = rt.block_on(async {
        tokio::spawn(async { blocking_at_line!(std::thread::sleep(BLOCK)) })
            .await
            .unwrap()
    });
    drop(rt);
    let report = final_report(guard.handle());
    let stall = the_worker_stall(&report, line);
    assert_eq!(stall.cause, "sleep", "{stall:#?}");
    assert!(
        stall.syscall.as_deref().unwrap_or("").contains("nanosleep"),
        "{stall:#?}"
    );
    assert_eq!(stall.blocking_call.as_deref(), Some("std::thread::sleep"));
    assert!(stall.suggestion.contains("tokio::time::sleep"));
    assert!(
        stall.message.contains("worker (task unknown)"),
        "{}",
        stall.message
    );
    let written = guard.finish().unwrap();
    let json = std::fs::read_to_string(&written.json).unwrap();
    assert!(json.contains("worker (task unknown)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_blocking_fifo_read_is_file_io_at_its_line() {
    let _turn = one_at_a_time();
    let (fifo, writer) = support::fifo_written_after("jobs.fifo", b"{}", BLOCK);
    let reader_path = fifo.clone();
    let (report, line) = run_in_task(move || {
        let mut file = std::fs::File::open(&reader_path).unwrap();
        let mut buf = [0u8; 2];
        blocking_at_line!(file.read_exact(&mut buf).unwrap())
    });
    writer.join().unwrap();
    let stall = the_worker_stall(&report, line);
    assert_eq!(stall.cause, "file_io", "{stall:#?}");
    assert_eq!(stall.syscall.as_deref(), Some("read"));
    assert!(
        stall
            .blocked_on
            .as_deref()
            .unwrap_or("")
            .contains("jobs.fifo"),
        "{stall:#?}"
    );
    std::fs::remove_dir_all(fifo.parent().unwrap()).unwrap();
}

#[test]
fn a_tcp_read_from_a_slow_server_is_network_io_at_its_line() {
    let _turn = one_at_a_time();
    let (addr, server) = support::slow_peer(b"pong", BLOCK);
    let (report, line) = run_in_task(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 4];
        blocking_at_line!(stream.read_exact(&mut buf).unwrap())
    });
    server.join().unwrap();
    let stall = the_worker_stall(&report, line);
    assert_eq!(stall.cause, "network", "{stall:#?}");
    let blocked_on = stall.blocked_on.as_deref().unwrap_or("");
    assert!(
        blocked_on.contains(&addr.to_string()),
        "peer named: {blocked_on}"
    );
}

#[test]
fn a_contended_std_mutex_is_a_lock_at_its_line() {
    let _turn = one_at_a_time();
    let lock = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let holder_lock = lock.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let _guard = holder_lock.lock().unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(BLOCK);
    });
    held_rx.recv().unwrap();
    let (report, line) = run_in_task(move || blocking_at_line!(lock.lock().unwrap()));
    holder.join().unwrap();
    let stall = the_worker_stall(&report, line);
    assert_eq!(stall.cause, "lock", "{stall:#?}");
    assert_eq!(stall.syscall.as_deref(), Some("futex"));
    assert!(stall.suggestion.contains("tokio::sync::Mutex"));
}

#[inline(never)]
fn spin_for(duration: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

/// Out of reach at this level, as documented: a worker on the CPU sleeps in no call. A
/// watched future (or, with `--cfg tokio_unstable`, the task hooks) catches it.
#[test]
fn a_cpu_loop_in_an_unwatched_task_is_not_seen_at_worker_level() {
    let _turn = one_at_a_time();
    let (report, _) = run_in_task(|| {
        spin_for(BLOCK);
        0
    });
    let site = worker_site(&report);
    assert_eq!(
        (report.stalls.len(), report.totals.stalls),
        (0, 0),
        "{:#?}",
        report.stalls
    );
    assert!(
        site.max_ns >= BLOCK.as_nanos() as u64,
        "the busy period that ran it was measured: {site:#?}"
    );
}

#[test]
fn idle_and_busy_runtimes_report_no_stall() {
    let _turn = one_at_a_time();
    let (rt, handle) = runtime();
    // Idle: both workers parked, one of them in the I/O driver, for several thresholds.
    std::thread::sleep(10 * THRESHOLD);
    // Busy: many short polls, with the workers parking and unparking between timer ticks.
    rt.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..20 {
                        tokio::task::yield_now().await;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    std::hint::black_box(spin_for(Duration::from_micros(200)))
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(rt);
    let report = final_report(&handle);
    worker_site(&report);
    assert_eq!(report.totals.stalls, 0, "{:#?}", report.stalls);
    assert!(report.stalls.is_empty());
}

#[test]
fn a_sleeping_spawn_blocking_task_holds_no_worker() {
    let _turn = one_at_a_time();
    let (rt, handle) = runtime();
    rt.block_on(async {
        tokio::spawn(async {
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(200)))
                .await
                .unwrap()
        })
        .await
        .unwrap()
    });
    drop(rt);
    let report = final_report(&handle);
    worker_site(&report);
    assert_eq!(report.totals.stalls, 0, "{:#?}", report.stalls);
}

#[test]
fn a_sleep_in_block_in_place_holds_no_worker_nor_does_the_thread_after() {
    let _turn = one_at_a_time();
    let (rt, handle) = runtime();
    rt.block_on(async {
        tokio::spawn(async {
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(200)))
        })
        .await
        .unwrap();
        // The thread that blocked in place gave its worker away, and waits in the blocking
        // pool now, its busy period never parked: still no worker.
        tokio::time::sleep(10 * THRESHOLD).await;
    });
    drop(rt);
    let report = final_report(&handle);
    let site = worker_site(&report);
    assert_eq!(report.totals.stalls, 0, "{:#?}", report.stalls);
    assert_eq!(site.polls_in_place, 1, "caught, in place: {site:#?}");
}

/// A finer source's poll inside a worker's busy period is judged and reported as that poll:
/// once, at its own site; the busy period counts only the worker's time outside it.
#[test]
fn a_watched_future_s_stall_inside_a_busy_period_is_the_watched_future_s_alone() {
    let _turn = one_at_a_time();
    let (rt, handle) = runtime();
    let (spawned_at, slept_at) = rt.block_on(async {
        let spawned_at = line!() + 1;
        let task = pollwatch::spawn(async { blocking_at_line!(std::thread::sleep(BLOCK)) });
        (spawned_at, task.await.unwrap())
    });
    drop(rt);
    let report = final_report(&handle);
    let watched = support::site_at(&report, FILE, spawned_at);
    assert_eq!(watched.kind, "watched");
    assert_eq!((watched.polls, watched.slow_polls), (1, 1));
    let workers = worker_site(&report);
    assert!(
        workers.max_ns < BLOCK.as_nanos() as u64,
        "the busy period's own time leaves the watched poll out: {workers:#?}"
    );
    assert_eq!(report.stalls.len(), 1, "{:#?}", report.stalls);
    let stall = &report.stalls[0];
    assert_eq!(stall.site, watched.label, "{stall:#?}");
    assert!(stall.task_id > 0, "the watched future knows its task");
    assert_eq!(stall.cause, "sleep");
    support::assert_call_site_at(stall, FILE, slept_at);
    assert_eq!(workers.stalls, 0);
}

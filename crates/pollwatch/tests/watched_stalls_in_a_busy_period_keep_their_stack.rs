//! With the stable worker hooks, a watched future's poll is nested in its worker's busy
//! period. A thread reading a large cached file runs the capture handler only when the read
//! returns, and the poll may end before the watchdog looks at the stack: the stack is still
//! the stall's (it was stored before the poll ended), and every such stall names the read's
//! line. So does a sleep, whose handler runs at once. No `cfg` gate: CI runs this in the
//! stable build.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pollwatch::{Builder, Watch};
use support::consistent;

const FILE: &str = "watched_stalls_in_a_busy_period_keep_their_stack.rs";
const ROUNDS: usize = 40;
/// How long a read of the test's file takes, about: long past the threshold (a quarter of
/// it), well inside the capture's 50 ms wait for the read to return.
const READ_TIME: Duration = Duration::from_millis(12);
/// A stall caught in its last moments may have been signalled after it ended (the watchdog
/// reads the thread's state first): its stack is rightly not its own.
const LAST_MOMENTS: Duration = Duration::from_millis(2);
/// The longest the watchdog waits for a thread to store its stack.
const CAPTURE_WAIT: Duration = Duration::from_millis(50);
/// How long each sleep lasts past the threshold: caught well before its last moments, and
/// done well within the capture's wait however long the file's reads (and so the threshold)
/// turn out on this machine.
const SLEEP_PAST: Duration = Duration::from_millis(20);

/// Evaluates a blocking call and returns its value and the line it is on.
macro_rules! blocking_at_line {
    ($call:expr) => {{
        ($call, line!())
    }};
}

/// A file in `dir`, in the page cache, that takes about [`READ_TIME`] to read on this machine
/// now (its size doubles until it does), and how long its reads took (the median of three).
fn file_read_in(dir: &Path) -> (PathBuf, Duration) {
    let path = dir.join("big.bin");
    let mut size = 4 << 20;
    loop {
        std::fs::write(&path, vec![7u8; size]).unwrap();
        let mut times: Vec<_> = (0..4)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(std::fs::read(&path).unwrap().len(), size);
                start.elapsed()
            })
            .skip(1)
            .collect();
        times.sort();
        if times[1] >= READ_TIME || size >= 256 << 20 {
            return (path, times[1]);
        }
        size *= 2;
    }
}

/// A two-worker runtime fed to a new pollwatch through its worker hooks alone, once every
/// worker has parked (the hooks see a worker's busy periods from its first park on).
fn runtime(threshold: Duration) -> (tokio::runtime::Runtime, pollwatch::Handle) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let handle = pollwatch::test_support::start(
        Builder::new()
            .threshold(threshold)
            .tick(Duration::from_millis(1)),
    );
    // The stable worker hooks, in either build.
    pollwatch::test_support::worker_hooks(&handle, &mut builder);
    let runtime = builder.build().unwrap();
    let metrics = runtime.metrics();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (0..metrics.num_workers()).any(|w| metrics.worker_park_count(w) == 0) {
        assert!(Instant::now() < deadline, "the workers never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
    (runtime, handle)
}

/// Reads `path` in a watched task; returns the contents (dropped by the caller, outside the
/// task's poll, so the poll ends as soon as the read returns) and the read's line.
async fn read_in_watched_task(path: &Path) -> (Vec<u8>, u32) {
    let path = path.to_owned();
    tokio::spawn(
        async move {
            let (data, line) = blocking_at_line!(std::fs::read(&path).unwrap());
            (data, line)
        }
        .watched_named("read"),
    )
    .await
    .unwrap()
}

#[test]
fn every_stall_of_a_watched_future_in_a_busy_period_names_its_blocking_line() {
    let dir = std::env::temp_dir().join(format!("pollwatch-nested-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (big, read_time) = file_read_in(&dir);
    let threshold = (read_time / 4).max(Duration::from_millis(1));
    eprintln!("reads take {read_time:?}: threshold {threshold:?}");

    let (rt, handle) = runtime(threshold);
    let (read_lines, slept_lines) = rt.block_on(async {
        let (mut read_lines, mut slept_lines) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (data, line) = read_in_watched_task(&big).await;
            assert!(!data.is_empty());
            read_lines.push(line);
            let slept = tokio::spawn(
                async move { blocking_at_line!(std::thread::sleep(threshold + SLEEP_PAST)).1 }
                    .watched_named("sleep"),
            );
            slept_lines.push(slept.await.unwrap());
        }
        (read_lines, slept_lines)
    });
    drop(rt);
    handle.shutdown();
    let report = consistent(handle.report());
    std::fs::remove_dir_all(&dir).unwrap();

    for (name, lines) in [("read", &read_lines), ("sleep", &slept_lines)] {
        let site = support::site_named(&report, name);
        assert_eq!(site.kind, "watched", "{site:#?}");
        // The stalls whose thread stored its stack before the poll ended: caught before their
        // last moments, and done within the capture's wait after that.
        let judged: Vec<_> = report
            .stalls
            .iter()
            .filter(|s| s.site == site.label)
            .filter(|s| {
                let caught_for = s.duration_ns.saturating_sub(s.detected_after_ns);
                caught_for > LAST_MOMENTS.as_nanos() as u64
                    && caught_for < CAPTURE_WAIT.as_nanos() as u64
            })
            .collect();
        // Every sleep is a stall, most reads are; on a busy machine the watchdog catches some
        // only in their last moments.
        assert!(
            judged.len() >= ROUNDS / 4,
            "{name}: only {} stalls of {ROUNDS} to judge: {:#?}",
            judged.len(),
            report.stalls
        );
        let without: Vec<_> = judged.iter().filter(|s| s.call_site.is_none()).collect();
        assert!(
            without.is_empty() || !support::binary_has_line_tables(),
            "{name}: {} of {} stalls have no call site: {without:#?}",
            without.len(),
            judged.len()
        );
        for stall in judged {
            assert!(stall.task_id > 0, "the watched future knows its task");
            support::assert_call_site_at(stall, FILE, lines[0]);
        }
    }
    assert!(
        report
            .stalls
            .iter()
            .all(|s| s.site.contains("\"read\"") || s.site.contains("\"sleep\"")),
        "no stall at the worker level: {:#?}",
        report.stalls
    );
}

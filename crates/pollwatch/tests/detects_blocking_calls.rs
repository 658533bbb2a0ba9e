//! The watchdog catches each classic blocking mistake while it runs, and names the cause, what
//! the thread waits on, the blocking call site in this file and the blocking API.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::io::Read;
use std::time::Duration;

use pollwatch::Builder;
use support::Watched;

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(150);

fn watched() -> Watched {
    Watched::new_with(Builder::new().threshold(THRESHOLD))
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

/// Runs `blocking` in one task; returns the report and the line `blocking` reported.
fn run_in_task(
    watched: &Watched,
    blocking: impl FnOnce() -> u32 + Send + 'static,
) -> (pollwatch::Report, u32) {
    let rt = watched.runtime(2);
    let line = watched
        .scope(|| rt.block_on(async { tokio::spawn(async move { blocking() }).await.unwrap() }));
    drop(rt);
    (watched.final_report(), line)
}

/// The one stall of the task `run_in_task` spawned (its site is in this file).
fn only_stall(report: &pollwatch::Report) -> &pollwatch_report::Stall {
    support::only_stall(report, "detects_blocking_calls.rs")
}

fn assert_call_site(stall: &pollwatch_report::Stall, line: u32) {
    support::assert_call_site_at(stall, "detects_blocking_calls.rs", line);
}

#[test]
fn std_thread_sleep_is_a_sleep_at_its_line() {
    let (report, line) = run_in_task(&watched(), || blocking_at_line!(std::thread::sleep(BLOCK)));
    let stall = only_stall(&report);
    assert_eq!(stall.cause, "sleep");
    assert_eq!(stall.state, "sleeping");
    assert!(
        stall.syscall.as_deref().unwrap_or("").contains("nanosleep"),
        "{stall:#?}"
    );
    assert_eq!(stall.blocking_call.as_deref(), Some("std::thread::sleep"));
    assert_call_site(stall, line);
    assert!(stall.suggestion.contains("tokio::time::sleep"));
    assert!(stall.ended);
    assert!(stall.duration_ns >= BLOCK.as_nanos() as u64);
    assert!(
        stall.detected_after_ns < BLOCK.as_nanos() as u64,
        "caught while running"
    );
    assert!(
        stall.message.contains("std::thread::sleep"),
        "{}",
        stall.message
    );
}

#[test]
fn a_blocking_fifo_read_names_the_fifo() {
    let (fifo, writer) = support::fifo_written_after("users.fifo", b"{}", BLOCK);
    let reader_path = fifo.clone();
    let (report, line) = run_in_task(&watched(), move || {
        blocking_at_line!(std::fs::read(&reader_path))
    });
    writer.join().unwrap();
    let stall = only_stall(&report);
    assert_eq!(stall.cause, "file_io", "{stall:#?}");
    assert_eq!(stall.syscall.as_deref(), Some("read"));
    assert!(
        stall
            .blocked_on
            .as_deref()
            .unwrap_or("")
            .contains("users.fifo"),
        "{stall:#?}"
    );
    assert_eq!(stall.blocking_call.as_deref(), Some("std::fs::read"));
    assert_call_site(stall, line);
    assert!(stall.suggestion.contains("tokio::fs::read"));
    std::fs::remove_dir_all(fifo.parent().unwrap()).unwrap();
}

/// A read of a large file from the page cache takes no signal until it returns, long after the
/// watchdog stopped waiting for the stack (50 ms): the stack the thread records then, still in
/// the poll, names the read. The poll sleeps on after it, so a look that took a fresh stack
/// would name the sleep.
#[test]
fn a_file_read_longer_than_the_capture_wait_keeps_its_stack() {
    const SIZE: usize = 256 << 20;
    let dir = std::env::temp_dir().join(format!("pollwatch-large-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("large.bin");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..SIZE / chunk.len() {
            file.write_all(&chunk).unwrap();
        }
    }
    // In the page cache: the timed read copies memory and never waits for the disk.
    assert_eq!(std::fs::read(&path).unwrap().len(), SIZE);
    let reader = path.clone();
    let (report, line) = run_in_task(&watched(), move || {
        let line = blocking_at_line!(std::fs::read(&reader));
        std::thread::sleep(BLOCK);
        line
    });
    std::fs::remove_dir_all(&dir).unwrap();
    let stall = only_stall(&report);
    assert_eq!(
        stall.blocking_call.as_deref(),
        Some("std::fs::read"),
        "{stall:#?}"
    );
    assert_call_site(stall, line);
    let capture_ns = stall.capture_ns.expect("a stack was captured");
    assert!(
        capture_ns > 50_000_000,
        "the read took the signal within the capture's wait ({capture_ns} ns): a larger file \
         is needed on this machine for the test to mean anything"
    );
}

#[test]
fn a_tcp_read_from_a_slow_server_names_the_peer() {
    let (addr, server) = support::slow_peer(b"pong", BLOCK);
    let (report, line) = run_in_task(&watched(), move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 4];
        blocking_at_line!(stream.read_exact(&mut buf))
    });
    server.join().unwrap();
    let stall = only_stall(&report);
    assert_eq!(stall.cause, "network", "{stall:#?}");
    let blocked_on = stall.blocked_on.as_deref().unwrap_or("");
    assert!(
        blocked_on.contains(&addr.to_string()),
        "peer named: {blocked_on}"
    );
    // Without line tables std's socket read is folded into another function of the same
    // code (named after whichever one the linker kept): the API is asserted with them only,
    // the cause and fix come from the socket either way.
    if support::binary_has_line_tables() {
        assert!(
            stall
                .blocking_call
                .as_deref()
                .unwrap_or("")
                .starts_with("std::net::TcpStream::read")
                || stall
                    .blocking_call
                    .as_deref()
                    .unwrap_or("")
                    .contains("read_exact"),
            "{stall:#?}"
        );
    }
    assert_call_site(stall, line);
    assert!(stall.suggestion.contains("async client"));
}

#[test]
fn a_contended_std_mutex_is_a_lock() {
    let lock = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let holder_lock = lock.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let _guard = holder_lock.lock().unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(BLOCK);
    });
    held_rx.recv().unwrap();
    let (report, line) = run_in_task(&watched(), move || blocking_at_line!(lock.lock()));
    holder.join().unwrap();
    let stall = only_stall(&report);
    assert_eq!(stall.cause, "lock", "{stall:#?}");
    assert_eq!(stall.syscall.as_deref(), Some("futex"));
    if support::binary_has_line_tables() {
        assert_eq!(
            stall.blocking_call.as_deref(),
            Some("std::sync::Mutex::lock")
        );
    }
    // Without line tables `Mutex::lock` is inlined into its caller and leaves no frame: the
    // futex wait still makes it a lock, with the lock's fix.
    assert_call_site(stall, line);
    assert!(stall.suggestion.contains("tokio::sync::Mutex"));
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
fn a_cpu_loop_is_cpu_work_at_the_loop() {
    let (report, _) = run_in_task(&watched(), || blocking_at_line!(spin_for(BLOCK)));
    let stall = only_stall(&report);
    assert_eq!(stall.cause, "cpu", "{stall:#?}");
    assert_eq!(stall.state, "running on CPU");
    if support::binary_has_line_tables() {
        assert!(
            stall
                .call_site
                .as_deref()
                .unwrap_or("")
                .contains("detects_blocking_calls.rs"),
            "{stall:#?}"
        );
    } else {
        assert_eq!(
            stall.call_function.as_deref(),
            Some("detects_blocking_calls::spin_for"),
            "{stall:#?}"
        );
    }
    assert!(
        stall
            .backtrace
            .iter()
            .any(|f| f.function.contains("spin_for")),
        "{stall:#?}"
    );
    assert!(stall.suggestion.contains("spawn_blocking"));
    let cpu = stall.cpu_ns.expect("cpu time measured");
    assert!(cpu > 0, "a spinning thread uses CPU");
}

#[test]
fn futures_block_on_inside_a_task_is_named() {
    let (report, line) = run_in_task(&watched(), || {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(BLOCK);
            let _ = tx.send(());
        });
        blocking_at_line!(futures::executor::block_on(rx))
    });
    let stall = only_stall(&report);
    assert_eq!(stall.cause, "block_on", "{stall:#?}");
    assert_eq!(
        stall.blocking_call.as_deref(),
        Some("futures::executor::block_on")
    );
    assert_call_site(stall, line);
    assert!(stall.suggestion.contains("Never call block_on"));
}

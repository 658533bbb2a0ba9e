//! The guard `init()` returns, dropped while its thread unwinds from a panic of the
//! application, writes the report and never panics itself (a second panic during unwinding
//! aborts the process), even when stderr cannot be written: a pipe nobody reads, where
//! `eprintln!` panics. The scenario runs in a child process (this test binary run again with
//! `CHILD` set), so an abort is seen as the child's exit status instead of killing the tests.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Set in the child: the report directory.
const CHILD: &str = "POLLWATCH_TEST_UNWIND_CHILD";
/// What the child prints once the thread that dropped the guard has been joined.
const SURVIVED: &str = "the process survived the guard's drop";

/// The child: installs pollwatch, runs a task, and panics on a thread that holds the guard.
#[test]
fn child_drops_the_guard_while_unwinding() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return; // Only the child process runs this scenario.
    };
    std::env::set_var("POLLWATCH_REPORT_DIR", &dir);
    let guard = pollwatch::init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    drop(rt);
    let unwound = std::thread::spawn(move || {
        let _guard = guard;
        panic!("the application panics while holding pollwatch's guard");
    })
    .join();
    assert!(unwound.is_err(), "the thread panicked");
    println!("{SURVIVED}");
}

#[test]
fn a_guard_dropped_while_unwinding_writes_the_report_and_never_aborts() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("pollwatch-unwind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_drops_the_guard_while_unwinding",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &dir)
        // Free ports for the outputs the features add, never the fixed defaults.
        .env("POLLWATCH_METRICS_ADDR", "127.0.0.1:0")
        .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A stderr nobody reads: every write to it fails (EPIPE).
    drop(child.stderr.take());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed ({:?}): {stdout}",
        output.status
    );
    assert!(stdout.contains(SURVIVED), "{stdout}");
    let json: PathBuf = dir.join("report.json");
    let report = pollwatch_report::json::read(&json).expect("the report was written");
    assert!(
        report.totals.polls >= 2,
        "the block_on and the task: {:?}",
        report.totals
    );
    assert!(dir.join("report.txt").exists());
    assert!(dir.join(pollwatch_report::hlog::FILE).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

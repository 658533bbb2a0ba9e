//! Helpers shared by the integration tests: threads that report their OS thread id, captures
//! that wait out other tests' captures, and polling for a thread state.
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pollwatch_capture::{CaptureError, Inspector, RawBacktrace, ThreadState, Tid};

/// How long a capture may take before the tests call it a timeout.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Starts a thread running `f` and returns its OS thread id.
pub fn thread_with_tid<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (Tid, JoinHandle<T>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        tx.send(pollwatch_capture::current_tid()).unwrap();
        f()
    });
    (rx.recv().unwrap(), handle)
}

/// Captures, retrying while another test of the same binary has a capture in flight (or a
/// late stack to come).
pub fn capture(inspector: &dyn Inspector, tid: Tid) -> Result<RawBacktrace, CaptureError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match inspector.capture(tid, TIMEOUT) {
            Err(CaptureError::Busy | CaptureError::AwaitingLate) if Instant::now() < deadline => {
                std::thread::yield_now()
            }
            other => return other,
        }
    }
}

/// The function names of a captured stack, innermost first.
pub fn function_names(stack: &RawBacktrace) -> Vec<String> {
    pollwatch_capture::symbolize(&stack.ips)
        .into_iter()
        .filter_map(|f| f.function)
        .collect()
}

/// Reads the thread's state until `accept` takes it (for at most 5 s); returns the last
/// state read and whether it was accepted.
pub fn wait_for_state(
    inspector: &dyn Inspector,
    tid: Tid,
    accept: impl Fn(&ThreadState) -> bool,
) -> (Option<ThreadState>, bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = None;
    while Instant::now() < deadline {
        last = inspector.thread_state(tid);
        if last.as_ref().is_some_and(&accept) {
            return (last, true);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (last, false)
}

/// Whether the thread is in the syscall named `name`.
pub fn in_syscall(state: &ThreadState, name: &str) -> bool {
    state.syscall.as_ref().and_then(|s| s.name) == Some(name)
}

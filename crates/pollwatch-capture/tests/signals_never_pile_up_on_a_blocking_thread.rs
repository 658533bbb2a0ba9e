//! A thread that blocks the capture signal is never sent one (each would stay pending), and
//! a capture signal of the application's choosing is used when asked for. (Its own test
//! binary: the capture signal is the process's.)
#![cfg(target_os = "linux")]

mod support;

use std::sync::mpsc;

use pollwatch_capture::{CaptureError, Options};
use support::thread_with_tid;

/// Whether `signal` is set in thread `tid`'s signal mask `field` (`SigPnd`, `SigBlk`) of
/// `/proc/self/task/<tid>/status`.
fn in_mask(tid: i32, field: &str, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let bit = 1u64 << (signal - 1);
    status.lines().any(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & bit != 0)
    })
}

#[test]
fn a_thread_blocking_the_signal_gets_none_and_the_chosen_signal_is_used() {
    let signal = libc::SIGRTMIN() + 6;
    let inspector = pollwatch_capture::inspector_with(Options {
        backtraces: true,
        interrupt_any_call: false,
        signal: Some(signal),
    });
    let me = pollwatch_capture::current_tid();
    assert!(
        support::capture(&*inspector, me).is_ok(),
        "captures with {signal}"
    );
    // SAFETY: a zeroed sigaction is valid for sigaction(2) to fill in; null only queries.
    let handler_of = |s: i32| unsafe {
        let mut now: libc::sigaction = std::mem::zeroed();
        libc::sigaction(s, std::ptr::null(), &mut now);
        now.sa_sigaction
    };
    assert_ne!(
        handler_of(signal),
        libc::SIG_DFL,
        "installed on the chosen signal"
    );
    assert_eq!(
        handler_of(libc::SIGRTMIN() + 4),
        libc::SIG_DFL,
        "the default one is left alone"
    );

    let (release, wait) = mpsc::channel::<()>();
    let (tid, blocker) = thread_with_tid(move || {
        // SAFETY: a sigset_t is plain data; these calls only block `signal` for this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        wait.recv().unwrap();
    });
    // The thread runs its closure once `thread_with_tid` returns; wait until it blocks.
    while !in_mask(tid, "SigBlk", signal) {
        std::thread::yield_now();
    }
    for _ in 0..10 {
        assert_eq!(
            inspector.capture(tid, support::TIMEOUT).unwrap_err(),
            CaptureError::SignalBlocked
        );
    }
    assert!(
        !in_mask(tid, "SigPnd", signal),
        "no signal waits on the blocking thread"
    );
    release.send(()).unwrap();
    blocker.join().unwrap();
}

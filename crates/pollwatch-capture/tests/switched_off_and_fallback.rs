//! `inspector(false)` never installs the handler or sends a signal but still reads /proc;
//! `fallback()` observes nothing. (Its own test binary: nothing here may install the handler.)
#![cfg(target_os = "linux")]

mod support;

use pollwatch_capture::{CaptureError, RunState};
use support::TIMEOUT;

/// The capture signal's current disposition in this process.
fn capture_signal_handler() -> usize {
    // SAFETY: a zeroed sigaction is a valid value for sigaction(2) to fill in.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries the current one into `old`.
    let queried = unsafe { libc::sigaction(libc::SIGRTMIN() + 4, std::ptr::null(), &mut old) };
    assert_eq!(queried, 0);
    old.sa_sigaction
}

#[test]
fn switched_off_it_never_captures_but_still_reads_proc() {
    let inspector = pollwatch_capture::inspector(false);
    let me = pollwatch_capture::current_tid();
    assert!(me > 0);
    assert!(!inspector.can_capture());
    assert_eq!(
        inspector.capture(me, TIMEOUT).unwrap_err(),
        CaptureError::Disabled
    );
    // The handler was never installed: a signal sent now would kill this test (SIG_DFL).
    assert_eq!(capture_signal_handler(), libc::SIG_DFL);
    assert_eq!(inspector.thread_state(me).unwrap().run, RunState::Running);
    // May still be 0: the kernel accounts a running thread's time at ticks and switches.
    assert!(inspector.cpu_time_ns(me).is_some());
    assert_eq!(inspector.thread_state(-5), None, "no such thread");
}

#[test]
fn the_fallback_observes_nothing() {
    let fallback = pollwatch_capture::fallback();
    let me = pollwatch_capture::current_tid();
    assert!(!fallback.can_capture());
    assert!(fallback.thread_state(me).is_none());
    assert!(fallback.cpu_time_ns(me).is_none());
    assert_eq!(
        fallback.capture(me, TIMEOUT).unwrap_err(),
        CaptureError::Unsupported
    );
    assert_eq!(capture_signal_handler(), libc::SIG_DFL);
}

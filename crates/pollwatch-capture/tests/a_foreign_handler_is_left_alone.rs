//! When the application already handles the capture signal, pollwatch leaves its handler in
//! place: capture is unsupported, /proc still works. (Its own test binary.)
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use pollwatch_capture::CaptureError;

static FOREIGN_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn foreign(_: i32, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    FOREIGN_CALLS.fetch_add(1, SeqCst);
}

fn handler_of(signal: i32) -> usize {
    // SAFETY: zeroed is a valid sigaction for sigaction(2) to fill in.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries the current one.
    assert_eq!(
        unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) },
        0
    );
    old.sa_sigaction
}

#[test]
fn an_application_handler_for_the_signal_is_not_replaced() {
    let signal = libc::SIGRTMIN() + 4;
    // SAFETY: zeroed is a valid starting sigaction; the handler has the SA_SIGINFO signature.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = foreign as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `action` is initialised; installing a handler that only bumps an atomic.
    assert_eq!(
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) },
        0
    );

    let inspector = pollwatch_capture::inspector(true);
    let me = pollwatch_capture::current_tid();
    assert!(!inspector.can_capture());
    assert_eq!(
        inspector.capture(me, support::TIMEOUT).unwrap_err(),
        CaptureError::Unsupported
    );
    assert_eq!(handler_of(signal), foreign as *const () as usize);
    assert_eq!(FOREIGN_CALLS.load(SeqCst), 0, "no signal was sent");
    assert!(inspector.thread_state(me).is_some());
}

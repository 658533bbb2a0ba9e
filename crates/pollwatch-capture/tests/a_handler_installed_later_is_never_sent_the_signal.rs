//! An application that installs its own handler for the capture signal after pollwatch did
//! is never sent pollwatch's signals: each capture checks the disposition first. (Its own
//! test binary: the disposition is the process's.)
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use pollwatch_capture::CaptureError;

static HOST_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn host(_: i32, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    HOST_CALLS.fetch_add(1, SeqCst);
}

#[test]
fn captures_stop_once_the_application_takes_the_signal() {
    let inspector = pollwatch_capture::inspector(true);
    let me = pollwatch_capture::current_tid();
    assert!(
        support::capture(&*inspector, me).is_ok(),
        "pollwatch's handler works"
    );

    let signal = libc::SIGRTMIN() + 4;
    // SAFETY: zeroed is a valid starting sigaction; the handler has the SA_SIGINFO signature.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = host as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `action` is initialised; the handler only bumps an atomic.
    assert_eq!(
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) },
        0
    );
    for _ in 0..10 {
        assert_eq!(
            inspector.capture(me, support::TIMEOUT).unwrap_err(),
            CaptureError::HandlerReplaced(signal)
        );
    }
    assert_eq!(
        HOST_CALLS.load(SeqCst),
        0,
        "the application got none of them"
    );
    assert!(CaptureError::HandlerReplaced(signal)
        .to_string()
        .contains("POLLWATCH_SIGNAL"));
}

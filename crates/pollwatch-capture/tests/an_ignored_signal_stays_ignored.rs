//! An application that ignores the capture signal (`SIG_IGN`) keeps ignoring it: pollwatch
//! does not install its handler over it. (Its own test binary.)
#![cfg(target_os = "linux")]

mod support;

use pollwatch_capture::CaptureError;

#[test]
fn sig_ign_is_left_alone() {
    let signal = libc::SIGRTMIN() + 4;
    // SAFETY: setting SIG_IGN for a realtime signal nobody else uses in this process.
    assert_ne!(
        unsafe { libc::signal(signal, libc::SIG_IGN) },
        libc::SIG_ERR
    );
    let inspector = pollwatch_capture::inspector(true);
    let me = pollwatch_capture::current_tid();
    assert_eq!(
        inspector.capture(me, support::TIMEOUT).unwrap_err(),
        CaptureError::Unsupported
    );
    // SAFETY: zeroed is a valid sigaction for sigaction(2) to fill in; a null new action
    // only queries.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::sigaction(signal, std::ptr::null(), &mut now) },
        0
    );
    assert_eq!(now.sa_sigaction, libc::SIG_IGN);
}

//! Stack capture with a realtime signal.
//!
//! The watchdog asks for a thread's stack with [`capture`]: it moves a global state machine
//! from idle to *requested* for that thread and sends it `SIGRTMIN + 4` with `tgkill`. The
//! handler, running on the stuck thread, checks that the request is for its own thread, moves
//! the state to *running*, walks its stack with `backtrace::trace_unsynchronized` into a
//! static buffer of atomics, and moves the state to *done*. It saves and restores `errno`, and
//! never allocates, locks or blocks. The watchdog copies the frames out and returns the state
//! to idle. A handler that arrives late (after a timeout) finds the state no longer
//! *requested* for its thread and returns without touching the buffer.
//!
//! The stack starts with the handler's own frames and the kernel's signal trampoline
//! (`__restore_rt`); pollwatch trims them after symbolizing, by name.

use std::sync::atomic::{
    AtomicI32, AtomicU8, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{CaptureError, RawBacktrace, Tid};

/// Frames kept per capture.
pub(crate) const MAX_FRAMES: usize = 128;

const IDLE: u8 = 0;
const REQUESTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(IDLE);
static TARGET: AtomicI32 = AtomicI32::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];

/// Serializes captures: one buffer, one capture at a time.
static CAPTURING: Mutex<()> = Mutex::new(());

/// Whether the handler is installed (decided once per process).
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// The signal used: the fifth realtime signal.
pub(crate) fn signal_number() -> i32 {
    libc::SIGRTMIN() + 4
}

pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments, cannot fail, and only returns the caller's id.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    i32::try_from(tid).unwrap_or(0)
}

/// Installs the handler once. Returns false, and leaves the signal alone, if another handler
/// is already installed for it or installing fails.
pub(crate) fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let signal = signal_number();
        // SAFETY: a zeroed sigaction is a valid "no handler" value that sigaction(2) fills in.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only queries the current one into `old`, a valid pointer.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } != 0 {
            return false;
        }
        if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
            return false;
        }
        // SAFETY: as above, zeroed is a valid starting value; the fields are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: sa_mask is a valid sigset_t inside `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised and `handler` has the SA_SIGINFO signature.
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) == 0 }
    })
}

extern "C" fn handler(_signal: i32, _info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for its life.
    let errno = unsafe { *libc::__errno_location() };
    if TARGET.load(Acquire) == gettid()
        && STATE
            .compare_exchange(REQUESTED, RUNNING, AcqRel, Acquire)
            .is_ok()
    {
        let mut count = 0usize;
        // SAFETY: trace_unsynchronized must not run concurrently with another unwinder call
        // that is not thread-safe; the RUNNING state admits one handler at a time, and the
        // closure only stores into preallocated atomics (no allocation, no lock).
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                if count == MAX_FRAMES {
                    return false;
                }
                FRAMES[count].store(frame.ip() as usize, Relaxed);
                count += 1;
                true
            });
        }
        COUNT.store(count, Relaxed);
        STATE.store(DONE, Release);
    }
    // SAFETY: as above; restoring the interrupted code's errno.
    unsafe { *libc::__errno_location() = errno };
}

/// Has thread `tid` record its stack; waits at most `timeout`.
pub(crate) fn capture(tid: Tid, timeout: Duration) -> Result<RawBacktrace, CaptureError> {
    let _one_at_a_time = CAPTURING.try_lock().map_err(|_| CaptureError::Busy)?;
    // A handler that ran after an earlier timeout may still be finishing.
    if STATE.load(Acquire) == RUNNING && !wait_for(DONE, timeout) {
        return Err(CaptureError::Busy);
    }
    STATE.store(IDLE, Release);
    TARGET.store(tid, Release);
    STATE.store(REQUESTED, Release);
    let start = Instant::now();
    // SAFETY: getpid has no preconditions; tgkill only sends a signal whose handler is
    // installed (or whose default is to be ignored if installing failed: we never get here).
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal_number()) };
    if sent != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        STATE.store(IDLE, Release);
        return Err(if errno == libc::ESRCH {
            CaptureError::ThreadGone
        } else {
            CaptureError::Signal(errno)
        });
    }
    if !wait_for(DONE, timeout) {
        // Withdraw the request; if the handler already started, let it finish first.
        if STATE
            .compare_exchange(REQUESTED, IDLE, AcqRel, Acquire)
            .is_ok()
        {
            return Err(CaptureError::Timeout);
        }
        if !wait_for(DONE, timeout) {
            return Err(CaptureError::Timeout);
        }
    }
    let took = start.elapsed();
    let count = COUNT.load(Relaxed).min(MAX_FRAMES);
    let ips = FRAMES[..count].iter().map(|f| f.load(Relaxed)).collect();
    STATE.store(IDLE, Release);
    Ok(RawBacktrace { ips, took })
}

/// Waits until the state is `want`, spinning briefly, then yielding and napping.
fn wait_for(want: u8, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut spins = 0u32;
    loop {
        if STATE.load(Acquire) == want {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        spins += 1;
        if spins < 100 {
            std::hint::spin_loop();
        } else if spins < 200 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

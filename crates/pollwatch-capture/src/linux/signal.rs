//! Stack capture with a realtime signal.
//!
//! # The signal
//!
//! `SIGRTMIN() + 4` by default (signal 38 with glibc, whose `SIGRTMIN()` is 34 because it
//! keeps two realtime signals for itself), or the realtime signal the first installer asks
//! for. It is installed once per process with `SA_SIGINFO | SA_RESTART | SA_ONSTACK`, and only
//! if its disposition is the default: a handler of the application's, or `SIG_IGN`, is left
//! alone, and [`capture`] is unavailable (`Unsupported`).
//!
//! Before each capture the disposition is queried again: a handler the application installed
//! later is never sent pollwatch's signals (`HandlerReplaced`). Nor is a thread that blocks
//! the signal, or already has it pending (`SignalBlocked`, from `/proc/self/task/<tid>/status`),
//! so signals never pile up on it.
//!
//! # The protocol
//!
//! One global request word holds a state, the requested thread id and a generation number:
//!
//! ```text
//!   capture():  IDLE/DONE(g-1) --owner stores--> REQUESTED(tid, g) --tgkill(pid, tid)-->
//!   handler on thread tid:  CAS REQUESTED(tid, g) -> RUNNING(tid, g), walk the stack into
//!                           FRAMES, store DONE(tid, g)
//!   capture():  sees DONE(tid, g), copies the frames out
//!   timeout:    the request stays REQUESTED(tid, g), kept as the late one: a thread that
//!               was waiting for a CPU runs the handler as soon as it runs again, still
//!               inside whatever held it
//!   collect_late(tid):  sees DONE(tid, g) for the late request, copies the frames out
//!   the next capture():  `AwaitingLate` while the late request is younger than `LATE_HOLD`
//!               and not collected; after that it replaces it (a late handler's CAS then
//!               fails); one that is RUNNING makes it `Busy` until it is DONE
//! ```
//!
//! Only one `capture` call at a time owns the buffer (an atomic flag, released by a guard, so
//! a second caller gets `Busy` and nothing can be poisoned). The handler claims the request
//! with one compare-and-swap of the *whole* word, so a handler that arrives late, on another
//! thread, or for an older generation never touches the buffer. If a capture times out while
//! a handler is already walking (`RUNNING`), the word stays `RUNNING` and later captures
//! return `Busy` until that handler stores `DONE`; the buffer is never read while written.
//!
//! The handler saves and restores `errno`, and neither allocates, locks nor blocks: it makes
//! two syscalls (`gettid`, `clock_gettime`, the latter usually in the vDSO), one
//! `backtrace::trace_unsynchronized` walk (libgcc's unwinder, which follows the signal frame
//! through the trampoline's CFI) and atomic stores into static memory.
//!
//! # Which frames
//!
//! The walk starts inside the handler. The handler knows the interrupted instruction from
//! its `ucontext` (x86_64 `RIP`, aarch64 `pc`); the unwinder reports exactly that address for
//! the frame after the signal trampoline (`__restore_rt`). Everything before it (the
//! unwinder, `backtrace`, this handler, the trampoline) is dropped, so `ips[0]` is the
//! interrupted instruction and every later entry is a return address. If that address is
//! not found among the frames (another architecture, an unwinder that reports it
//! differently), nothing is dropped and the stack starts with the capture machinery.

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{CaptureError, Late, RawBacktrace, Tid};

use super::context;

/// Frames kept per capture.
pub(crate) const MAX_FRAMES: usize = 128;

const IDLE: u64 = 0;
const REQUESTED: u64 = 1;
const RUNNING: u64 = 2;
const DONE: u64 = 3;

/// The request word: bits 0-1 the state, bits 2-33 the thread id, bits 34-63 the generation.
static REQUEST: AtomicU64 = AtomicU64::new(IDLE);
/// Held by the one `capture` call that owns the request word's non-`RUNNING` transitions and
/// the buffer.
static OWNER: AtomicBool = AtomicBool::new(false);
/// The request of the last capture that timed out (0: none), until [`collect_late`] takes its
/// frames or a later request replaces it.
static LATE: AtomicU64 = AtomicU64::new(0);
/// `CLOCK_MONOTONIC` when [`LATE`]'s signal was sent, ns.
static LATE_SENT_NS: AtomicU64 = AtomicU64::new(0);
/// Frames stored by the last handler.
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// `CLOCK_MONOTONIC` when the last handler finished, ns.
static DONE_AT_NS: AtomicU64 = AtomicU64::new(0);
static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];

/// Whether the handler is installed (decided once per process).
static INSTALLED: OnceLock<bool> = OnceLock::new();
/// The signal installed (0 until [`install`] ran).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

fn state(word: u64) -> u64 {
    word & 0b11
}

fn tid_of(word: u64) -> Tid {
    // Bits 2-33 hold the tid's 32 bits; the cast restores them.
    ((word >> 2) & 0xffff_ffff) as u32 as Tid
}

fn generation(word: u64) -> u64 {
    word >> 34
}

fn word(state: u64, tid: Tid, generation: u64) -> u64 {
    ((generation & ((1 << 30) - 1)) << 34) | (u64::from(tid as u32) << 2) | state
}

fn with_state(old: u64, state: u64) -> u64 {
    (old & !0b11) | state
}

/// The signal used: the one installed, else the default, the fifth realtime signal.
pub(crate) fn signal_number() -> i32 {
    match SIGNAL.load(Relaxed) {
        0 => default_signal(),
        signal => signal,
    }
}

/// The default capture signal, `SIGRTMIN() + 4`.
pub(crate) fn default_signal() -> i32 {
    libc::SIGRTMIN() + 4
}

pub(crate) fn gettid() -> Tid {
    // SAFETY: gettid takes no arguments, cannot fail, and only returns the caller's id.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    Tid::try_from(tid).unwrap_or(0)
}

/// `CLOCK_MONOTONIC` in nanoseconds; async-signal-safe.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

/// Installs the handler on `signal` (default [`default_signal`]) once per process
/// (thread-safe; the first call's signal is the one used). Returns false, and leaves the
/// signal alone, if it is not a realtime signal, its disposition is not the default (a
/// handler, or `SIG_IGN`), or installing fails.
pub(crate) fn install(signal: Option<i32>) -> bool {
    *INSTALLED.get_or_init(|| {
        let signal = signal.unwrap_or_else(default_signal);
        if !(libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal) {
            return false;
        }
        SIGNAL.store(signal, Relaxed);
        // SAFETY: a zeroed sigaction is a valid "no handler" value that sigaction(2) fills in.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only queries the current one into `old`, a valid pointer.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } != 0 {
            return false;
        }
        if old.sa_sigaction != libc::SIG_DFL {
            return false;
        }
        // SAFETY: as above, zeroed is a valid starting value; the fields are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: sa_mask is a valid, writable sigset_t inside `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised and `handler` has the SA_SIGINFO signature.
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) == 0 }
    })
}

/// The signal handler. Runs on the thread being captured, at any instruction of it.
extern "C" fn handler(_signal: i32, _info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for its life.
    let errno = unsafe { *libc::__errno_location() };
    let request = REQUEST.load(Acquire);
    if state(request) == REQUESTED
        && tid_of(request) == gettid()
        && REQUEST
            .compare_exchange(request, with_state(request, RUNNING), AcqRel, Relaxed)
            .is_ok()
    {
        // SAFETY: `context` is the ucontext_t the kernel passed to this SA_SIGINFO handler.
        let pc = unsafe { context::interrupted_pc(context) };
        record(pc);
        DONE_AT_NS.store(monotonic_ns(), Relaxed);
        // While RUNNING only this handler writes the word: a plain store is enough.
        REQUEST.store(with_state(request, DONE), Release);
    }
    // SAFETY: as above; restores the interrupted code's errno.
    unsafe { *libc::__errno_location() = errno };
}

/// Walks the stack into `FRAMES`, dropping the frames before the interrupted instruction
/// `pc` (0: unknown, keep everything).
#[inline(never)]
fn record(pc: usize) {
    let mut count = 0usize;
    let mut found = false;
    // SAFETY: trace_unsynchronized must not run concurrently with another unwinder call that
    // is not thread-safe. libgcc's `_Unwind_Backtrace` is thread-safe; the RUNNING state
    // admits one handler at a time; the closure only stores into preallocated atomics (no
    // allocation, no lock).
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if !found && pc != 0 && ip == pc {
                found = true;
                count = 0;
            }
            if count == MAX_FRAMES {
                return false;
            }
            FRAMES[count].store(ip, Relaxed);
            count += 1;
            true
        });
    }
    COUNT.store(count, Relaxed);
}

/// Releases [`OWNER`] when a capture returns, whatever the path.
struct Owner;

impl Owner {
    fn acquire() -> Option<Owner> {
        // Build the guard only on success: a guard dropped on failure would release the
        // current owner's flag.
        if OWNER
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
        {
            Some(Owner)
        } else {
            None
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        OWNER.store(false, Release);
    }
}

/// Whether the signal's handler is still pollwatch's (the application may have installed its
/// own since).
fn still_ours() -> bool {
    // SAFETY: a zeroed sigaction is a valid value for sigaction(2) to fill in.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries the current one into `now`, a valid pointer.
    let queried = unsafe { libc::sigaction(signal_number(), std::ptr::null(), &mut now) } == 0;
    queried && now.sa_sigaction == handler as *const () as usize
}

/// Whether thread `tid` blocks the signal or has it pending already (its
/// `/proc/self/task/<tid>/status`): another would only pile up.
fn blocked_or_pending(tid: Tid) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")) else {
        return false;
    };
    let bit = 1u64 << (signal_number() - 1);
    status.lines().any(|line| {
        let Some((name, mask)) = line.split_once(':') else {
            return false;
        };
        matches!(name, "SigBlk" | "SigPnd" | "ShdPnd")
            && u64::from_str_radix(mask.trim(), 16).is_ok_and(|mask| mask & bit != 0)
    })
}

/// Whether a thread that has the signal blocked unblocks it within a millisecond: a thread
/// still in the handler of the previous capture (the kernel blocks the signal while its
/// handler runs) returns from it within microseconds, one that blocks it on purpose does not.
fn unblocked_soon(tid: Tid) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_millis(1);
    while std::time::Instant::now() < deadline {
        std::thread::yield_now();
        if !blocked_or_pending(tid) {
            return true;
        }
    }
    false
}

/// Has thread `tid` record its stack; waits at most `timeout`.
pub(crate) fn capture(tid: Tid, timeout: Duration) -> Result<RawBacktrace, CaptureError> {
    if !still_ours() {
        return Err(CaptureError::HandlerReplaced(signal_number()));
    }
    if blocked_or_pending(tid) && !unblocked_soon(tid) {
        return Err(CaptureError::SignalBlocked);
    }
    let _owner = Owner::acquire().ok_or(CaptureError::Busy)?;
    let previous = REQUEST.load(Acquire);
    if state(previous) == RUNNING {
        // A handler from a capture that timed out is still walking into the buffer.
        return Err(CaptureError::Busy);
    }
    let late = LATE.load(Relaxed);
    if late != 0
        && (previous == late || previous == with_state(late, DONE))
        && monotonic_ns().saturating_sub(LATE_SENT_NS.load(Relaxed))
            < u64::try_from(crate::LATE_HOLD.as_nanos()).unwrap_or(u64::MAX)
    {
        // A late stack is still to come, or came and is not collected yet: keep the buffer
        // for it a while.
        return Err(CaptureError::AwaitingLate);
    }
    // The owner alone moves the word out of IDLE/DONE, and no handler writes it there.
    let request = word(REQUESTED, tid, generation(previous) + 1);
    REQUEST.store(request, Release);
    let sent_ns = monotonic_ns();
    let sent = send(tid);
    if let Err(errno) = sent {
        // No signal is on its way to `tid`, and a stale one for another tid or generation
        // cannot claim this word.
        let _ = REQUEST.compare_exchange(request, with_state(request, IDLE), AcqRel, Relaxed);
        return Err(if errno == libc::ESRCH {
            CaptureError::ThreadGone
        } else {
            CaptureError::Signal(errno)
        });
    }
    LATE.store(0, Relaxed);
    let done = with_state(request, DONE);
    if !wait_for(done, timeout) && REQUEST.load(Acquire) != done {
        // Left as it is: a handler that runs later (its thread was waiting for a CPU) records
        // the stack for `collect_late`, and one running now finishes before the buffer is
        // read (later captures are `Busy` while the word is RUNNING).
        LATE.store(request, Relaxed);
        LATE_SENT_NS.store(sent_ns, Relaxed);
        return Err(CaptureError::Timeout);
    }
    Ok(frames_out(sent_ns))
}

/// The stack of thread `tid`'s last capture that timed out, once its handler has run (then
/// the request is done with); [`Late::Pending`] while it has not, [`Late::Gone`] when there is
/// none for `tid` (another capture replaced it, or it was collected).
pub(crate) fn collect_late(tid: Tid) -> Late {
    let Some(_owner) = Owner::acquire() else {
        return Late::Pending;
    };
    let late = LATE.load(Relaxed);
    if late == 0 || tid_of(late) != tid {
        return Late::Gone;
    }
    let now = REQUEST.load(Acquire);
    if now == late || now == with_state(late, RUNNING) {
        return Late::Pending;
    }
    LATE.store(0, Relaxed);
    if now == with_state(late, DONE) {
        Late::Stack(frames_out(LATE_SENT_NS.load(Relaxed)))
    } else {
        Late::Gone
    }
}

/// The frames the last handler stored, for a signal sent at `sent_ns`. The caller owns the
/// buffer and has seen the request DONE.
fn frames_out(sent_ns: u64) -> RawBacktrace {
    let count = COUNT.load(Relaxed).min(MAX_FRAMES);
    let ips = FRAMES[..count].iter().map(|f| f.load(Relaxed)).collect();
    let done_at_ns = DONE_AT_NS.load(Relaxed);
    let took = Duration::from_nanos(done_at_ns.saturating_sub(sent_ns));
    // `Instant` is CLOCK_MONOTONIC too: place the handler's time on it.
    let ago = Duration::from_nanos(monotonic_ns().saturating_sub(done_at_ns));
    let now = std::time::Instant::now();
    let captured_at = now.checked_sub(ago).unwrap_or(now);
    RawBacktrace {
        ips,
        took,
        captured_at,
    }
}

/// Sends the capture signal to thread `tid` of this process; `Err(errno)` on failure.
fn send(tid: Tid) -> Result<(), i32> {
    // SAFETY: getpid has no preconditions; tgkill only sends a signal to a thread of this
    // process, and the signal's handler is installed (capture is only reachable then).
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal_number()) };
    if sent == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL))
    }
}

/// Waits until the request word is `want`: spins briefly, then yields, then naps 20 µs.
fn wait_for(want: u64, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut spins = 0u32;
    loop {
        if REQUEST.load(Acquire) == want {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        spins = spins.saturating_add(1);
        if spins < 200 {
            std::hint::spin_loop();
        } else if spins < 300 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_words_round_trip_state_tid_and_generation() {
        let w = word(REQUESTED, 123_456, 7);
        assert_eq!(state(w), REQUESTED);
        assert_eq!(tid_of(w), 123_456);
        assert_eq!(generation(w), 7);
        let running = with_state(w, RUNNING);
        assert_eq!(
            (state(running), tid_of(running), generation(running)),
            (RUNNING, 123_456, 7)
        );
        assert_ne!(word(REQUESTED, 1, 1), word(REQUESTED, 1, 2));
        assert_eq!(tid_of(word(DONE, i32::MAX, u64::MAX)), i32::MAX);
        assert_eq!(generation(word(IDLE, 1, 1 << 30)), 0, "generations wrap");
    }
}

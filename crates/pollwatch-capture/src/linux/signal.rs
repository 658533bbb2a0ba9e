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
//! Four buffers, each with a request word that holds a state, the requested thread id and a
//! generation number:
//!
//! ```text
//!   capture():  takes a free buffer: IDLE/DONE(g-1) --owner stores--> REQUESTED(tid, g)
//!               --tgkill(pid, tid)-->
//!   handler on thread tid:  finds the buffer REQUESTED(tid, _), CAS -> RUNNING(tid, g), walks
//!                           the stack into its frames, stores DONE(tid, g)
//!   capture():  sees DONE(tid, g), copies the frames out
//!   timeout:    the request stays REQUESTED(tid, g) and the buffer is kept for it: a thread
//!               that was waiting for a CPU, or in a call that takes signals when it returns,
//!               runs the handler as soon as it runs again, still inside whatever held it
//!   collect_late(tid):  sees DONE(tid, g) for that request, copies the frames out, frees it
//!   a later capture():  takes a buffer kept for a late stack only once it has been kept for
//!               `LATE_HOLD` (a late handler's CAS then fails); `AwaitingLate` when every
//!               buffer is kept, `Busy` when handlers are walking in the others
//! ```
//!
//! Only one `capture` or `collect_late` call at a time owns the buffers (an atomic flag,
//! released by a guard, so a second caller gets `Busy` and nothing can be poisoned). A handler
//! claims a request with one compare-and-swap of the *whole* word, so a handler that arrives
//! late, on another thread, or for an older generation never touches a buffer. No capture
//! takes a buffer whose word is `RUNNING` (a handler still walking after its capture timed
//! out): a buffer is never read while written.
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

/// Capture buffers: the capture in flight takes one, and a capture that timed out keeps its
/// own for its late stack, so that other threads' captures go on meanwhile.
const SLOTS: usize = 4;

/// One capture buffer with its request word.
struct Slot {
    /// The request word: bits 0-1 the state, bits 2-33 the thread id, bits 34-63 the
    /// generation.
    request: AtomicU64,
    /// The request of this slot's capture that timed out (0: none), until
    /// [`collect_late`] takes its frames or, [`LATE_HOLD`](crate::LATE_HOLD) after it was
    /// sent, a new capture takes the slot.
    late: AtomicU64,
    /// `CLOCK_MONOTONIC` when `late`'s signal was sent, ns.
    late_sent_ns: AtomicU64,
    /// Frames stored by the slot's last handler.
    count: AtomicUsize,
    /// `CLOCK_MONOTONIC` when the slot's last handler finished, ns.
    done_at_ns: AtomicU64,
    frames: [AtomicUsize; MAX_FRAMES],
}

impl Slot {
    const fn new() -> Self {
        Self {
            request: AtomicU64::new(IDLE),
            late: AtomicU64::new(0),
            late_sent_ns: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            done_at_ns: AtomicU64::new(0),
            frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
        }
    }

    /// Whether a new capture may take this slot at `now_ns`: no handler walks into it, and
    /// it keeps no late stack (or has kept one long enough).
    fn free(&self, now_ns: u64, or_held_since: bool) -> bool {
        if state(self.request.load(Acquire)) == RUNNING {
            return false;
        }
        if self.late.load(Relaxed) == 0 {
            return true;
        }
        let hold = u64::try_from(crate::LATE_HOLD.as_nanos()).unwrap_or(u64::MAX);
        or_held_since && now_ns.saturating_sub(self.late_sent_ns.load(Relaxed)) >= hold
    }
}

static BUFFERS: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// Held by the one `capture` or `collect_late` call that owns the request words' non-`RUNNING`
/// transitions and the buffers.
static OWNER: AtomicBool = AtomicBool::new(false);

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
    let tid = gettid();
    for slot in &BUFFERS {
        let request = slot.request.load(Acquire);
        if state(request) == REQUESTED
            && tid_of(request) == tid
            && slot
                .request
                .compare_exchange(request, with_state(request, RUNNING), AcqRel, Relaxed)
                .is_ok()
        {
            // SAFETY: `context` is the ucontext_t the kernel passed to this SA_SIGINFO handler.
            let pc = unsafe { context::interrupted_pc(context) };
            record(slot, pc);
            slot.done_at_ns.store(monotonic_ns(), Relaxed);
            // While RUNNING only this handler writes the word: a plain store is enough.
            slot.request.store(with_state(request, DONE), Release);
            break;
        }
    }
    // SAFETY: as above; restores the interrupted code's errno.
    unsafe { *libc::__errno_location() = errno };
}

/// Walks the stack into `slot`'s frames, dropping the frames before the interrupted
/// instruction `pc` (0: unknown, keep everything).
#[inline(never)]
fn record(slot: &Slot, pc: usize) {
    let mut count = 0usize;
    let mut found = false;
    // SAFETY: trace_unsynchronized must not run concurrently with another unwinder call that
    // is not thread-safe. libgcc's `_Unwind_Backtrace` is thread-safe; the RUNNING state
    // admits one handler per slot at a time; the closure only stores into the slot's
    // preallocated atomics (no allocation, no lock).
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
            slot.frames[count].store(ip, Relaxed);
            count += 1;
            true
        });
    }
    slot.count.store(count, Relaxed);
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
    let now_ns = monotonic_ns();
    let Some(slot) = BUFFERS
        .iter()
        .find(|slot| slot.free(now_ns, false))
        .or_else(|| BUFFERS.iter().find(|slot| slot.free(now_ns, true)))
    else {
        let walking = BUFFERS
            .iter()
            .any(|slot| state(slot.request.load(Acquire)) == RUNNING);
        // Handlers of captures that timed out are walking, or every buffer is kept for a
        // late stack.
        return Err(if walking {
            CaptureError::Busy
        } else {
            CaptureError::AwaitingLate
        });
    };
    // A late stack kept past its hold is given up: its handler, if it ever runs, finds
    // another word.
    slot.late.store(0, Relaxed);
    let previous = slot.request.load(Acquire);
    // The owner alone moves the word out of IDLE/DONE, and no handler writes it there.
    let request = word(REQUESTED, tid, generation(previous) + 1);
    slot.request.store(request, Release);
    let sent_ns = monotonic_ns();
    let sent = send(tid);
    if let Err(errno) = sent {
        // No signal is on its way to `tid`, and a stale one for another tid or generation
        // cannot claim this word.
        let _ = slot
            .request
            .compare_exchange(request, with_state(request, IDLE), AcqRel, Relaxed);
        return Err(if errno == libc::ESRCH {
            CaptureError::ThreadGone
        } else {
            CaptureError::Signal(errno)
        });
    }
    let done = with_state(request, DONE);
    if !wait_for(slot, done, timeout) && slot.request.load(Acquire) != done {
        // Left as it is: a handler that runs later (its thread was waiting for a CPU, or in a
        // call that takes signals when it returns) records the stack for `collect_late`, and
        // one running now finishes before the buffer is read (no capture takes a RUNNING
        // slot).
        slot.late.store(request, Relaxed);
        slot.late_sent_ns.store(sent_ns, Relaxed);
        return Err(CaptureError::Timeout);
    }
    Ok(frames_out(slot, sent_ns))
}

/// The stack of thread `tid`'s last capture that timed out, once its handler has run (then
/// the request is done with); [`Late::Pending`] while it has not, [`Late::Gone`] when there is
/// none for `tid` (a new capture took its buffer, or it was collected).
pub(crate) fn collect_late(tid: Tid) -> Late {
    let Some(_owner) = Owner::acquire() else {
        return Late::Pending;
    };
    for slot in &BUFFERS {
        let late = slot.late.load(Relaxed);
        if late == 0 || tid_of(late) != tid {
            continue;
        }
        let now = slot.request.load(Acquire);
        if now == late || now == with_state(late, RUNNING) {
            return Late::Pending;
        }
        slot.late.store(0, Relaxed);
        if now == with_state(late, DONE) {
            return Late::Stack(frames_out(slot, slot.late_sent_ns.load(Relaxed)));
        }
    }
    Late::Gone
}

/// The frames `slot`'s last handler stored, for a signal sent at `sent_ns`. The caller owns
/// the buffers and has seen the slot's request DONE.
fn frames_out(slot: &Slot, sent_ns: u64) -> RawBacktrace {
    let count = slot.count.load(Relaxed).min(MAX_FRAMES);
    let ips = slot.frames[..count]
        .iter()
        .map(|f| f.load(Relaxed))
        .collect();
    let done_at_ns = slot.done_at_ns.load(Relaxed);
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
fn wait_for(slot: &Slot, want: u64, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut spins = 0u32;
    loop {
        if slot.request.load(Acquire) == want {
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

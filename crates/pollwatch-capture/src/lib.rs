//! pollwatch's platform layer: what a stuck thread of this process is doing, and where.
//!
//! pollwatch's scan thread notices a thread that has been inside one task poll for too long
//! and asks an [`Inspector`]:
//! - [`Inspector::thread_state`]: the thread's scheduling state, the syscall it is in and what
//!   that syscall waits on (a file path, a socket's two addresses, a lock, a sleep), from
//!   `/proc/self/task/<tid>/{stat,wchan,syscall}`, `readlink /proc/self/fd/<arg0>` and
//!   `/proc/self/net/{tcp,tcp6,udp,udp6,unix}`. No privileges are needed: a process may read
//!   its own threads. Syscall names come from a table per architecture (x86_64, aarch64);
//!   elsewhere only the number is known.
//! - [`Inspector::capture`]: the thread's stack, as raw addresses. A realtime signal makes the
//!   stuck thread walk its own stack into a static, preallocated buffer; the handler saves
//!   and restores errno, and never allocates, locks or blocks (see *Stack capture* below).
//!   A thread in a call the signal would interrupt is not signalled (see *`EINTR`* below).
//! - [`Inspector::cpu_time_ns`]: how much CPU the thread has used (to tell spinning from
//!   waiting between two looks).
//! - [`Inspector::sched_times`]: how long the thread ran and how long it waited on a run
//!   queue for a CPU (to tell a thread that holds a CPU from one the host is short of CPU
//!   for), and [`Inspector::cgroup_throttling`]: the process's cgroup CPU quota throttling.
//!
//! [`symbolize`] turns the raw addresses into functions, files and lines; call it on a thread
//! of your own, never in a signal handler, and [`warm_up`] it first: the first symbolization
//! loads debug info and takes 20-75 ms.
//!
//! This is the only crate of pollwatch with `unsafe` code and Linux-specific code. On other
//! systems [`inspector`] returns the [`fallback`], which observes nothing, so pollwatch still
//! reports stalls with their task, site and duration.
//!
//! # Stack capture
//!
//! - **The signal** is `SIGRTMIN() + 4` (38 with glibc). It is installed once per process, on
//!   the first `inspector(true)`, with `SA_SIGINFO | SA_RESTART | SA_ONSTACK`. If the
//!   application already has a handler for it (anything but `SIG_DFL`/`SIG_IGN`), pollwatch
//!   leaves that handler alone and [`Inspector::capture`] returns
//!   [`CaptureError::Unsupported`]; `/proc` still works.
//! - **One capture at a time** in the process: a second concurrent caller gets
//!   [`CaptureError::Busy`] at once. Each of four buffers has a request word (state, thread
//!   id, generation) that admits exactly one handler per request, on the requested thread; a
//!   buffer whose handler is still walking after its capture timed out is not reused until it
//!   is done.
//! - **Late stacks**: a capture that times out leaves its request standing, and its buffer is
//!   kept. A thread that was waiting for a CPU, or in a long kernel call that takes signals
//!   only when it returns (a large file read from the page cache), runs the handler as soon
//!   as it runs again: [`Inspector::collect_late`] hands out that stack, whose `captured_at`
//!   tells whether it is still from the stall. Other threads are captured in the other
//!   buffers meanwhile ([`CaptureError::AwaitingLate`] only when all four are kept); after
//!   [`LATE_HOLD`] a new capture may take a kept buffer, and a handler that arrives then finds
//!   a different word and does nothing.
//! - **The frames** start at the interrupted instruction: the handler reads it from its
//!   `ucontext` and drops the frames before it (the unwinder, `backtrace`, the handler, the
//!   signal trampoline `__restore_rt`). On architectures or C libraries where the context
//!   layout is not known here (anything but x86_64/aarch64 glibc), nothing is dropped and the
//!   stack starts with those frames. At most 128 frames are kept.
//! - **[`RawBacktrace::took`]** is from the signal being sent to the handler having stored
//!   the frames, on `CLOCK_MONOTONIC`: 6-14 µs median and 45-110 µs max over 500 captures
//!   of a thread sleeping in `clock_nanosleep` (debug build, 2 cores, other tests running). `capture` itself returns a few microseconds
//!   later (it polls with a short spin, then yields, then naps 20 µs).
//! - **When it cannot work**: a thread that blocks the signal, is stopped (`SIGSTOP`,
//!   a debugger) or has exited does not answer: `ThreadGone` when the kernel knows it is
//!   gone, else `Timeout` after the caller's `timeout` and no late stack (a thread in its last moments of exit
//!   still accepts the signal but never handles it; seen occasionally in this crate's tests).
//!
//! # `EINTR`
//!
//! A capture never changes what the captured thread sees. With `SA_RESTART` the kernel
//! restarts most calls the handler interrupts (file I/O; `read`, `write`, `recv`, `send`,
//! `accept`, `connect` on sockets without timeouts; pipes, `wait4`, `flock`, futex waits).
//! Some it never restarts (man 7 signal): they would fail with `EINTR`. Just before sending
//! the signal, [`Inspector::capture`] reads the call the thread sleeps in
//! (`/proc/self/task/<tid>/syscall`) and looks it up in a table per syscall
//! (`linux/syscalls`); for a socket call it reads the socket's timeouts with `getsockopt` on
//! the call's descriptor (the threads share this process's descriptor table). For these it
//! sends nothing and returns [`CaptureError::WouldInterrupt`], with the call and the reason
//! ([`Unrestartable`]):
//! - socket calls on a socket with a receive or send timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`):
//!   `read`, `readv`, `recvfrom`, `recvmsg`, `recvmmsg` (also with a timeout argument),
//!   `accept`, `accept4` with a receive timeout; `write`, `writev`, `sendto`, `sendmsg`,
//!   `sendmmsg`, `connect` with either (Linux waits on the send timeout there, man 7 signal
//!   names the receive timeout);
//! - waits for descriptors with a timeout (an interrupted one returns before it): `poll`,
//!   `ppoll`, `select`, `pselect6`, `epoll_wait`, `epoll_pwait`, `epoll_pwait2`;
//! - calls never restarted: `pause`, `rt_sigsuspend`, `rt_sigtimedwait`, `msgrcv`, `msgsnd`,
//!   `semop`, `semtimedop`, `io_getevents`, `io_pgetevents`, `io_uring_enter`,
//!   `restart_syscall`.
//!
//! Some calls are not restarted but are captured, because their callers wait again:
//! sleeps (`nanosleep`, `clock_nanosleep`: `std::thread::sleep` sleeps the time left), futex
//! waits with a timeout (locks, condition variables and thread parking re-check their word and
//! wait), and waits for descriptors without a timeout (no wait is cut short, and every caller
//! of one must loop on `EINTR` for any signal the process takes: std's `Command::output`
//! polls its pipes so, mio's and tokio's event loops ignore it). A thread on a CPU, or in user
//! space, is signalled: the handler runs at once.
//! What remains is the time from the check to the signal's delivery (12-19 µs median, see
//! BENCHMARKS.md), in which the thread could enter such a call. Where the syscall table names
//! nothing (architectures other than x86_64 and aarch64), every capture signals. Capture can
//! be switched off (`inspector(false)`).
//!
//! # What the handler relies on
//!
//! The walk uses `backtrace::trace_unsynchronized`, i.e. libgcc's `_Unwind_Backtrace`, which
//! follows the signal frame through the trampoline's unwind info (a frame-pointer walk gave
//! only 2-8 frames without `-C force-frame-pointers`). It is not formally async-signal-safe:
//! it finds unwind tables with `_dl_find_object` (glibc 2.35+, lock-free) or
//! `dl_iterate_phdr` (a recursive loader lock: a thread interrupted while holding it re-enters
//! it). A thread interrupted while a JIT registers unwind info with `__register_frame` could
//! contend on libgcc's own lock with older GCC runtimes. pprof-rs relies on the same walk.
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod debug_info;
mod fallback;
#[cfg(target_os = "linux")]
mod linux;
mod symbolize;
pub mod tsc;
mod types;

use std::sync::Arc;

pub use debug_info::{
    dwp_beside, identify, separate_debug_file, DebugInfo, DebugInfoError, ObjectIdentity,
};
/// Another process seen from outside, for `pollwatch attach` (feature `remote`, Linux).
#[cfg(all(feature = "remote", target_os = "linux"))]
pub use linux::remote;
pub use symbolize::{has_line_tables, release_symbols_if_idle, symbolize, warm_up, SymbolFrame};

/// Returns the heap's free memory to the system, where the allocator keeps it (glibc).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free memory of glibc's own arenas; it takes their
    // locks like any allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
pub use types::{
    CaptureError, ModuleAddress, NoRestart, RawBacktrace, RunState, SchedTimes, Syscall, Target,
    ThreadInCall, ThreadState, Throttling, Tid, Unrestartable, MAX_MAP_THREADS,
};

/// What this platform can observe about another thread of this process.
///
/// Every method may be called from any thread, and never panics; a thread that is gone gives
/// `None` or [`CaptureError::ThreadGone`].
pub trait Inspector: Send + Sync + std::fmt::Debug {
    /// The thread's state, syscall and the syscall's target, from
    /// `/proc/self/task/<tid>/{stat,wchan,syscall}` (plus `/proc/self/fd` and `/proc/self/net`
    /// lookups); `None` if unavailable or the thread is gone. Allocates and reads files: call
    /// it off the hot path.
    fn thread_state(&self, tid: Tid) -> Option<ThreadState>;
    /// CPU time the thread has used so far, in nanoseconds
    /// (`/proc/self/task/<tid>/schedstat`, else `stat`'s `utime + stime`); `None` if
    /// unavailable. The kernel accounts a running thread's time at scheduler ticks and
    /// switches, so the value lags a thread that is on the CPU by up to a tick (1-10 ms).
    fn cpu_time_ns(&self, tid: Tid) -> Option<u64>;
    /// The thread's time on a CPU and time waiting on a run queue for one so far
    /// (`/proc/self/task/<tid>/schedstat`); `None` if unavailable (no schedstats, the thread
    /// is gone, not Linux). Lags like [`cpu_time_ns`](Inspector::cpu_time_ns).
    fn sched_times(&self, tid: Tid) -> Option<SchedTimes> {
        let _ = tid;
        None
    }
    /// The syscall thread `tid` is asleep in, as its number and six argument registers
    /// (`/proc/self/task/<tid>/syscall`), without resolving what it waits on: one small read,
    /// cheap enough to take every tick. `None` when the thread runs or is runnable (the kernel
    /// then writes `running`), is blocked outside a syscall, is gone, or where unavailable.
    /// Two equal readings with no CPU time used between them (see
    /// [`sched_times`](Inspector::sched_times)) are one call the thread has slept in
    /// throughout.
    fn blocked_call(&self, tid: Tid) -> Option<(u64, [u64; 6])> {
        let _ = tid;
        None
    }
    /// The CPU throttling of this process's cgroup so far, from cgroup v2's `cpu.stat`
    /// (the cgroup named by `/proc/self/cgroup`'s `0::` line, under `/sys/fs/cgroup`); `None`
    /// without cgroup v2 or without a CPU controller there.
    fn cgroup_throttling(&self) -> Option<Throttling> {
        None
    }
    /// Makes thread `tid` record its own stack and returns the raw addresses, innermost
    /// first (see the crate docs, *Stack capture*); waits at most `timeout`. A thread in a
    /// call the signal would interrupt is not signalled: [`CaptureError::WouldInterrupt`]
    /// (see the crate docs, *`EINTR`*).
    fn capture(&self, tid: Tid, timeout: std::time::Duration)
        -> Result<RawBacktrace, CaptureError>;
    /// The stack thread `tid` recorded after its last [`capture`](Inspector::capture) timed
    /// out: a thread waiting for a CPU runs the handler as soon as it runs again, so the stack
    /// comes late but from where the thread was (its `captured_at` says when). Handed out
    /// once. [`Late::Pending`] while the handler has not run; [`Late::Gone`] once another
    /// capture has replaced that request, or where stacks are not captured.
    fn collect_late(&self, tid: Tid) -> Late {
        let _ = tid;
        Late::Gone
    }
    /// Whether [`capture`](Inspector::capture) can work here: Linux, backtraces switched on
    /// and the signal handler installed.
    fn can_capture(&self) -> bool;
}

/// How long a capture that timed out keeps its buffer for its thread's late stack, at least
/// (until [`Inspector::collect_late`] takes it, or a capture finds no other buffer free).
pub const LATE_HOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// What became of a capture that timed out: see [`Inspector::collect_late`].
#[derive(Debug)]
pub enum Late {
    /// The thread has not run the handler yet (it may still).
    Pending,
    /// The stack the handler recorded, late.
    Stack(RawBacktrace),
    /// No late capture for this thread is outstanding.
    Gone,
}

/// The calling thread's OS thread id (`gettid` on Linux; 0 elsewhere).
pub fn current_tid() -> Tid {
    platform::current_tid()
}

/// The best inspector for this platform: on Linux `/proc` and signal capture, elsewhere the
/// [`fallback`].
///
/// With `backtraces: false` no signal handler is ever installed or signal sent
/// ([`Inspector::capture`] returns [`CaptureError::Disabled`]). With `true`, the first call
/// installs the handler (once per process, thread-safe); if that is impossible (another
/// handler owns the signal), capture returns [`CaptureError::Unsupported`] and `/proc` still
/// works.
pub fn inspector(backtraces: bool) -> Arc<dyn Inspector> {
    inspector_with(Options {
        backtraces,
        ..Options::default()
    })
}

/// How an [`inspector_with`] captures stacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Whether stacks are captured at all (see [`inspector`]).
    pub backtraces: bool,
    /// Signal a thread whatever call it sleeps in, also one the signal interrupts (a socket
    /// call with a timeout, `poll` with a timeout, ...): for code that retries `EINTR`, where
    /// the stack of such a stall is worth the interruption.
    pub interrupt_any_call: bool,
    /// The realtime signal to capture with (default [`default_signal`]); the first inspector
    /// of the process to install its handler decides.
    pub signal: Option<i32>,
}

/// The best inspector for this platform, with `options`.
pub fn inspector_with(options: Options) -> Arc<dyn Inspector> {
    platform::inspector(options)
}

/// The realtime signals this platform has (`SIGRTMIN()..=SIGRTMAX()`), the ones a capture
/// signal may be; `None` where stacks are not captured with signals.
pub fn realtime_signals() -> Option<std::ops::RangeInclusive<i32>> {
    platform::realtime_signals()
}

/// The capture signal used unless another is asked for: `SIGRTMIN() + 4`.
pub fn default_signal() -> Option<i32> {
    platform::default_signal()
}

/// An inspector that observes nothing, as on a platform without `/proc` or signals.
pub fn fallback() -> Arc<dyn Inspector> {
    fallback::fallback()
}

#[cfg(target_os = "linux")]
use linux as platform;

#[cfg(not(target_os = "linux"))]
use fallback::platform;

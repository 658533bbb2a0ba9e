//! pollwatch's platform layer: what a stuck thread of this process is doing, and where.
//!
//! pollwatch's watchdog notices a thread that has been inside one task poll for too long and
//! asks an [`Inspector`]:
//! - [`Inspector::thread_state`]: the thread's scheduling state, the syscall it is in and what
//!   that syscall waits on (a file path, a socket's two addresses, a lock, a sleep), from
//!   `/proc/self/task/<tid>/{stat,wchan,syscall}` and `/proc/self/{fd,net}`. No privileges are
//!   needed: a process may read its own threads.
//! - [`Inspector::capture`]: the thread's stack. A realtime signal (installed once with
//!   `SA_SIGINFO | SA_RESTART`) makes the stuck thread walk its own stack into a static,
//!   preallocated buffer; the handler saves errno, never allocates, locks or blocks.
//! - [`Inspector::cpu_time_ns`]: how much CPU the thread has used.
//!
//! [`symbolize`] turns the raw addresses into functions, files and lines; call it on a thread
//! of your own, never in a signal handler, and [`warm_up`] it first: the first symbolization
//! loads debug info and takes 20-75 ms.
//!
//! This is the only crate of pollwatch with `unsafe` code and Linux-specific code. On other
//! systems [`inspector`] returns the [`fallback`], which observes nothing, so pollwatch still
//! reports stalls with their task, site and duration.
//!
//! # `EINTR`
//!
//! With `SA_RESTART`, `read`, `write`, `recv`, `send` and futex waits are restarted by the
//! kernel. A few syscalls never are (`nanosleep`, `epoll_wait`, `poll`, `select`, sockets with
//! a timeout): interrupted by the capture signal, they return `EINTR`. The standard library
//! retries its own (`thread::sleep`, `read_to_end`, `Mutex::lock`); code calling such a
//! syscall directly sees `ErrorKind::Interrupted`. pollwatch captures at most once per look at
//! a stuck poll; capture can be switched off (`inspector(false)`).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod fallback;
#[cfg(target_os = "linux")]
mod linux;
mod symbolize;
mod types;

use std::sync::Arc;

pub use symbolize::{symbolize, warm_up, SymbolFrame};
pub use types::{CaptureError, RawBacktrace, RunState, Syscall, Target, ThreadState, Tid};

/// What this platform can observe about another thread of this process.
pub trait Inspector: Send + Sync + std::fmt::Debug {
    /// The thread's state, syscall and the syscall's target; `None` if unavailable or the
    /// thread is gone.
    fn thread_state(&self, tid: Tid) -> Option<ThreadState>;
    /// CPU time the thread has used so far, in nanoseconds.
    fn cpu_time_ns(&self, tid: Tid) -> Option<u64>;
    /// Makes thread `tid` record its own stack and returns the raw return addresses,
    /// innermost first; waits at most `timeout`.
    fn capture(&self, tid: Tid, timeout: std::time::Duration)
        -> Result<RawBacktrace, CaptureError>;
    /// Whether [`capture`](Inspector::capture) can work here.
    fn can_capture(&self) -> bool;
}

/// The calling thread's OS thread id (`gettid` on Linux; 0 elsewhere).
pub fn current_tid() -> Tid {
    platform::current_tid()
}

/// The best inspector for this platform. With `backtraces: false` no signal handler is ever
/// installed or signal sent ([`Inspector::capture`] returns [`CaptureError::Disabled`]).
pub fn inspector(backtraces: bool) -> Arc<dyn Inspector> {
    platform::inspector(backtraces)
}

/// An inspector that observes nothing, as on a platform without `/proc` or signals.
pub fn fallback() -> Arc<dyn Inspector> {
    Arc::new(fallback::Fallback)
}

#[cfg(target_os = "linux")]
use linux as platform;

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::*;

    pub(crate) fn current_tid() -> Tid {
        0
    }

    pub(crate) fn inspector(_backtraces: bool) -> Arc<dyn Inspector> {
        fallback()
    }
}

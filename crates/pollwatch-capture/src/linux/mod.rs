//! Linux: `/proc` readers and signal stack capture.

mod context;
pub(crate) mod modules;
pub(crate) mod line_tables;
mod net;
mod proc;
#[cfg(feature = "remote")]
pub mod remote;
mod restart;
mod signal;
mod syscalls;

use std::sync::Arc;
use std::time::Duration;

use crate::{
    CaptureError, Inspector, Late, Options, RawBacktrace, SchedTimes, ThreadState, Throttling, Tid,
};

pub(crate) fn current_tid() -> Tid {
    signal::gettid()
}

pub(crate) fn inspector(options: Options) -> Arc<dyn Inspector> {
    let signals = options.backtraces && signal::install(options.signal);
    Arc::new(Linux {
        backtraces: options.backtraces,
        signals,
        interrupt_any_call: options.interrupt_any_call,
    })
}

pub(crate) fn realtime_signals() -> Option<std::ops::RangeInclusive<i32>> {
    Some(libc::SIGRTMIN()..=libc::SIGRTMAX())
}

pub(crate) fn default_signal() -> Option<i32> {
    Some(signal::default_signal())
}

/// Reads `/proc/self/task/<tid>` and captures with a realtime signal.
#[derive(Debug)]
struct Linux {
    backtraces: bool,
    signals: bool,
    /// Signal a thread whatever call it sleeps in (its code retries `EINTR`).
    interrupt_any_call: bool,
}

impl Inspector for Linux {
    fn thread_state(&self, tid: Tid) -> Option<ThreadState> {
        proc::thread_state(tid)
    }

    fn cpu_time_ns(&self, tid: Tid) -> Option<u64> {
        proc::cpu_time_ns(tid)
    }

    fn sched_times(&self, tid: Tid) -> Option<SchedTimes> {
        proc::sched_times(tid)
    }

    fn cgroup_throttling(&self) -> Option<Throttling> {
        proc::cgroup_throttling()
    }

    fn blocked_call(&self, tid: Tid) -> Option<(u64, [u64; 6])> {
        proc::blocked_call(tid)
    }

    fn capture(&self, tid: Tid, timeout: Duration) -> Result<RawBacktrace, CaptureError> {
        if !self.backtraces {
            return Err(CaptureError::Disabled);
        }
        if !self.signals {
            return Err(CaptureError::Unsupported);
        }
        // Checked last, just before the signal is sent: what the thread may do between the
        // two is the only window left for an interruption.
        if !self.interrupt_any_call {
            if let Some(call) = restart::unrestartable(tid) {
                return Err(CaptureError::WouldInterrupt(call));
            }
        }
        signal::capture(tid, timeout)
    }

    fn collect_late(&self, tid: Tid) -> Late {
        if self.can_capture() {
            signal::collect_late(tid)
        } else {
            Late::Gone
        }
    }

    fn can_capture(&self) -> bool {
        self.backtraces && self.signals
    }
}

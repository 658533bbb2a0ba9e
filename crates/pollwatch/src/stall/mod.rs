//! Stalls: polls caught by the watchdog while still holding their thread. The watchdog sends
//! raw samples ([`Msg`]); the reporter thread turns them into [`Stall`]s with a symbolized,
//! trimmed stack, a blocking call site, a cause and a fix ([`describe`]), emits the warnings
//! (rate-limited per site) and keeps them for reports ([`book`]).

pub(crate) mod book;
pub(crate) mod classify;
pub(crate) mod describe;
pub(crate) mod frames;
pub(crate) mod rate_limit;
pub(crate) mod span;

use pollwatch_capture::{CaptureError, RawBacktrace, ThreadState};

/// What the watchdog sends the reporter.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A look at a running stall.
    Sample(Box<RawSample>),
    /// A stall the watchdog reported has ended.
    Ended {
        slot: usize,
        seq: u64,
        total_ns: u64,
        /// Whether `total_ns` is the poll's own measurement; otherwise the watchdog's
        /// estimate (the thread ran further polls before the watchdog looked again).
        exact: bool,
        cpu_now_ns: Option<u64>,
    },
    /// Stop after handling what is queued.
    Stop,
}

/// Whether a sample is the first look at a stall or a later one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SampleKind {
    Detected,
    Resampled,
}

/// One look at a stuck thread, as the watchdog took it: nothing symbolized or formatted.
#[derive(Debug)]
pub(crate) struct RawSample {
    pub(crate) kind: SampleKind,
    /// The slot's index in the layer's slot list.
    pub(crate) slot: usize,
    /// The slot's `poll_seq`: identifies the stuck poll.
    pub(crate) seq: u64,
    pub(crate) tid: i32,
    pub(crate) thread: String,
    pub(crate) task_id: u64,
    pub(crate) site: u32,
    pub(crate) started_at_ns: u64,
    pub(crate) running_ns: u64,
    pub(crate) lag_ns: u64,
    pub(crate) state: Option<ThreadState>,
    pub(crate) cpu_now_ns: Option<u64>,
    pub(crate) capture: Option<Result<RawBacktrace, CaptureError>>,
    /// The innermost span entered inside the task, as `name{fields}`.
    pub(crate) inner_span: Option<String>,
}

//! Stalls: polls caught by the watchdog while still holding their thread. The watchdog sends
//! raw samples ([`Msg`]); the reporter thread describes them ([`describe`]: a symbolized stack
//! judged by `pollwatch_judge`: trimmed, the blocking call site, what the thread was doing,
//! the cause and the fix), keeps them as typed [`record::StallRecord`]s in the [`book`] (with the
//! per-site warning rate limit), and renders them as report entries and events only at the
//! edge ([`record::StallRecord::to_report`]).

pub(crate) mod book;
pub(crate) mod describe;
pub(crate) mod harm;
pub(crate) mod rate_limit;
pub(crate) mod record;
pub(crate) mod sched;
pub(crate) mod span;

use pollwatch_capture::{CaptureError, RawBacktrace, ThreadState};
use pollwatch_report::Harm;

use crate::poll::PollKey;
use crate::sites::SiteId;
use crate::stall::sched::SchedReading;

/// What the watchdog sends the reporter.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A look at a running stall.
    Sample(Box<RawSample>),
    /// A stall the watchdog reported has ended.
    Ended {
        key: PollKey,
        total_ns: u64,
        /// Whether `total_ns` is the poll's own measurement; otherwise the watchdog's
        /// estimate (the thread ran further polls before the watchdog looked again).
        exact: bool,
        cpu_now_ns: Option<u64>,
        /// The thread's scheduler accounting when the watchdog saw the poll had ended.
        sched: Option<SchedReading>,
        /// The tasks that waited behind the stall and the delay it added them, when the
        /// thread's runtime queues could be read.
        harm: Option<Harm>,
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
#[derive(Clone, Debug)]
pub(crate) struct RawSample {
    pub(crate) kind: SampleKind,
    /// The stuck poll.
    pub(crate) key: PollKey,
    pub(crate) tid: i32,
    pub(crate) thread: String,
    /// The thread's index among its runtime's workers, if it polled as one.
    pub(crate) worker_index: Option<usize>,
    pub(crate) task_id: u64,
    pub(crate) site: SiteId,
    /// Whether the stuck poll is a worker-level one (a worker's busy period, of no task): the
    /// stall is the call its thread sleeps in, and a stack that runs no tokio scheduler
    /// shows a thread that is no longer a worker ([`on_worker`]).
    pub(crate) worker: bool,
    pub(crate) started_at_ns: u64,
    pub(crate) running_ns: u64,
    pub(crate) lag_ns: u64,
    pub(crate) state: Option<ThreadState>,
    pub(crate) cpu_now_ns: Option<u64>,
    /// The thread's scheduler accounting at this look.
    pub(crate) sched: Option<SchedReading>,
    /// The first reading of this poll, from before detection when the watchdog saw the poll
    /// running earlier (see [`sched::FirstReadings`]).
    pub(crate) sched_first: Option<SchedReading>,
    pub(crate) capture: Option<Result<RawBacktrace, CaptureError>>,
    /// The innermost span entered inside the task, as `name{fields}`.
    pub(crate) inner_span: Option<String>,
    /// The harm so far (see [`harm`]), when the thread's runtime queues could be read.
    pub(crate) harm: Option<Harm>,
}

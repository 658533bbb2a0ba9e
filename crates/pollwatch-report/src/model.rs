//! The report data model: what a pollwatch report holds, independent of how it is stored.
//!
//! Every duration is in nanoseconds and every field name carries its unit (`_ns`).
//! See the crate documentation for the JSON schema and its versioning rules.

use serde::{Deserialize, Serialize};

/// The value of [`Report::format`] in every pollwatch report.
pub const FORMAT: &str = "pollwatch-report";

/// The schema version this crate writes, and the only one it reads.
///
/// The version changes whenever a field is removed or changes meaning. Fields may be added
/// without a version change; readers ignore fields they do not know.
pub const VERSION: u32 = 1;

/// One snapshot of everything pollwatch measured, from the layer's start until `taken_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`]; lets a reader reject a JSON file that is not a pollwatch report.
    pub format: String,
    /// The schema version, [`VERSION`] when written by this crate.
    pub version: u32,
    /// The version of the `pollwatch` library that produced the report.
    pub pollwatch_version: String,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// How long the layer had been observing when the snapshot was taken.
    pub uptime_ns: u64,
    /// The slow-poll threshold in force: a poll that holds its thread for longer is slow.
    pub threshold_ns: u64,
    /// The most sites the layer keeps apart; tasks from further sites go to the overflow site.
    pub max_sites: u32,
    /// Totals over every site.
    pub totals: Totals,
    /// What was lost or clamped to keep the layer's memory and time bounded.
    pub dropped: Dropped,
    /// One entry per spawn site, ordered by `busy_ns`, largest first.
    pub sites: Vec<SiteReport>,
    /// The most recent slow polls (newest last); at most [`Report::SLOW_POLLS_KEPT`] are kept.
    /// Every slow poll is counted in its site's `slow_polls` whether or not it is listed here.
    pub slow_polls: Vec<SlowPoll>,
    /// Problems with the setup that pollwatch noticed, as sentences saying what to change.
    #[serde(default)]
    pub diagnostics: Vec<String>,
    /// The most recent stalls caught while they were running (newest last); at most
    /// [`Report::STALLS_KEPT`]. Every stall is counted in its site's `stalls`.
    #[serde(default)]
    pub stalls: Vec<Stall>,
}

impl Report {
    /// How many recent slow polls a report lists.
    pub const SLOW_POLLS_KEPT: usize = 256;
    /// How many recent stalls a report lists.
    pub const STALLS_KEPT: usize = 256;
}

/// Totals over every site.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Polls observed (task polls and `block_on` polls; drops are not polls).
    pub polls: u64,
    /// Polls that held their thread for longer than the threshold.
    pub slow_polls: u64,
    /// Time spent inside polls, summed over every thread.
    pub busy_ns: u64,
    /// Tasks spawned (including `block_on` futures and `LocalSet` tasks).
    pub tasks_spawned: u64,
    /// Threads that have polled at least one task.
    pub threads: u32,
    /// Polls caught by the watchdog while still running past the threshold.
    #[serde(default)]
    pub stalls: u64,
    /// Polls caught running past the threshold inside `tokio::task::block_in_place`, which
    /// hold no worker: allowed, not stalls. They are still counted in `polls` and
    /// `slow_polls`.
    #[serde(default)]
    pub polls_in_place: u64,
    /// The scheduling delay stalls added to the tasks waiting behind them, estimated in
    /// task-nanoseconds, summed over every stall that ended (see [`Harm::delay_task_ns`]).
    #[serde(default)]
    pub delay_task_ns: u64,
}

/// What the layer dropped or clamped. Each counter says what it lost; none of them changes
/// the poll counts, which are always exact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Tasks whose site did not fit in the site table; they are counted in the overflow site.
    pub tasks_in_overflow_site: u64,
    /// Slow polls that were counted but not reported as events, because a thread's
    /// queue of finished slow polls was full when the poll ended.
    pub slow_poll_events: u64,
    /// Polls nested deeper than the per-thread stack holds; they were not timed.
    pub polls_nested_too_deep: u64,
    /// Polls longer than the histogram's upper bound (one hour), recorded as one hour.
    pub values_clamped: u64,
    /// Warnings (stalls and slow polls) not emitted because their site exceeded its rate
    /// limit; what they were about is still counted and listed.
    #[serde(default)]
    pub stall_warnings_suppressed: u64,
    /// Stall samples lost because the watchdog's queue to the reporter was full. A stall whose
    /// first sample was lost is still counted (in `stalls`, of cause and call site
    /// `unknown`); only what the watchdog saw of it is lost.
    #[serde(default)]
    pub stall_samples: u64,
    /// Times the report files could not be written while running (the directory is not
    /// writable, the disk is full); the reason is in the diagnostics.
    #[serde(default)]
    pub report_writes_failed: u64,
    /// Panics caught on pollwatch's threads, most often from a subscriber or layer of the
    /// application that panicked on one of pollwatch's events or spans: that output was lost,
    /// pollwatch went on; the diagnostics say where. Absent in older reports (read as `0`).
    #[serde(default)]
    pub host_panics: u64,
}

/// Everything measured for one spawn site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteReport {
    /// The site's identifier within this report (stable for the life of one process).
    pub id: u32,
    /// The site as `file:line:col`, plus ` "name"` for named tasks; `<overflow>` for the
    /// overflow site.
    pub label: String,
    /// The source file the task was spawned from (`loc.file`).
    pub file: String,
    /// The line of the spawn call.
    pub line: u32,
    /// The column of the spawn call.
    pub col: u32,
    /// The task name given with `tokio::task::Builder::name`, empty when unnamed.
    pub name: String,
    /// How the future is run: `task`, `local` or `block_on`; `watched` for a future pollwatch
    /// wrapped (`.watched()`, `pollwatch::spawn`).
    pub kind: String,
    /// Tasks spawned from this site.
    pub tasks_spawned: u64,
    /// Polls of tasks from this site.
    pub polls: u64,
    /// Polls longer than the threshold.
    pub slow_polls: u64,
    /// Time spent inside polls of this site's tasks, excluding polls of other tasks nested
    /// inside them (a `LocalSet` inside `block_on`), so no time is counted twice.
    pub busy_ns: u64,
    /// The longest single poll.
    pub max_ns: u64,
    /// Times a task's future was dropped with its span entered (completion, abort or runtime
    /// shutdown). Drops are not polls and are not in the histogram.
    pub drops: u64,
    /// Time spent dropping futures from this site.
    pub drop_ns: u64,
    /// Poll-time percentiles, from the histogram.
    pub percentiles: Percentiles,
    /// The poll-time histogram (nanoseconds, 1 µs .. 1 h, 3 significant digits) in
    /// HdrHistogram's V2 compressed encoding, base64. Empty when the site has no polls.
    pub histogram: String,
    /// Stalls caught at this site while running.
    #[serde(default)]
    pub stalls: u64,
    /// Warnings (stalls and slow polls) of this site suppressed by the rate limit.
    #[serde(default)]
    pub warnings_suppressed: u64,
    /// The distinct blocking call sites of this site's stalls, most frequent first.
    #[serde(default)]
    pub call_sites: Vec<CallSiteCount>,
    /// Polls of this site caught running past the threshold inside
    /// `tokio::task::block_in_place`: allowed, not stalls (still in `polls` and `slow_polls`).
    #[serde(default)]
    pub polls_in_place: u64,
    /// The scheduling delay this site's stalls added to the tasks waiting behind them,
    /// estimated in task-nanoseconds, summed over its stalls that ended (see
    /// [`Harm::delay_task_ns`]). What `pollwatch show --by harm` ranks sites by.
    #[serde(default)]
    pub delay_task_ns: u64,
    /// This site's stalls that ended whose harm is unknown ([`Harm::local_set`]): the tasks
    /// waiting behind them were not counted, so `delay_task_ns` is a lower bound.
    #[serde(default)]
    pub delay_unknown_stalls: u64,
}

/// Every value of [`Stall::cause`] (and of [`CallSiteCount::cause`], which also has
/// `various`).
pub const CAUSES: [&str; 11] = [
    "file_io",
    "sleep",
    "lock",
    "channel",
    "cpu",
    "network",
    "block_on",
    "process",
    "memory_map",
    "descheduled",
    "unknown",
];

/// How often one blocking call site stalled a site's tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSiteCount {
    /// `file:line` of the innermost frame in the application's code; `unknown` when no stack
    /// named one; `other` for the stalls at call sites beyond the first 32 of the site.
    pub call_site: String,
    /// The blocking API it called (`std::fs::read`), when recognised.
    pub blocking_call: Option<String>,
    /// The stall's cause, as in [`Stall::cause`]; `various` for the `other` entry.
    pub cause: String,
    /// Stalls seen there.
    pub count: u64,
}

/// A poll caught by the watchdog while it was still holding its thread past the threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// tokio's task id of the innermost task being polled.
    pub task_id: u64,
    /// Its name, empty when unnamed.
    pub task_name: String,
    /// Its site's label, as in [`SiteReport::label`].
    pub site: String,
    /// The name of the held thread.
    pub thread: String,
    /// The held thread's index among its runtime's workers (tokio's `worker_index()`, as
    /// `RuntimeMetrics` numbers them), when it first polled as one; absent for a thread that
    /// is no worker (a `block_on` caller of a multi-thread runtime, a blocking thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_index: Option<u64>,
    /// The held thread's OS thread id (0 where unknown).
    pub tid: i32,
    /// When the poll started, in nanoseconds since the layer started.
    pub started_at_ns: u64,
    /// How long the poll had been running when the watchdog caught it.
    pub detected_after_ns: u64,
    /// How late the detection was: `detected_after_ns` minus the threshold.
    pub detection_lag_ns: u64,
    /// How long the poll held the thread: final when `ended`, so far otherwise.
    pub duration_ns: u64,
    /// Whether the poll has ended.
    pub ended: bool,
    /// CPU time the thread used from the stall's detection to its end (or to the last look
    /// while it still runs), when known: close to that wall time for CPU work, near zero for a
    /// thread blocked in a syscall. Compare it with `duration_ns - detected_after_ns`.
    pub cpu_ns: Option<u64>,
    /// Time the thread ran on a CPU while the watchdog watched the poll (from its first look
    /// past a quarter of the threshold, else from detection, to its end or last look), from
    /// the scheduler's accounting, when known.
    #[serde(default)]
    pub run_ns: Option<u64>,
    /// Time the thread was runnable but waited on a run queue for a CPU over the same span,
    /// when known: waiting longer than it ran, while running less than half the threshold,
    /// makes CPU work `descheduled`.
    #[serde(default)]
    pub runqueue_wait_ns: Option<u64>,
    /// Time the process's cgroup was throttled by its CPU quota over the same span, where
    /// cgroup v2 has a CPU controller.
    #[serde(default)]
    pub throttled_ns: Option<u64>,
    /// What the thread was doing: `running on CPU`, `sleeping`, `in uninterruptible IO`, or
    /// `unknown` without /proc.
    pub state: String,
    /// The syscall it was in (`read`, `futex`, `clock_nanosleep`), when known.
    pub syscall: Option<String>,
    /// What the syscall waits on: a file path, a socket's addresses, a lock, a sleep.
    pub blocked_on: Option<String>,
    /// `file_io`, `sleep`, `lock`, `channel`, `cpu`, `network`, `block_on`, `process`,
    /// `memory_map`, `descheduled` or `unknown` (see the
    /// [crate documentation](crate#stall-causes)).
    pub cause: String,
    /// `file:line` of the innermost frame in the application's code, when known, relative to
    /// the workspace like spawn sites (`src/cmd/get.rs:73`); a dependency's file starts at the
    /// crate (`ureq-2.12.1/src/unit.rs:120`).
    pub call_site: Option<String>,
    /// The same frame with its file's absolute path on the build machine, as the debug info
    /// records it.
    #[serde(default)]
    pub call_site_path: Option<String>,
    /// The innermost function of the application's code, crate-qualified
    /// (`mini_redis::cmd::get::Get::apply`): also known when the build has no line tables.
    #[serde(default)]
    pub call_function: Option<String>,
    /// Why `call_site` is unknown: `no_stack` (no stack was captured), `no_line_tables` (the
    /// build has no line tables: `call_function` names the function), `inlined` (without line
    /// tables, the code was inlined into tokio's poll), `not_in_application` (no frame of the
    /// application's code on the stack), `would_interrupt` (the thread was in a call the
    /// capture signal would have interrupted, such as a socket read with a timeout, so it was
    /// not signalled; `message` names the call). Absent when `call_site` is known.
    #[serde(default)]
    pub call_site_missing: Option<String>,
    /// The blocking API the application called there (`std::fs::read_to_string`).
    pub blocking_call: Option<String>,
    /// The dependency's function the application called into on the way to the blocking
    /// call, when it went through one (`ureq::request::Request::call`).
    #[serde(default)]
    pub dependency_call: Option<String>,
    /// `poll`, or `drop` when the thread was running a `Drop` (the task's future being
    /// dropped, or a value dropped inside the poll).
    #[serde(default = "poll_kind")]
    pub kind: String,
    /// The type whose `Drop` was running, when the stack names it.
    #[serde(default)]
    pub dropping: Option<String>,
    /// The fix to apply.
    pub suggestion: String,
    /// The innermost tracing span entered inside the task when the stall was caught:
    /// its name and, when a fmt layer recorded them, its fields.
    pub span: Option<String>,
    /// The held thread's stack when caught, innermost first, with runtime frames trimmed.
    pub backtrace: Vec<Frame>,
    /// How long the capture took (signal sent to frames stored), when one was taken.
    pub capture_ns: Option<u64>,
    /// Later looks at the same stall, at 2x, 4x, 8x ... the threshold.
    pub samples: Vec<StallSample>,
    /// The tasks that waited while the stall held its worker and the delay it added them,
    /// when the held thread runs a tokio runtime whose queues pollwatch could read.
    #[serde(default)]
    pub harm: Option<Harm>,
    /// The one-line warning, as emitted.
    pub message: String,
}

/// How much a stall delayed other work: the tasks that were ready to run while it held its
/// worker, read from the runtime's run queues at each of the watchdog's looks (every tick
/// while it follows the stall), and the scheduling delay that adds up to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harm {
    /// Looks at the queues while the stall held its worker.
    pub looks: u32,
    /// The runtime's worker threads, which share its global queue.
    pub workers: u32,
    /// The most tasks waiting in the runtime's global (injection) queue at a look.
    pub global_queue_max: u64,
    /// The most tasks waiting in the held worker's own run queue at a look: tasks it woke or
    /// spawned, which no other worker runs unless it steals them. `None` where tokio does not
    /// expose it (builds without `--cfg tokio_unstable`, threads that are no worker).
    pub local_queue_max: Option<u64>,
    /// The estimated scheduling delay the stall added, in task-nanoseconds: at each look, the
    /// held worker's own queue plus its share of the global queue (its depth divided by the
    /// workers) ready tasks, each delayed for the time since the previous look (the first
    /// look: since the stall began; the last look's count also stands for the rest of the
    /// stall). 12 tasks held up for 50 ms are 600 task-ms.
    pub delay_task_ns: u64,
    /// Whether the held thread was running a `LocalSet` (every worker of actix-web does):
    /// the tasks waiting in its queue are not counted, so the harm is unknown and
    /// `delay_task_ns` only a lower bound.
    #[serde(default)]
    pub local_set: bool,
}

impl Harm {
    /// The most tasks seen waiting behind the stall: the global queue's most and the worker's
    /// own queue's most (taken at their own looks, so at most this many at once).
    pub fn tasks_waiting(&self) -> u64 {
        self.global_queue_max
            .saturating_add(self.local_queue_max.unwrap_or(0))
    }
}

fn poll_kind() -> String {
    "poll".to_owned()
}

/// How a stall's blocking call site is grouped and shown: its `file:line`; without one, its
/// function with ` (line unknown)`; without either, `unknown`.
pub fn call_site_label(call_site: Option<&str>, call_function: Option<&str>) -> String {
    match (call_site, call_function) {
        (Some(at), _) => at.to_owned(),
        (None, Some(function)) => format!("{function} (line unknown)"),
        (None, None) => "unknown".to_owned(),
    }
}

impl Stall {
    /// This stall's call site as [`call_site_label`] shows it.
    pub fn call_site_label(&self) -> String {
        call_site_label(self.call_site.as_deref(), self.call_function.as_deref())
    }
}

/// One more look at a running stall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallSample {
    /// How long the poll had been running.
    pub at_ns: u64,
    /// The thread's state, as in [`Stall::state`].
    pub state: String,
    /// The syscall, as in [`Stall::syscall`].
    pub syscall: Option<String>,
    /// The call site, as in [`Stall::call_site`].
    pub call_site: Option<String>,
    /// CPU time the thread used from the stall's detection to this look, when known.
    pub cpu_ns: Option<u64>,
}

/// One symbolized stack frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The demangled function name, or the address in hex.
    pub function: String,
    /// The source file, when debug info has it.
    pub file: Option<String>,
    /// The line, when debug info has it.
    pub line: Option<u32>,
    /// The module the frame's code is in and its address there: what symbolizing the frame
    /// later needs, with the module's debug info (`pollwatch symbolize`), when the build that
    /// captured it had no line tables or no symbols. Absent where the platform cannot say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<FrameModule>,
}

/// Where a frame's code is in its module (the executable or a shared library).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameModule {
    /// The module's file, as it was loaded.
    pub path: String,
    /// Its GNU build-id in lower-case hex: which build's debug info fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The address as the module's file numbers it, the one to look up (a return address
    /// less one), written in hex (`"0x1a2b3c"`): `addr2line -e DEBUG_FILE -i ADDRESS` takes it
    /// as is.
    #[serde(with = "hex_address")]
    pub address: u64,
}

/// An address as JSON writes it: a hex string.
mod hex_address {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(address: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{address:#x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text.strip_prefix("0x").ok_or_else(|| {
            serde::de::Error::custom(format!("address {text:?} is not hex starting with 0x"))
        })?;
        u64::from_str_radix(digits, 16).map_err(|e| {
            serde::de::Error::custom(format!("address {text:?} is not hex starting with 0x: {e}"))
        })
    }
}

/// Poll-time percentiles of one site, in nanoseconds. All zero when there are no polls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
}

/// One poll that held its thread for longer than the threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowPoll {
    /// tokio's task id (`tokio::task::Id`).
    pub task_id: u64,
    /// The task's name, empty when unnamed.
    pub task_name: String,
    /// The site's label, as in [`SiteReport::label`].
    pub site: String,
    /// The name of the thread that ran the poll.
    pub thread: String,
    /// How long the poll held the thread, excluding polls of other tasks nested inside it.
    pub duration_ns: u64,
    /// `poll`, or `drop` when it was the future being dropped.
    pub kind: String,
    /// When the poll ended, in nanoseconds since the layer started.
    pub ended_at_ns: u64,
}

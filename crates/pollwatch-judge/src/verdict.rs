//! What is said of a stall: the fix that fits its cause (and whether it ran in a `Drop`), where
//! its blocking call is, and the one-line message of its events and reports.

use pollwatch_report::units::format_duration_ns;

use crate::classify::{self, Cause};
use crate::frames::Missing;
use crate::look::Look;

/// Whether a timed enter/exit was a poll of the future or its drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollKind {
    /// A poll.
    Poll,
    /// The future being dropped (`tracing::Instrumented` enters the span once more to drop
    /// it), or a `Drop` seen running in the stack.
    Drop,
}

impl PollKind {
    /// The name used in reports and events.
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Poll => "poll",
            PollKind::Drop => "drop",
        }
    }
}

/// What the stalled thread did while watched: ran, or waited for a CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Time on a CPU.
    pub run_ns: u64,
    /// Time runnable, waiting on a run queue for a CPU.
    pub wait_ns: u64,
    /// Time the process's cgroup was throttled by its CPU quota, when known.
    pub throttled_ns: Option<u64>,
    /// How long the poll ran before it was first watched, when known.
    pub unseen_ns: Option<u64>,
}

/// A stall's judgement: its look, its cause, a poll or a drop, and its scheduling.
#[derive(Clone, Copy, Debug)]
pub struct Verdict<'a> {
    /// The look whose stack names the call (the first with a stack).
    pub look: &'a Look,
    /// The cause, after the CPU-shortage rule.
    pub cause: Cause,
    /// A poll, or a `Drop` running.
    pub kind: PollKind,
    /// What the thread did while watched, when known.
    pub schedule: Option<Schedule>,
}

/// The stalled poll, for the message: which task held which thread, for how long.
#[derive(Clone, Copy, Debug)]
pub struct Held<'a> {
    /// tokio's task id; 0 for a worker's busy period of no known task.
    pub task_id: u64,
    /// The task's name, empty when unnamed.
    pub task_name: &'a str,
    /// Its spawn site's location.
    pub site: &'a str,
    /// The thread's name.
    pub thread: &'a str,
    /// The thread's index among its runtime's workers, if it polled as one.
    pub worker_index: Option<usize>,
    /// So far while it runs; its total once ended.
    pub duration_ns: u64,
    /// Whether it has ended.
    pub ended: bool,
}

impl Verdict<'_> {
    /// The fix to apply: for a `Drop`, one that can be written in a `Drop`.
    pub fn suggestion(&self) -> String {
        if self.cause == Cause::Descheduled {
            // Not the code's doing, in a poll or in a `Drop`.
            return classify::suggestion(self.cause, None);
        }
        if let Some(io) = &self.look.nonblocking_io {
            return classify::nonblocking_io_suggestion(io);
        }
        if let (Cause::Lock, None, Some(dependency)) =
            (self.cause, &self.look.api, &self.look.dependency)
        {
            // A lock inside a dependency (a C library's mutex): the application cannot swap
            // it for tokio's, but can take the call off the runtime.
            return classify::dependency_lock_suggestion(dependency);
        }
        match self.kind {
            PollKind::Drop => classify::drop_suggestion(self.dropped_type()),
            PollKind::Poll => classify::suggestion(self.cause, self.look.api.as_deref()),
        }
    }

    /// The type whose `Drop` was running, when the stack names one.
    pub fn dropped_type(&self) -> Option<&str> {
        self.look.dropping.as_ref()?.type_name.as_deref()
    }

    /// Where the blocking call is, for messages: ` at file:line`, ` in function (line
    /// unknown: ...)`, or why neither is known.
    pub fn place(&self) -> String {
        let look = self.look;
        if let Some(at) = &look.call_site {
            return format!(" at {at}");
        }
        match (look.missing, &look.function) {
            (Some(Missing::NoLineTables), Some(function)) => {
                format!(" in {function} (line unknown: the build has no line tables)")
            }
            (Some(Missing::Inlined), _) => {
                " (call site inlined into tokio's poll; build with line tables)".to_owned()
            }
            (Some(Missing::NoSymbols), _) => {
                " (no symbols: a stripped build; `pollwatch symbolize` finds the line in the \
                 report with the build's debug info)"
                    .to_owned()
            }
            (Some(Missing::NotInApplication), _) => {
                " (no frame of the application's code on the stack)".to_owned()
            }
            (Some(Missing::WouldInterrupt(call)), _) => format!(" (no stack: {call})"),
            _ => String::new(),
        }
    }

    /// The one-line message:
    /// `task "handler" (src/main.rs:42:5) held worker "tokio-rt-worker" for 312ms: blocked in
    /// read() on /data/users.json at src/store.rs:17 (std::fs::read_to_string). Use ...`
    pub fn message(&self, held: &Held<'_>) -> String {
        let task = if held.task_name.is_empty() {
            format!("task {}", held.task_id)
        } else {
            format!("task {:?}", held.task_name)
        };
        let duration = format_duration_ns(held.duration_ns);
        // A stall of no known task (stable mode's worker hooks) is told apart by its worker.
        let worker = match held.worker_index {
            Some(index) if held.task_id == 0 => format!("worker {index} ({:?})", held.thread),
            _ => format!("worker {:?}", held.thread),
        };
        let said = if held.ended {
            format!("held {worker} for {duration}")
        } else {
            format!("has held {worker} for {duration} so far")
        };
        let said = match (self.kind, self.dropped_type()) {
            (PollKind::Poll, _) => said,
            (PollKind::Drop, Some(dropping)) => format!("{said} while dropping {dropping}"),
            (PollKind::Drop, None) => format!("{said} while dropping its future"),
        };
        let look = self.look;
        let what = match (&look.syscall, &look.blocked_on) {
            _ if self.cause == Cause::Descheduled => self.descheduled(),
            (Some(syscall), _) if self.cause == Cause::Sleep => format!("sleeping in {syscall}()"),
            (Some(syscall), _) if matches!(self.cause, Cause::Lock | Cause::BlockOn) => {
                format!("waiting on a lock or condition variable in {syscall}()")
            }
            (Some(syscall), Some(target)) => format!("blocked in {syscall}() on {target}"),
            (Some(syscall), None) => format!("blocked in {syscall}()"),
            (None, _) => match look.state {
                None => "blocked".to_owned(),
                Some(state) => state.to_string(),
            },
        };
        let at = self.place();
        let api = match (&look.api, &look.dependency) {
            (Some(api), Some(via)) => format!(" ({via} -> {api})"),
            (Some(api), None) => format!(" ({api})"),
            (None, Some(via)) => format!(" ({via})"),
            (None, None) => String::new(),
        };
        format!(
            "{task} ({}) {said}: {what}{at}{api}. {}",
            held.site,
            self.suggestion()
        )
    }

    /// What a descheduled stall's thread did, for its message.
    fn descheduled(&self) -> String {
        let mut text = "descheduled: the host/container is short of CPU; not this code".to_owned();
        if let Some(s) = self.schedule {
            text.push_str(&format!(
                " (while watched it ran {} and waited {} for a CPU",
                format_duration_ns(s.run_ns),
                format_duration_ns(s.wait_ns)
            ));
            if let Some(unseen) = s.unseen_ns.filter(|&u| u > s.run_ns + s.wait_ns) {
                text.push_str(&format!(
                    "; its first {} went unwatched, pollwatch's own watchdog waiting for a CPU",
                    format_duration_ns(unseen)
                ));
            }
            if let Some(throttled) = s.throttled_ns.filter(|&t| t > 0) {
                text.push_str(&format!(
                    "; the cgroup's CPU quota throttled it {}",
                    format_duration_ns(throttled)
                ));
            }
            text.push(')');
        }
        text
    }
}

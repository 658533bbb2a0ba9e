//! A stall as pollwatch keeps it: typed (its site an id, its cause an enum, its looks as
//! observed), and rendered as a report entry, with its one-line message, only when a report or
//! an event is written.

use pollwatch_capture::RunState;
use pollwatch_report::{Harm, Stall, StallSample};

use pollwatch_judge::classify::Cause;
use pollwatch_judge::frames::Missing;
use pollwatch_judge::look::Look;
use pollwatch_judge::verdict::{Held, Schedule, Verdict};

use super::sched::{self, SchedReading, Scheduled};
use super::RawSample;
use crate::poll::{PollKey, PollKind};
use crate::sites::{SiteId, Sites};

/// One stall.
#[derive(Clone, Debug)]
pub(crate) struct StallRecord {
    pub(crate) key: PollKey,
    pub(crate) task_id: u64,
    pub(crate) site: SiteId,
    pub(crate) thread: String,
    /// The thread's index among its runtime's workers, if it polled as one.
    pub(crate) worker_index: Option<usize>,
    pub(crate) tid: i32,
    /// When the poll started, from pollwatch's start.
    pub(crate) started_at_ns: u64,
    pub(crate) detected_after_ns: u64,
    pub(crate) detection_lag_ns: u64,
    /// So far while it runs; its total once ended.
    pub(crate) duration_ns: u64,
    pub(crate) ended: bool,
    /// CPU time the thread used from detection on.
    pub(crate) cpu_ns: Option<u64>,
    /// The first look (state, syscall, target), with the first stack any look captured.
    pub(crate) look: Look,
    pub(crate) cause: Cause,
    /// The cause the last look showed, before the thread's scheduling was judged.
    pub(crate) looked: Cause,
    /// A poll, or a `Drop` running (seen in the stack, or the poll path's record of the
    /// task's future being dropped).
    pub(crate) kind: PollKind,
    /// The innermost span entered inside the task, as `name{fields}`.
    pub(crate) span: Option<String>,
    /// Later looks while it ran.
    pub(crate) samples: Vec<SampleRecord>,
    /// The thread's scheduler accounting at the start of the span judged: the poll's first
    /// reading, taken before detection when the watchdog saw it running earlier.
    pub(crate) sched_first: Option<SchedReading>,
    /// What the thread did from the first reading to the last: ran, or waited for a CPU.
    pub(crate) scheduled: Option<Scheduled>,
    /// The tasks that waited behind it and the delay it added them: so far while it runs,
    /// final once ended.
    pub(crate) harm: Option<Harm>,
}

/// A later look at a running stall.
#[derive(Clone, Debug)]
pub(crate) struct SampleRecord {
    pub(crate) at_ns: u64,
    pub(crate) state: Option<RunState>,
    pub(crate) syscall: Option<String>,
    pub(crate) call_site: Option<String>,
    pub(crate) cpu_ns: Option<u64>,
}

impl StallRecord {
    /// The stall as its first look found it.
    pub(crate) fn detected(raw: &RawSample, look: Look) -> Self {
        let mut stall = Self {
            key: raw.key,
            task_id: raw.task_id,
            site: raw.site,
            thread: raw.thread.clone(),
            worker_index: raw.worker_index,
            tid: raw.tid,
            started_at_ns: raw.started_at_ns,
            detected_after_ns: raw.running_ns,
            detection_lag_ns: raw.lag_ns,
            duration_ns: raw.running_ns,
            ended: false,
            cpu_ns: None,
            cause: look.cause(),
            looked: look.cause(),
            kind: if look.dropping.is_some() {
                PollKind::Drop
            } else {
                PollKind::Poll
            },
            look,
            span: raw.inner_span.clone(),
            samples: Vec::new(),
            sched_first: raw.sched_first.or(raw.sched),
            scheduled: None,
            harm: raw.harm.clone(),
        };
        // With a reading from before detection, the span so far is judged already (and is
        // all there is if the thread is gone before the stall's end is read).
        if raw.sched_first.is_some() {
            stall.scheduled(raw.sched.as_ref(), None);
        }
        stall
    }

    /// Whether the stall's thread runs a `LocalSet` (its stack shows one), whose waiting tasks
    /// pollwatch cannot count: its harm is unknown.
    pub(crate) fn runs_a_local_set(&self) -> bool {
        self.look.in_local_set
    }

    /// Whether the stall, at its detection, looks like CPU work or a lock wait, which the
    /// thread's scheduling may yet show to be the host's CPU shortage: a thread caught just
    /// past the threshold has been watched for too short a span to tell. Its warning waits
    /// for the next look (at twice the threshold) or its end, whichever comes first, and
    /// judges the longer span then, so that no warning blames code the final record calls
    /// `descheduled`. Without scheduler figures (other platforms) nothing would come of the
    /// wait.
    pub(crate) fn awaits_schedule(&self) -> bool {
        matches!(self.looked, Cause::Cpu | Cause::Lock) && self.sched_first.is_some()
    }

    /// A later reading of the thread's scheduler accounting (at a later look, or at the
    /// end): the figures since the first reading, and the cause they make of a stall that looks like
    /// CPU work (see [`sched`]). Returns the cause before, when this changed it.
    pub(crate) fn scheduled(
        &mut self,
        reading: Option<&SchedReading>,
        ended_after_ns: Option<u64>,
    ) -> Option<Cause> {
        let first = self.sched_first.as_ref()?;
        let reading = reading?;
        let scheduled = Scheduled::between(first, reading);
        // How much of the span the poll lasted: to its end once it ended after
        // `ended_after_ns`, and never more than the poll itself (a nested poll's first reading
        // can be its outer poll's, from before it began).
        let held =
            ended_after_ns.unwrap_or_else(|| reading.at_ns.saturating_sub(self.started_at_ns));
        let poll_ns = Some(
            (self.started_at_ns + held)
                .saturating_sub(first.at_ns)
                .min(held),
        );
        // What it shows of the thread is the poll's part of the span.
        self.scheduled = Some(scheduled.within(poll_ns));
        // What the last look showed, whatever an earlier reading made of it.
        let looked = self.looked;
        let threshold_ns = self.detected_after_ns.saturating_sub(self.detection_lag_ns);
        // Half a threshold of run time is allowed, the other half being the margin for the
        // start of the poll the readings missed. A poll first read later than that may have
        // run longer unseen; it is still judged on what was seen: a warning that blames code
        // which did nothing wrong costs more than a missed one.
        let cause = sched::cause(
            looked,
            Some(&scheduled),
            threshold_ns,
            poll_ns,
            self.unseen_ns().unwrap_or(0),
        );
        (cause != self.cause).then(|| std::mem::replace(&mut self.cause, cause))
    }

    /// Adds a later look; a stall whose first look had no stack (its capture failed, or was
    /// not tried) takes the call site, API, cause and fix of this one's, or, when this one
    /// has none either because the thread was in a call the signal would interrupt, that
    /// reason.
    pub(crate) fn resampled(&mut self, raw: &RawSample, look: Look, cpu_ns: Option<u64>) {
        self.samples.push(SampleRecord {
            at_ns: raw.running_ns,
            state: look.state,
            syscall: look.syscall.clone(),
            call_site: look.call_site.clone(),
            cpu_ns,
        });
        self.duration_ns = self.duration_ns.max(raw.running_ns);
        self.cpu_ns = cpu_ns.or(self.cpu_ns);
        if raw.harm.is_some() {
            self.harm.clone_from(&raw.harm);
        }
        // Any look's stack tells whether the thread runs a `LocalSet`.
        self.look.in_local_set |= look.in_local_set;
        if !self.look.has_stack() && look.has_stack() {
            self.cause = look.cause();
            self.looked = self.cause;
            if look.dropping.is_some() {
                self.kind = PollKind::Drop;
            }
            self.look.backtrace = look.backtrace;
            self.look.call_site = look.call_site;
            self.look.call_site_path = look.call_site_path;
            self.look.function = look.function;
            self.look.missing = look.missing;
            self.look.api = look.api;
            self.look.dependency = look.dependency;
            self.look.nonblocking_io = look.nonblocking_io;
            self.look.dropping = look.dropping;
            self.look.capture_ns = look.capture_ns;
        } else if !self.look.has_stack() && matches!(look.missing, Some(Missing::WouldInterrupt(_)))
        {
            self.look.missing = look.missing;
        }
    }

    /// How long the poll ran before its first scheduler reading: the part the figures miss.
    fn unseen_ns(&self) -> Option<u64> {
        let first = self.sched_first.as_ref()?;
        Some(first.at_ns.saturating_sub(self.started_at_ns))
    }

    /// The judgement: the look, cause, kind and scheduling that the fix and message come from.
    pub(crate) fn verdict(&self) -> Verdict<'_> {
        Verdict {
            look: &self.look,
            cause: self.cause,
            kind: self.kind,
            schedule: self.scheduled.map(|s| Schedule {
                run_ns: s.run_ns,
                wait_ns: s.wait_ns,
                throttled_ns: s.throttled_ns,
                unseen_ns: self.unseen_ns(),
            }),
        }
    }

    /// The fix to apply: for a `Drop`, one that can be written in a `Drop`.
    pub(crate) fn suggestion(&self) -> String {
        self.verdict().suggestion()
    }

    /// The type whose `Drop` was running, when the stack names one.
    fn dropped_type(&self) -> Option<&str> {
        self.look.dropping.as_ref()?.type_name.as_deref()
    }

    /// The report entry, with the site's label and the one-line message.
    pub(crate) fn to_report(&self, sites: &Sites) -> Stall {
        let site = sites.get(self.site);
        let look = &self.look;
        Stall {
            task_id: self.task_id,
            task_name: site.name.clone(),
            site: site.label.clone(),
            thread: self.thread.clone(),
            worker_index: self.worker_index.map(|w| w as u64),
            tid: self.tid,
            started_at_ns: self.started_at_ns,
            detected_after_ns: self.detected_after_ns,
            detection_lag_ns: self.detection_lag_ns,
            duration_ns: self.duration_ns,
            ended: self.ended,
            cpu_ns: self.cpu_ns,
            run_ns: self.scheduled.map(|s| s.run_ns),
            runqueue_wait_ns: self.scheduled.map(|s| s.wait_ns),
            throttled_ns: self.scheduled.and_then(|s| s.throttled_ns),
            state: look.state_text(),
            syscall: look.syscall.clone(),
            blocked_on: look.blocked_on.clone(),
            cause: self.cause.as_str().to_owned(),
            call_site: look.call_site.clone(),
            call_site_path: look.call_site_path.clone(),
            call_function: look.function.clone(),
            call_site_missing: look
                .call_site
                .is_none()
                .then(|| look.missing.map(|m| m.as_str().to_owned()))
                .flatten(),
            blocking_call: look.api.clone(),
            dependency_call: look.dependency.clone(),
            kind: self.kind.as_str().to_owned(),
            dropping: self.dropped_type().map(str::to_owned),
            suggestion: self.suggestion(),
            span: self.span.clone(),
            backtrace: look.backtrace.clone(),
            capture_ns: look.capture_ns,
            samples: self.samples.iter().map(SampleRecord::to_report).collect(),
            harm: self.harm.clone().map(|mut harm| {
                harm.local_set |= self.runs_a_local_set();
                harm
            }),
            message: self.message(&site.name, &site.location),
        }
    }

    /// The one-line message (see [`Verdict::message`]).
    pub(crate) fn message(&self, task_name: &str, site: &str) -> String {
        self.verdict().message(&Held {
            task_id: self.task_id,
            task_name,
            site,
            thread: &self.thread,
            worker_index: self.worker_index,
            duration_ns: self.duration_ns,
            ended: self.ended,
        })
    }
}

impl SampleRecord {
    fn to_report(&self) -> StallSample {
        StallSample {
            at_ns: self.at_ns,
            state: pollwatch_judge::look::state_text(self.state),
            syscall: self.syscall.clone(),
            call_site: self.call_site.clone(),
            cpu_ns: self.cpu_ns,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::describe::{
        self,
        tests::{receiving as receiving_raw, RECEIVING},
    };
    use super::*;
    use pollwatch_judge::classify::{Observed, Run, TargetKind};
    use pollwatch_judge::frames::Dropping;

    /// A finished 312 ms stall of a named task reading a file.
    pub(crate) fn record() -> StallRecord {
        StallRecord {
            key: PollKey {
                slot: 0,
                seq: 1,
                start: 7,
            },
            task_id: 9,
            site: SiteId::from_index(0),
            thread: "tokio-rt-worker".into(),
            worker_index: Some(1),
            tid: 1,
            started_at_ns: 0,
            detected_after_ns: 12_000_000,
            detection_lag_ns: 2_000_000,
            duration_ns: 312_000_000,
            ended: true,
            cpu_ns: None,
            look: Look {
                observed: Observed {
                    run: Run::Waiting,
                    syscall: Some("read".into()),
                    target: Some(TargetKind::File),
                },
                state: Some(RunState::Sleeping),
                syscall: Some("read".into()),
                blocked_on: Some("/data/users.json".into()),
                backtrace: Vec::new(),
                call_site: Some("src/store.rs:17".into()),
                call_site_path: Some("/home/ci/app/src/store.rs:17".into()),
                function: Some("app::store::load".into()),
                missing: None,
                api: Some("std::fs::read_to_string".into()),
                dependency: None,
                nonblocking_io: None,
                dropping: None,
                capture_ns: None,
                in_place: false,
                on_worker: false,
                in_local_set: false,
            },
            cause: Cause::FileIo,
            looked: Cause::FileIo,
            kind: PollKind::Poll,
            span: None,
            samples: Vec::new(),
            sched_first: None,
            scheduled: None,
            harm: None,
        }
    }

    #[test]
    fn a_lock_inside_a_dependency_gets_the_fix_the_application_can_apply() {
        // SQLite's own mutex, reached through rusqlite: no std lock the application could
        // swap for tokio's.
        let mut s = record();
        s.cause = Cause::Lock;
        s.look.api = None;
        s.look.dependency = Some("rusqlite::Connection::execute".into());
        let fix = s.suggestion();
        assert!(
            fix.starts_with(
                "Call rusqlite::Connection::execute inside tokio::task::spawn_blocking"
            ),
            "{fix}"
        );
        assert!(!fix.contains("tokio::sync::Mutex"), "{fix}");
        // The application's own std lock keeps its fix.
        s.look.api = Some("std::sync::Mutex::lock".into());
        assert!(s.suggestion().contains("tokio::sync::Mutex"));
    }

    #[test]
    fn tokio_s_non_blocking_io_gets_no_async_replacement() {
        let mut s = record();
        s.cause = Cause::Cpu;
        s.look.api = None;
        s.look.nonblocking_io = Some("mio::net::tcp::stream::TcpStream::write".into());
        let fix = s.suggestion();
        assert!(fix.starts_with("No blocking call"), "{fix}");
        assert!(
            !fix.contains("spawn_blocking") && !fix.contains("Use tokio"),
            "{fix}"
        );
    }

    #[test]
    fn a_stall_of_no_known_task_names_its_worker() {
        let mut s = record();
        s.task_id = 0;
        assert!(
            s.message("worker (task unknown)", "src/main.rs:9:5")
                .contains("held worker 1 (\"tokio-rt-worker\") for 312ms"),
            "{}",
            s.message("worker (task unknown)", "src/main.rs:9:5")
        );
        assert_eq!(
            s.to_report(&crate::sites::Sites::new(8)).worker_index,
            Some(1)
        );
    }

    #[test]
    fn the_message_reads_at_a_glance() {
        assert_eq!(
            record().message("handler", "src/main.rs:42:5"),
            "task \"handler\" (src/main.rs:42:5) held worker \"tokio-rt-worker\" for 312ms: \
             blocked in read() on /data/users.json at src/store.rs:17 (std::fs::read_to_string). \
             Use tokio::fs::read_to_string or tokio::task::spawn_blocking."
        );
    }

    #[test]
    fn a_running_stall_says_so_far_and_cpu_work_says_running() {
        let mut s = record();
        s.ended = false;
        s.look.syscall = None;
        s.look.blocked_on = None;
        s.look.state = Some(RunState::Running);
        s.cause = Cause::Cpu;
        s.look.api = None;
        let text = s.message("handler", "src/main.rs:42:5");
        assert!(
            text.contains("so far: running on CPU at src/store.rs:17."),
            "{text}"
        );
    }

    /// A scheduler reading at `at_ms`, the thread having run `run_ms` and waited `wait_ms`.
    fn reading(at_ms: u64, run_ms: u64, wait_ms: u64) -> SchedReading {
        SchedReading {
            at_ns: at_ms * 1_000_000,
            times: pollwatch_capture::SchedTimes {
                run_ns: run_ms * 1_000_000,
                wait_ns: wait_ms * 1_000_000,
                timeslices: 0,
            },
            throttling: None,
        }
    }

    #[test]
    fn a_nested_poll_read_from_before_it_began_is_judged_on_its_own_part() {
        let mut s = record();
        s.look.syscall = None;
        s.look.blocked_on = None;
        s.look.state = Some(RunState::Running);
        s.look.api = None;
        s.cause = Cause::Cpu;
        s.looked = Cause::Cpu;
        // Its outer poll was first read at 0 ms; this poll began at 20 ms and held its thread
        // 12 ms; by the last reading, at 33 ms, the thread had run 9 ms and waited 24 ms.
        s.started_at_ns = 20_000_000;
        s.detected_after_ns = 10_000_000;
        s.detection_lag_ns = 0;
        s.sched_first = Some(reading(0, 0, 0));
        s.scheduled(Some(&reading(33, 9, 24)), Some(12_000_000));
        let shown = s.scheduled.unwrap();
        assert!(
            shown.run_ns + shown.wait_ns <= 12_000_000,
            "the figures shown are the poll's 12 ms, not the span's 33: {shown:?}"
        );
        // Its part ran about 3.3 ms and waited about 8.7 ms: the host's shortage, not CPU work.
        assert_eq!(s.cause, Cause::Descheduled);
    }

    #[test]
    fn cpu_work_the_thread_mostly_waited_to_do_is_descheduled_and_says_so() {
        let mut s = record();
        s.look.syscall = None;
        s.look.blocked_on = None;
        s.look.state = Some(RunState::Running);
        s.look.api = None;
        s.cause = Cause::Cpu;
        s.looked = Cause::Cpu;
        // First read 1 ms into the poll.
        s.started_at_ns = 4_000_000;
        s.sched_first = Some(reading(5, 100, 50));
        // At a later look it had run most of the time: still CPU work.
        assert_eq!(s.scheduled(Some(&reading(10, 104, 51)), None), None);
        assert_eq!(s.cause, Cause::Cpu);
        // By its end it had waited 15 of 20 ms for a CPU.
        assert_eq!(
            s.scheduled(Some(&reading(25, 104, 65)), None),
            Some(Cause::Cpu)
        );
        assert_eq!(s.cause, Cause::Descheduled);
        let text = s.message("handler", "src/main.rs:42:5");
        assert!(
            text.contains(
                "held worker \"tokio-rt-worker\" for 312ms: descheduled: the host/container \
                 is short of CPU; not this code (while watched it ran 4.00ms and waited \
                 15.0ms for a CPU) at src/store.rs:17. No code fix"
            ),
            "{text}"
        );
        assert!(!text.contains("spawn_blocking"), "{text}");
        // Caught in a `Drop`: still no code fix.
        s.kind = PollKind::Drop;
        assert!(
            s.suggestion().starts_with("No code fix"),
            "{}",
            s.suggestion()
        );
        s.kind = PollKind::Poll;
        let report = s.to_report(&Sites::new(4));
        assert_eq!(report.cause, "descheduled");
        assert_eq!(
            (report.run_ns, report.runqueue_wait_ns),
            (Some(4_000_000), Some(15_000_000))
        );
        // A stall whose look found a file read keeps its cause, however long it waited.
        let mut read = record();
        read.started_at_ns = 4_000_000;
        read.sched_first = Some(reading(5, 100, 50));
        assert_eq!(read.scheduled(Some(&reading(25, 101, 69)), None), None);
        assert_eq!(read.cause, Cause::FileIo);
    }

    #[test]
    fn without_line_tables_the_message_names_the_function_and_why_not_the_line() {
        let mut s = record();
        s.look.call_site = None;
        s.look.missing = Some(Missing::NoLineTables);
        let text = s.message("handler", "src/main.rs:42:5");
        assert!(
            text.contains(
                "in app::store::load (line unknown: the build has no line tables) \
                 (std::fs::read_to_string)"
            ),
            "{text}"
        );
        s.look.function = None;
        s.look.missing = Some(Missing::Inlined);
        let text = s.message("handler", "src/main.rs:42:5");
        assert!(
            text.contains("inlined into tokio's poll; build with line tables"),
            "{text}"
        );
    }

    /// The record of a stall whose first look found the thread in `recvfrom` on a TCP
    /// socket, without a stack: `missing` says why.
    fn receiving(missing: Missing) -> StallRecord {
        let mut s = record();
        s.look.observed.syscall = Some("recvfrom".into());
        s.look.observed.target = Some(TargetKind::Socket);
        s.look.syscall = Some("recvfrom".into());
        s.look.blocked_on = Some("TCP 127.0.0.1:50000 -> 127.0.0.1:6000".into());
        s.look.call_site = None;
        s.look.call_site_path = None;
        s.look.function = None;
        s.look.api = None;
        s.look.missing = Some(missing);
        s.cause = Cause::Network;
        s
    }

    #[test]
    fn a_stall_whose_thread_was_not_signalled_says_why_it_has_no_stack() {
        let s = receiving(Missing::WouldInterrupt(RECEIVING));
        let text = s.message("client", "src/main.rs:42:5");
        assert!(
            text.contains(
                "blocked in recvfrom() on TCP 127.0.0.1:50000 -> 127.0.0.1:6000 (no stack: the \
                 thread was in recvfrom() with a receive timeout, which a signal would \
                 interrupt). Use an async client"
            ),
            "{text}"
        );
        let report = s.to_report(&Sites::new(4));
        assert_eq!(report.call_site, None);
        assert_eq!(report.call_site_missing.as_deref(), Some("would_interrupt"));
        assert_eq!(report.cause, "network");
    }

    #[test]
    fn a_later_look_brings_the_stack_or_the_reason_there_is_none() {
        use pollwatch_capture::CaptureError;

        let mut roots = pollwatch_judge::location::Roots::default();
        // The first look's capture timed out; the next one found a call a signal would
        // interrupt: that is why there is no stack.
        let mut s = receiving(Missing::NoStack);
        let raw = receiving_raw(
            40_000_000,
            Some(Err(CaptureError::WouldInterrupt(RECEIVING))),
        );
        let later = describe::look(&raw, &mut roots, "src/main.rs");
        s.resampled(&raw, later, None);
        assert_eq!(s.look.missing, Some(Missing::WouldInterrupt(RECEIVING)));
        assert_eq!(s.samples.len(), 1);
        // A look that timed out again says nothing more.
        let raw = receiving_raw(80_000_000, Some(Err(CaptureError::Timeout)));
        let later = describe::look(&raw, &mut roots, "src/main.rs");
        s.resampled(&raw, later, None);
        assert_eq!(s.look.missing, Some(Missing::WouldInterrupt(RECEIVING)));
        // A look that captured a stack (the thread had moved on to a call that is restarted)
        // gives the call site.
        let raw = receiving_raw(160_000_000, None);
        let with_stack = Look {
            backtrace: vec![pollwatch_report::Frame {
                function: "app::client::ask".into(),
                file: Some("/home/ci/app/src/client.rs".into()),
                line: Some(12),
                module: None,
            }],
            call_site: Some("src/client.rs:12".into()),
            function: Some("app::client::ask".into()),
            missing: None,
            ..Look::default()
        };
        s.resampled(&raw, with_stack, None);
        assert_eq!(s.look.call_site.as_deref(), Some("src/client.rs:12"));
        assert_eq!(s.look.missing, None);
    }

    #[test]
    fn a_stall_in_a_drop_says_so_and_gets_a_fix_a_drop_can_use() {
        let mut s = record();
        s.kind = PollKind::Drop;
        s.look.dropping = Some(Dropping {
            type_name: Some("app::FlushOnDrop".into()),
        });
        let text = s.message("handler", "src/main.rs:42:5");
        assert!(
            text.contains("for 312ms while dropping app::FlushOnDrop: blocked in read()"),
            "{text}"
        );
        assert!(!text.contains("tokio::fs::read_to_string"), "{text}");
        assert!(
            text.contains("spawn_blocking") && text.contains("async fn close()"),
            "{text}"
        );
        let report = s.to_report(&Sites::new(4));
        assert_eq!(
            (report.kind.as_str(), report.dropping.as_deref()),
            ("drop", Some("app::FlushOnDrop"))
        );
    }

    #[test]
    fn the_report_entry_names_the_site_and_writes_the_cause() {
        let sites = Sites::new(4);
        let stall = record().to_report(&sites);
        assert_eq!(stall.site, crate::sites::UNKNOWN_LABEL);
        assert_eq!(stall.cause, "file_io");
        assert_eq!(stall.state, "sleeping");
        assert!(
            stall.message.contains("task 9 (<unknown>) held worker"),
            "{}",
            stall.message
        );
    }
}

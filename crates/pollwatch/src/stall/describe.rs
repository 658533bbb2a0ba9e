//! One look at a stuck thread, described: the raw sample's stack symbolized and trimmed to the
//! application's frames, the blocking call site and API, what the thread was doing, and the
//! cause. Runs on the reporter thread (symbolizing can take milliseconds).

use pollwatch_capture::{CaptureError, RunState, Target};
use pollwatch_report::Frame;

use super::classify::{self, Cause, Observed, Run, TargetKind};
use super::frames::{self, Missing};
use super::in_place;
use super::location::{with_line, Roots};
use super::on_worker;
use super::RawSample;

/// What one look at the stuck thread found, beyond the raw sample.
#[derive(Clone, Debug, Default)]
pub(crate) struct Look {
    pub(crate) observed: Observed,
    /// The scheduling state, when the platform could read it.
    pub(crate) state: Option<RunState>,
    pub(crate) syscall: Option<String>,
    pub(crate) blocked_on: Option<String>,
    pub(crate) backtrace: Vec<Frame>,
    /// The innermost application frame, `file:line` relative to the workspace.
    pub(crate) call_site: Option<String>,
    /// The same, with the file's absolute path as the debug info has it.
    pub(crate) call_site_path: Option<String>,
    /// The innermost application function (also without line tables).
    pub(crate) function: Option<String>,
    /// Why there is no call site.
    pub(crate) missing: Option<Missing>,
    /// The blocking API the call site called (`std::fs::read`).
    pub(crate) api: Option<String>,
    /// The dependency's function the call site called into, when it went through one.
    pub(crate) dependency: Option<String>,
    /// tokio's or mio's non-blocking I/O the stack is in (see
    /// [`frames::nonblocking_io`]): nothing there blocks.
    pub(crate) nonblocking_io: Option<String>,
    /// The `Drop` running, when the thread was inside one.
    pub(crate) dropping: Option<frames::Dropping>,
    pub(crate) capture_ns: Option<u64>,
    /// Whether the stack runs inside `tokio::task::block_in_place`: the poll holds no worker.
    pub(crate) in_place: bool,
    /// Whether the stack runs tokio's scheduler (a worker or a `block_on` running tasks);
    /// false without a stack.
    pub(crate) on_worker: bool,
    /// Whether the stack runs a `tokio::task::LocalSet` (its tasks wait in a queue of its
    /// own, which pollwatch cannot read); false without a stack.
    pub(crate) in_local_set: bool,
}

impl Look {
    /// Whether this look shows that a worker-level poll's thread is no longer a worker: its
    /// stack runs no tokio scheduler. Unknown without a stack: then it is judged a worker.
    pub(crate) fn left_the_worker(&self, raw: &RawSample) -> bool {
        raw.worker && self.has_stack() && !self.on_worker
    }
}

impl Look {
    /// The cause this look shows. In tokio's or mio's non-blocking I/O the thread cannot be
    /// waiting on its socket: whatever it shows, it ran (or waited for a CPU), which the
    /// CPU-shortage rule then judges.
    pub(crate) fn cause(&self) -> Cause {
        if self.nonblocking_io.is_some() {
            return Cause::Cpu;
        }
        classify::cause(&self.observed, self.api.as_deref())
    }

    /// Whether this look has a stack.
    pub(crate) fn has_stack(&self) -> bool {
        !self.backtrace.is_empty()
    }

    /// The state as reports and events write it.
    pub(crate) fn state_text(&self) -> String {
        state_text(self.state)
    }
}

/// A scheduling state as reports and events write it: `unknown` where the platform cannot tell.
pub(crate) fn state_text(state: Option<RunState>) -> String {
    state.map_or_else(|| "unknown".to_owned(), |s| s.to_string())
}

/// Symbolizes and classifies one raw sample. `site_file` is the stalled task's spawn file
/// (relative, as tokio gives it): `roots` learns the build root from it.
pub(crate) fn look(raw: &RawSample, roots: &mut Roots, site_file: &str) -> Look {
    let mut look = Look {
        missing: Some(Missing::NoStack),
        ..Look::default()
    };
    if let Some(state) = &raw.state {
        look.state = Some(state.run);
        look.observed.run = match state.run {
            RunState::Running => Run::Running,
            RunState::Sleeping => Run::Waiting,
            RunState::DiskWait => Run::DiskWait,
            _ => Run::Unknown,
        };
        if let Some(syscall) = &state.syscall {
            let name = syscall
                .name
                .map_or_else(|| format!("syscall {}", syscall.number), str::to_owned);
            look.syscall = Some(name.clone());
            look.observed.syscall = Some(name);
            if let Some(target) = &syscall.target {
                look.blocked_on = Some(target.to_string());
                look.observed.target = Some(target_kind(target));
            }
        }
    }
    if let Some(Err(CaptureError::WouldInterrupt(call))) = &raw.capture {
        look.missing = Some(Missing::WouldInterrupt(*call));
    }
    if let Some(Ok(capture)) = &raw.capture {
        look.capture_ns = Some(u64::try_from(capture.took.as_nanos()).unwrap_or(u64::MAX));
        let symbolized: Vec<Frame> = pollwatch_capture::symbolize(&capture.ips)
            .into_iter()
            .map(|f| Frame {
                function: f.function.unwrap_or_else(|| format!("{:#x}", f.ip)),
                file: f.file,
                line: f.line,
            })
            .collect();
        look.in_place = in_place::blocking_in_place(&symbolized);
        look.on_worker = on_worker::runs_a_scheduler(&symbolized);
        look.in_local_set = symbolized.iter().any(frames::is_local_set);
        look.backtrace = frames::trim(&symbolized);
        for frame in &look.backtrace {
            if let Some(file) = &frame.file {
                roots.learn(file, site_file);
            }
        }
        let site = frames::call_site(&look.backtrace);
        if let Some(file) = &site.file {
            look.call_site = Some(with_line(&roots.display(file), site.line));
            look.call_site_path = Some(with_line(file, site.line));
        }
        look.function = site.function;
        look.missing = site.missing;
        look.api = site.api;
        look.dependency = site.dependency;
        look.nonblocking_io = site.nonblocking_io;
        look.dropping = frames::dropping(&look.backtrace);
    }
    look
}

fn target_kind(target: &Target) -> TargetKind {
    match target {
        Target::File { .. } => TargetKind::File,
        Target::Socket { .. } => TargetKind::Socket,
        Target::Pipe { .. } => TargetKind::Pipe,
        Target::Futex { .. } => TargetKind::Futex,
        Target::Sleep => TargetKind::Sleep,
        _ => TargetKind::Other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use pollwatch_capture::{
        CaptureError, NoRestart, RawBacktrace, Syscall, ThreadState, Unrestartable,
    };

    use super::*;
    use crate::poll::PollKey;
    use crate::stall::SampleKind;

    /// A thread waiting for its TCP peer to answer, blocked in `recvfrom`.
    pub(crate) const RECEIVING: Unrestartable = Unrestartable {
        syscall: "recvfrom",
        reason: NoRestart::ReceiveTimeout,
    };

    /// A look, `running_ns` into a stall, at a thread sleeping in `recvfrom` on a TCP socket,
    /// whose capture gave `capture`.
    pub(crate) fn receiving(
        running_ns: u64,
        capture: Option<Result<RawBacktrace, CaptureError>>,
    ) -> RawSample {
        RawSample {
            kind: SampleKind::Resampled,
            key: PollKey {
                slot: 0,
                seq: 1,
                start: 7,
            },
            tid: 1,
            thread: "tokio-rt-worker".into(),
            worker_index: Some(0),
            task_id: 9,
            site: crate::sites::SiteId::from_index(0),
            worker: false,
            started_at_ns: 0,
            running_ns,
            lag_ns: 0,
            state: Some(ThreadState {
                run: RunState::Sleeping,
                wchan: None,
                syscall: Some(Syscall {
                    number: 45,
                    name: Some("recvfrom"),
                    args: [5, 0, 0, 0, 0, 0],
                    target: Some(Target::Socket {
                        fd: 5,
                        protocol: "tcp",
                        local: "127.0.0.1:50000".into(),
                        peer: Some("127.0.0.1:6000".into()),
                    }),
                }),
            }),
            cpu_now_ns: None,
            sched: None,
            sched_first: None,
            capture,
            inner_span: None,
            harm: None,
        }
    }

    #[test]
    fn a_thread_not_signalled_shows_what_it_waits_on_and_why_there_is_no_stack() {
        let raw = receiving(
            30_000_000,
            Some(Err(CaptureError::WouldInterrupt(RECEIVING))),
        );
        let seen = look(&raw, &mut Roots::default(), "src/main.rs");
        assert!(!seen.has_stack());
        assert_eq!(seen.missing, Some(Missing::WouldInterrupt(RECEIVING)));
        assert_eq!(seen.syscall.as_deref(), Some("recvfrom"));
        assert_eq!(
            seen.blocked_on.as_deref(),
            Some("TCP 127.0.0.1:50000 -> 127.0.0.1:6000")
        );
        assert_eq!(seen.cause(), Cause::Network);
        // A capture that failed for another reason has just no stack.
        let raw = receiving(30_000_000, Some(Err(CaptureError::Timeout)));
        let seen = look(&raw, &mut Roots::default(), "src/main.rs");
        assert_eq!(seen.missing, Some(Missing::NoStack));
    }
}

//! One look at a stuck thread, judged: what its state showed (run state, syscall, target) and
//! what its symbolized stack shows (trimmed to the application's frames, the blocking call
//! site and API, a `Drop` running, the scheduler it runs in), and the cause they make.

use pollwatch_capture::{RunState, SymbolFrame, Target, ThreadState};
use pollwatch_report::{Frame, FrameModule};

use crate::classify::{self, Cause, Observed, Run, TargetKind};
use crate::frames::{self, Missing};
use crate::in_place;
use crate::location::{with_line, Roots};
use crate::on_worker;

/// What one look at the stuck thread found.
#[derive(Clone, Debug, Default)]
pub struct Look {
    /// What the thread was doing, as the cause rules read it.
    pub observed: Observed,
    /// The scheduling state, when the platform could read it.
    pub state: Option<RunState>,
    /// The syscall the thread was in, by name (`syscall 10` when the tables have none).
    pub syscall: Option<String>,
    /// What the syscall waits on, as people read it (a path, a peer, a lock).
    pub blocked_on: Option<String>,
    /// The stack, trimmed to the application's frames and the calls they made.
    pub backtrace: Vec<Frame>,
    /// The innermost application frame, `file:line` relative to the workspace.
    pub call_site: Option<String>,
    /// The same, with the file's absolute path as the debug info has it.
    pub call_site_path: Option<String>,
    /// The innermost application function (also without line tables).
    pub function: Option<String>,
    /// Why there is no call site.
    pub missing: Option<Missing>,
    /// The blocking API the call site called (`std::fs::read`).
    pub api: Option<String>,
    /// The dependency's function the call site called into, when it went through one.
    pub dependency: Option<String>,
    /// tokio's or mio's non-blocking I/O the stack is in (see [`frames::nonblocking_io`]):
    /// nothing there blocks.
    pub nonblocking_io: Option<String>,
    /// The `Drop` running, when the thread was inside one.
    pub dropping: Option<frames::Dropping>,
    /// How long the capture took, from the signal to the frames stored.
    pub capture_ns: Option<u64>,
    /// Whether the stack runs inside `tokio::task::block_in_place`: the poll holds no worker.
    pub in_place: bool,
    /// Whether the stack runs tokio's scheduler (a worker or a `block_on` running tasks);
    /// false without a stack.
    pub on_worker: bool,
    /// Whether the stack runs a `tokio::task::LocalSet` (its tasks wait in a queue of its
    /// own, which pollwatch cannot read); false without a stack.
    pub in_local_set: bool,
}

impl Look {
    /// A look with no stack (yet): what the thread's state shows.
    pub fn of_state(state: Option<&ThreadState>) -> Self {
        let mut look = Look {
            missing: Some(Missing::NoStack),
            ..Look::default()
        };
        if let Some(state) = state {
            look.state = Some(state.run);
            look.observed.run = run_of(state.run);
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
        look
    }

    /// Judges the stack: `symbolized` is the whole stack, innermost first, as
    /// [`frames_of`] makes it. `site_file` is the stalled task's spawn file (relative, as
    /// tokio gives it): `roots` learns the build root from it.
    pub fn judge_stack(&mut self, symbolized: &[Frame], roots: &mut Roots, site_file: &str) {
        self.in_place = in_place::blocking_in_place(symbolized);
        self.on_worker = on_worker::runs_a_scheduler(symbolized);
        self.in_local_set = symbolized.iter().any(frames::is_local_set);
        self.backtrace = frames::trim(symbolized);
        for frame in &self.backtrace {
            if let Some(file) = &frame.file {
                roots.learn(file, site_file);
            }
        }
        let site = frames::call_site(&self.backtrace, roots);
        self.call_site = None;
        self.call_site_path = None;
        if let Some(file) = &site.file {
            self.call_site = Some(with_line(&roots.display(file), site.line));
            self.call_site_path = Some(with_line(file, site.line));
        }
        self.function = site.function;
        self.missing = site.missing;
        self.api = site.api;
        self.dependency = site.dependency;
        self.nonblocking_io = site.nonblocking_io;
        self.dropping = frames::dropping(&self.backtrace);
    }

    /// The cause this look shows. In tokio's or mio's non-blocking I/O the thread cannot be
    /// waiting on its socket: whatever it shows, it ran (or waited for a CPU), which the
    /// CPU-shortage rule then judges.
    pub fn cause(&self) -> Cause {
        if self.nonblocking_io.is_some() {
            return Cause::Cpu;
        }
        classify::cause(&self.observed, self.api.as_deref())
    }

    /// Whether this look has a stack.
    pub fn has_stack(&self) -> bool {
        !self.backtrace.is_empty()
    }

    /// The state as reports and events write it.
    pub fn state_text(&self) -> String {
        state_text(self.state)
    }
}

/// The frames of a symbolized stack as reports keep them: a frame no debug info names is
/// named by its address. The frames of an address keep its module and module address when
/// one of them lacks a file or line (what symbolizing them later with debug info can add);
/// those all named with their lines need nothing more.
pub fn frames_of(symbolized: Vec<SymbolFrame>) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(symbolized.len());
    let mut rest = symbolized.as_slice();
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|f| f.ip == first.ip).count();
        let (group, after) = rest.split_at(n);
        let complete = group.iter().all(|f| f.file.is_some() && f.line.is_some());
        frames.extend(group.iter().map(|f| {
            Frame {
                function: f.function.clone().unwrap_or_else(|| format!("{:#x}", f.ip)),
                file: f.file.clone(),
                line: f.line,
                module: f
                    .module
                    .as_ref()
                    .filter(|_| !complete)
                    .map(|m| FrameModule {
                        path: m.path.to_string(),
                        build_id: m.build_id.as_ref().map(|id| id.to_string()),
                        address: m.address,
                    }),
            }
        }));
        rest = after;
    }
    frames
}

/// How the cause rules read a scheduling state.
pub fn run_of(state: RunState) -> Run {
    match state {
        RunState::Running => Run::Running,
        RunState::Sleeping => Run::Waiting,
        RunState::DiskWait => Run::DiskWait,
        _ => Run::Unknown,
    }
}

/// A scheduling state as reports and events write it: `unknown` where the platform cannot tell.
pub fn state_text(state: Option<RunState>) -> String {
    state.map_or_else(|| "unknown".to_owned(), |s| s.to_string())
}

/// What a syscall's target is, for the cause rules.
pub fn target_kind(target: &Target) -> TargetKind {
    match target {
        Target::File { .. } => TargetKind::File,
        Target::Socket { .. } => TargetKind::Socket,
        Target::Pipe { .. } => TargetKind::Pipe,
        Target::Futex { .. } => TargetKind::Futex,
        Target::Sleep => TargetKind::Sleep,
        Target::MemoryMapLock { .. } => TargetKind::MemoryMap,
        _ => TargetKind::Other,
    }
}

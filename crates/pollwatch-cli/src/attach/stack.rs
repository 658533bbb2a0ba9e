//! What a worker's stack read from outside says: whether it runs tokio's scheduler, whether it
//! is parked by tokio, which task poll it is in, and, for a held worker, the judgement the
//! in-process pollwatch gives (call site, blocking API, cause, fix), from `pollwatch-judge`.

use pollwatch_capture::remote::{RemoteStack, StoppedIn};
use pollwatch_capture::{SymbolFrame, ThreadState};
use pollwatch_judge::frames::{self, in_tokio_file};
use pollwatch_judge::location::Roots;
use pollwatch_judge::look::{frames_of, Look};
use pollwatch_report::Frame;

/// tokio's parking, by function path: the worker's park (a condition variable, or the I/O and
/// time drivers' `epoll_wait`).
const PARK_FUNCTIONS: [&str; 6] = [
    "tokio::runtime::scheduler::multi_thread::park::",
    "tokio::runtime::scheduler::current_thread::Context::park",
    "tokio::runtime::park::",
    "tokio::runtime::driver::",
    "tokio::runtime::io::driver::",
    "tokio::runtime::time::",
];

/// Their files, for inlined frames named only by their file (line tables without symbols).
const PARK_FILES: [&str; 5] = [
    "/src/runtime/scheduler/multi_thread/park.rs",
    "/src/runtime/park.rs",
    "/src/runtime/driver.rs",
    "/src/runtime/io/driver.rs",
    "/src/runtime/time/mod.rs",
];

/// The most stack memory of tokio's poll frames a task poll is told apart by.
const POLL_FRAMES_BYTES: u64 = 4096;

/// One stack read from a thread, symbolized.
#[derive(Clone, Debug)]
pub(crate) struct Stack {
    /// The addresses unwound, innermost first.
    pub(crate) addresses: Vec<u64>,
    /// Every frame, innermost first, inlined calls as frames of their own.
    pub(crate) frames: Vec<Frame>,
    symbolized: Vec<SymbolFrame>,
    /// The memory of the frames tokio polls the task from (see [`Stack::task_poll`]), and
    /// its address.
    poll_frames: Option<(u64, Vec<u8>)>,
    /// What the thread stopped in for the read.
    pub(crate) stopped_in: StoppedIn,
}

impl Stack {
    pub(crate) fn new(raw: &RemoteStack, symbolized: Vec<SymbolFrame>) -> Self {
        let mut stack = Stack {
            addresses: raw.addresses.clone(),
            frames: frames_of(symbolized.clone()),
            symbolized,
            poll_frames: None,
            stopped_in: raw.stopped_in,
        };
        stack.poll_frames = stack.poll_frames_of(raw);
        stack
    }

    /// The stack memory from the frame that polls the task's future out to tokio's scheduler
    /// (at most [`POLL_FRAMES_BYTES`]): the registers tokio's poll functions saved there,
    /// the task's own pointer among them, stay as they are while one poll runs, and differ
    /// from one task to another.
    fn poll_frames_of(&self, raw: &RemoteStack) -> Option<(u64, Vec<u8>)> {
        let at = self.outermost_task_frame()?;
        let from = *raw.sps.get(at + 1)?;
        let scheduler = self.symbolized.iter().find(|f| {
            f.function
                .as_deref()
                .is_some_and(|name| name.contains("tokio::runtime::scheduler::"))
                || f.file
                    .as_deref()
                    .is_some_and(|file| file.contains("/src/runtime/scheduler/"))
        });
        let to = scheduler
            .and_then(|f| self.addresses.iter().position(|&a| a == f.ip as u64))
            .and_then(|i| raw.sps.get(i).copied())
            .filter(|&to| to > from)
            .unwrap_or(from + 512)
            .min(from + POLL_FRAMES_BYTES);
        raw.memory(from, to).map(|bytes| (from, bytes.to_vec()))
    }

    /// Where the memory of tokio's poll frames is (its address and length), when the stack
    /// shows a task poll: while that poll runs, it stays as it is.
    pub(crate) fn poll_frames_at(&self) -> Option<(u64, usize)> {
        self.task_poll()?;
        self.poll_frames
            .as_ref()
            .map(|(from, bytes)| (*from, bytes.len()))
    }

    /// The index (in `addresses`) of the task's outermost frame of the application's own.
    fn outermost_task_frame(&self) -> Option<usize> {
        let trimmed = frames::trim(&self.frames);
        let roots = Roots::default();
        if trimmed.len() == self.frames.len()
            || self.parked()
            || !trimmed.iter().any(|f| frames::is_application(f, &roots))
        {
            return None;
        }
        let outermost = trimmed.last()?;
        let ip = self
            .symbolized
            .iter()
            .rev()
            .find(|f| f.function.as_deref() == Some(outermost.function.as_str()))
            .map(|f| f.ip as u64)?;
        self.addresses.iter().position(|&a| a == ip)
    }

    /// Whether the thread runs tokio's scheduler loop: a runtime worker's `run` (or
    /// `run_task`), or a `block_on` of a current-thread runtime. A blocking-pool thread whose task wakes
    /// another runs the scheduler's code too (`schedule_task`, in the worker's file), in no
    /// loop: it is no worker.
    pub(crate) fn runs_a_scheduler(&self) -> bool {
        self.frames.iter().any(|frame| {
            let name = frame.function.split('<').next().unwrap_or(&frame.function);
            let last = name.rsplit("::").next().unwrap_or(name);
            matches!(last, "run" | "run_task" | "block_on")
                && pollwatch_judge::on_worker::runs_a_scheduler(std::slice::from_ref(frame))
        })
    }

    /// Whether the thread is parked by tokio: asleep in its park, not in a task.
    pub(crate) fn parked(&self) -> bool {
        self.frames.iter().any(|f| {
            PARK_FUNCTIONS.iter().any(|p| f.function.contains(p)) || in_tokio_file(f, &PARK_FILES)
        })
    }

    /// The task poll the thread is in: the addresses from the task's outermost frame of its
    /// own (the frame tokio's poll calls) to the stack's end, and the memory of tokio's poll
    /// frames around it. Two stacks in the same poll share both; two polls of tasks of one
    /// kind share the addresses, not the memory. `None` outside a task poll (the scheduler
    /// between tasks, or parked).
    pub(crate) fn task_poll(&self) -> Option<(Vec<u64>, Vec<u8>)> {
        let at = self.outermost_task_frame()?;
        let (_, memory) = self.poll_frames.as_ref()?;
        Some((self.addresses[at..].to_vec(), memory.clone()))
    }
}

/// A held worker judged as the in-process pollwatch judges a stall's look.
pub(crate) fn judge(state: Option<&ThreadState>, stack: Option<&Stack>, roots: &mut Roots) -> Look {
    let mut look = Look::of_state(state);
    if let Some(stack) = stack {
        look.judge_stack(&stack.frames, roots, "");
    }
    look
}

/// The task a stack shows running: its name and file, from its outermost frame of the
/// application's own (the future tokio polls). A build with line tables only names that
/// frame shortly (`{async_block#0}`): the future's type then comes from tokio's generic poll
/// frame around it (`poll<app::routes::fs::bad::{async_fn#0}::{async_block_env#0}>`).
/// `None` when the stack shows no task of the application's.
pub(crate) fn task_of(stack: &Stack, look: &Look) -> Option<(String, String)> {
    let outermost = look.backtrace.last()?;
    let file = outermost.file.clone().unwrap_or_default();
    let mut name = short_function(&outermost.function);
    if !name.contains("::") {
        let at = stack.frames.iter().rposition(|f| f == outermost);
        let generic = at.and_then(|at| {
            stack.frames[at + 1..]
                .iter()
                .find_map(|f| f.function.strip_prefix("poll<")?.strip_suffix('>'))
        });
        if let Some(future) = generic {
            name = short_function(future.split(", ").next().unwrap_or(future));
        }
    }
    Some((name, file))
}

/// `app::routes::fs::bad_fs::{{closure}}` as `routes::fs::bad_fs`: the last three path
/// segments, without closures and async blocks (and without generic arguments).
pub(crate) fn short_function(function: &str) -> String {
    let plain = function.split('<').next().unwrap_or(function);
    let path: Vec<&str> = plain
        .split("::")
        .filter(|part| !part.is_empty() && !part.starts_with('{'))
        .collect();
    let keep = path.len().saturating_sub(3);
    path[keep..].join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(ip: usize, function: &str) -> SymbolFrame {
        SymbolFrame {
            ip,
            function: Some(function.to_owned()),
            file: Some("/srv/app/src/main.rs".to_owned()),
            line: Some(1),
            module: None,
        }
    }

    /// A stack of `names`, each frame 0x100 bytes of stack memory holding `fill`.
    fn stack_with(names: &[&str], fill: u8) -> Stack {
        let symbolized: Vec<SymbolFrame> = names
            .iter()
            .enumerate()
            .map(|(i, n)| symbol(0x1000 + i * 0x10, n))
            .collect();
        let raw = RemoteStack {
            addresses: symbolized.iter().map(|f| f.ip as u64).collect(),
            sps: (0..names.len() as u64)
                .map(|i| 0x7000 + i * 0x100)
                .collect(),
            stack: vec![fill; names.len() * 0x100],
            stack_sp: 0x7000,
            cut: false,
            stopped: std::time::Duration::ZERO,
            to_stop: std::time::Duration::ZERO,
            ran_to_stop: None,
            stopped_in: StoppedIn::Unknown,
        };
        Stack::new(&raw, symbolized)
    }

    fn stack(names: &[&str]) -> Stack {
        stack_with(names, 0)
    }

    const RUN_TASK: &str = "tokio::runtime::scheduler::multi_thread::worker::Context::run_task";

    #[test]
    fn a_task_is_named_by_its_future() {
        assert_eq!(
            short_function("app::routes::fs::bad_fs::{{closure}}::{{closure}}"),
            "routes::fs::bad_fs"
        );
        assert_eq!(
            short_function("tracing::instrument::Instrumented<app::x::{async_fn#0}>"),
            "tracing::instrument::Instrumented"
        );
        assert_eq!(short_function("{async_block#0}"), "");
        let mut look = Look::default();
        let stack = stack(&[
            "read",
            "{async_block#0}",
            "poll<app::routes::fs::bad::{async_fn#0}::{async_block_env#0}>",
            RUN_TASK,
        ]);
        look.backtrace = stack.frames[..2].to_vec();
        let (name, file) = task_of(&stack, &look).unwrap();
        assert_eq!(name, "routes::fs::bad");
        assert_eq!(file, "/srv/app/src/main.rs");
    }

    #[test]
    fn a_worker_in_a_task_poll_is_told_from_one_parked() {
        let held = stack(&[
            "std::thread::sleep",
            "app::handler::{{closure}}",
            "tokio::runtime::task::core::Core<T,S>::poll",
            RUN_TASK,
        ]);
        assert!(held.runs_a_scheduler());
        assert!(!held.parked());
        let (addresses, memory) = held.task_poll().unwrap();
        assert_eq!(addresses, vec![0x1010, 0x1020, 0x1030]);
        assert_eq!(
            memory.len(),
            0x100,
            "tokio's poll frame, to the scheduler's"
        );
        let other_task = stack_with(
            &[
                "std::thread::sleep",
                "app::handler::{{closure}}",
                "tokio::runtime::task::core::Core<T,S>::poll",
                RUN_TASK,
            ],
            1,
        );
        assert_eq!(other_task.task_poll().unwrap().0, addresses);
        assert_ne!(other_task.task_poll(), held.task_poll(), "another task");
        let parked = stack(&[
            "syscall",
            "std::sys::sync::condvar::futex::Condvar::wait",
            "tokio::runtime::scheduler::multi_thread::park::Inner::park_condvar",
            "tokio::runtime::scheduler::multi_thread::worker::Context::park_timeout",
            RUN_TASK,
        ]);
        assert!(parked.runs_a_scheduler());
        assert!(parked.parked());
        assert_eq!(parked.task_poll(), None, "between tasks");
        let blocking_pool = stack(&[
            "syscall",
            "tokio::runtime::blocking::pool::Inner::run",
            "std::thread::Builder::spawn_unchecked_",
        ]);
        assert!(!blocking_pool.runs_a_scheduler());
        let waking_a_task = stack(&[
            "syscall",
            "tokio::runtime::scheduler::multi_thread::worker::<impl tokio::runtime::scheduler::multi_thread::handle::Handle>::schedule_task",
            "tokio::runtime::task::harness::Harness<T,S>::complete",
            "tokio::runtime::task::harness::Harness<T,S>::poll",
            "tokio::runtime::blocking::pool::Inner::run",
            "std::thread::Builder::spawn_unchecked_",
        ]);
        assert!(
            !waking_a_task.runs_a_scheduler(),
            "a blocking-pool thread whose task wakes a worker's task is no worker"
        );
    }
}

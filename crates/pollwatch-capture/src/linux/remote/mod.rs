//! Another process, seen from outside (feature `remote`): what `pollwatch attach PID` reads,
//! never changing the process. Its threads and what each does come from
//! `/proc/<pid>/task/<tid>/` with the readers pollwatch uses in process (state, syscall and
//! its target, scheduler accounting); a socket's peer from a copy of its descriptor
//! (`pidfd_getfd`). A stack comes from stopping that one thread only for as long as copying
//! its registers and stack takes (`ptrace.rs`), unwound afterwards from the copy with the
//! modules' DWARF CFI (`unwind.rs`, framehop) and symbolized with each module's debug info
//! ([`DebugInfo`], the same symbolizer as `pollwatch symbolize`).
//!
//! Permissions: reading another process's `syscall`, stack and descriptors needs ptrace access
//! to it: the same user and `kernel.yama.ptrace_scope` 0, or `CAP_SYS_PTRACE` (root, or
//! `--cap-add SYS_PTRACE` in a container). [`RemoteError::NotPermitted`] says which.

mod maps;
mod ptrace;
mod task_files;
mod unwind;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{DebugInfo, ModuleAddress, SchedTimes, SymbolFrame, ThreadState, Tid};

use super::proc::{self, Of};

/// Why another process or one of its threads cannot be looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// No process with this pid.
    NoSuchProcess {
        /// The pid.
        pid: i32,
    },
    /// This process may not trace it.
    NotPermitted {
        /// What to change, naming the sysctl or capability.
        hint: String,
    },
    /// The thread exited.
    ThreadGone,
    /// The thread did not stop within the time allowed (it was in an uninterruptible wait);
    /// it is let go once it stops.
    DidNotStop,
    /// A ptrace or wait call failed.
    Ptrace {
        /// The call.
        what: &'static str,
        /// Its errno.
        errno: i32,
    },
    /// Not on this architecture.
    Unsupported,
}

impl RemoteError {
    fn not_permitted() -> Self {
        let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let hint = match scope {
            Some(0) | None => "run pollwatch as the process's user (or as root), or give it \
                               CAP_SYS_PTRACE (in a container: --cap-add SYS_PTRACE)"
                .to_owned(),
            Some(1) => "kernel.yama.ptrace_scope is 1, so only a parent may trace: run as \
                        root, give pollwatch CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep \
                        $(which pollwatch)`; in a container: --cap-add SYS_PTRACE), or allow \
                        it for now with `sudo sysctl kernel.yama.ptrace_scope=0`"
                .to_owned(),
            Some(2) => "kernel.yama.ptrace_scope is 2, so only CAP_SYS_PTRACE may trace: run \
                        as root or give pollwatch CAP_SYS_PTRACE (in a container: --cap-add \
                        SYS_PTRACE)"
                .to_owned(),
            Some(n) => {
                format!("kernel.yama.ptrace_scope is {n}: no process may be traced until reboot")
            }
        };
        RemoteError::NotPermitted { hint }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::NoSuchProcess { pid } => write!(f, "no process {pid}"),
            RemoteError::NotPermitted { hint } => write!(f, "not permitted to trace it: {hint}"),
            RemoteError::ThreadGone => f.write_str("the thread has exited"),
            RemoteError::DidNotStop => f.write_str(
                "the thread did not stop within 200 ms (an uninterruptible wait, such as a disk \
                 read); it is let go when it stops",
            ),
            RemoteError::Ptrace { what, errno } => write!(
                f,
                "{what} failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            RemoteError::Unsupported => f.write_str("not supported on this architecture"),
        }
    }
}

impl std::error::Error for RemoteError {}

/// How many addresses' frames [`Process::symbolize`] keeps.
const SYMBOLIZED_KEPT: usize = 65_536;

/// A thread of the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteThread {
    /// Its thread id.
    pub tid: Tid,
    /// Its name (`comm`, at most 15 bytes).
    pub name: String,
}

/// A stack read from outside, innermost first.
#[derive(Clone, Debug)]
pub struct RemoteStack {
    /// The interrupted instruction, then return addresses.
    pub addresses: Vec<u64>,
    /// Each frame's stack pointer, as the unwinder recovered it.
    pub sps: Vec<u64>,
    /// The stack memory copied, from [`stack_sp`](RemoteStack::stack_sp) up.
    pub stack: Vec<u8>,
    /// The stack pointer when the thread stopped: where `stack` starts.
    pub stack_sp: u64,
    /// Whether the walk stopped before the stack's end.
    pub cut: bool,
    /// How long the thread was stopped to copy its registers and stack.
    pub stopped: Duration,
    /// How long it took to stop: how long it went on in the kernel (a long syscall, such as
    /// a large file read from the page cache, stops only when it returns) or waiting for a
    /// CPU after the interrupt.
    pub to_stop: Duration,
    /// The CPU time it used in that while (per `schedstat`, which lags a running thread by
    /// up to a scheduler tick), when known.
    pub ran_to_stop: Option<Duration>,
    /// What it stopped in: the syscall its registers name, or its own code.
    pub stopped_in: StoppedIn,
}

/// What a thread was in when it stopped for a stack read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoppedIn {
    /// A syscall (by number), which the stop interrupted or which had just returned.
    Syscall(u64),
    /// Its own code.
    OwnCode,
    /// The architecture's registers do not say (aarch64 keeps it in a register set not read).
    Unknown,
}

impl RemoteStack {
    /// The stack memory from `from` to `to` as copied, or `None` outside the copy.
    pub fn memory(&self, from: u64, to: u64) -> Option<&[u8]> {
        let start = usize::try_from(from.checked_sub(self.stack_sp)?).ok()?;
        let end = usize::try_from(to.checked_sub(self.stack_sp)?).ok()?;
        self.stack.get(start..end)
    }
}

/// Another process, looked at from outside.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    maps: Vec<maps::Mapping>,
    unwinder: Option<unwind::Unwinder>,
    debug: HashMap<Arc<str>, Option<DebugInfo>>,
    /// The frames of each address looked up so far (stacks repeat), at most
    /// [`SYMBOLIZED_KEPT`] addresses.
    symbolized: HashMap<u64, Vec<SymbolFrame>>,
    /// Threads seized that had not stopped when given up on: let go once they stop.
    pending: Vec<Tid>,
    /// The files read at every tick, kept open.
    files: task_files::TaskFiles,
}

impl Process {
    /// Opens process `pid`: it must exist and this process must be allowed to trace it
    /// (checked by reading its main thread's `syscall`, which needs the same access).
    pub fn open(pid: i32) -> Result<Self, RemoteError> {
        let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        if pid <= 0 || !dir.join("task").is_dir() {
            return Err(RemoteError::NoSuchProcess { pid });
        }
        match std::fs::read_to_string(dir.join("syscall")) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(RemoteError::not_permitted())
            }
            Err(_) => return Err(RemoteError::NoSuchProcess { pid }),
        }
        Ok(Process {
            pid,
            maps: maps::read(pid).map_err(|_| RemoteError::NoSuchProcess { pid })?,
            unwinder: None,
            debug: HashMap::new(),
            symbolized: HashMap::new(),
            pending: Vec::new(),
            files: task_files::TaskFiles::default(),
        })
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the process still runs.
    pub fn alive(&self) -> bool {
        std::path::Path::new(&format!("/proc/{}/task", self.pid)).is_dir()
    }

    /// The executable as the process names it.
    pub fn executable(&self) -> Option<String> {
        std::fs::read_link(format!("/proc/{}/exe", self.pid))
            .ok()
            .map(|p| {
                p.to_string_lossy()
                    .trim_end_matches(" (deleted)")
                    .to_owned()
            })
    }

    /// Its threads, by tid.
    pub fn threads(&self) -> Vec<RemoteThread> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return Vec::new();
        };
        let mut threads: Vec<RemoteThread> = tasks
            .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
            .map(|tid| RemoteThread {
                tid,
                name: proc::task_file_of(Of::Pid(self.pid), tid, "comm")
                    .map_or_else(String::new, |c| c.trim().to_owned()),
            })
            .collect();
        threads.sort_by_key(|t| t.tid);
        self.files
            .retain(|tid| threads.binary_search_by_key(&tid, |t| t.tid).is_ok());
        threads
    }

    /// The thread's state, syscall and its target (a file path, a socket's addresses, ...).
    pub fn thread_state(&self, tid: Tid) -> Option<ThreadState> {
        proc::thread_state_of(Of::Pid(self.pid), tid)
    }

    /// The syscall the thread sleeps in, as its number and argument registers: one small read.
    pub fn blocked_call(&self, tid: Tid) -> Option<(u64, [u64; 6])> {
        self.files
            .read(self.pid, tid, "syscall", proc::parse_syscall)
    }

    /// The read and write syscalls the thread has made (`io`'s `syscr` + `syscw`).
    pub fn io_syscalls(&self, tid: Tid) -> Option<u64> {
        self.files.read(self.pid, tid, "io", |text| {
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            Some(field("syscr:")?.saturating_add(field("syscw:")?))
        })
    }

    /// The thread's scheduler accounting.
    pub fn sched_times(&self, tid: Tid) -> Option<SchedTimes> {
        self.files
            .read(self.pid, tid, "schedstat", proc::parse_sched_times)
    }

    /// `len` bytes of the process's memory from `from`, read while its threads run (nothing is
    /// stopped): a running thread's stack may change under the copy. Fewer bytes when part of
    /// the range is not mapped.
    pub fn peek(&self, from: u64, len: usize) -> Vec<u8> {
        ptrace::read_memory(self.pid, from, len)
    }

    /// The syscall's name for its number on this architecture.
    pub fn syscall_name(number: u64) -> Option<&'static str> {
        super::syscalls::name(number)
    }

    /// Stops thread `tid` for as long as copying its registers and stack takes, and unwinds
    /// the copy.
    pub fn stack(&mut self, tid: Tid) -> Result<RemoteStack, RemoteError> {
        self.release_pending();
        let maps = &self.maps;
        let stack_end = |sp: u64| maps::holding(maps, sp).map(|m| m.range.end);
        let snapshot = match ptrace::snapshot(self.pid, tid, &stack_end) {
            Err(RemoteError::DidNotStop) => {
                self.pending.push(tid);
                return Err(RemoteError::DidNotStop);
            }
            other => other?,
        };
        if snapshot.stack.is_empty() {
            // A stack in a mapping made after the map was read (a new thread): read it again.
            self.maps = maps::read(self.pid).unwrap_or_default();
            self.unwinder = None;
            self.symbolized.clear();
        }
        let unwinder = self
            .unwinder
            .get_or_insert_with(|| unwind::Unwinder::new(self.pid, &self.maps));
        let (frames, cut) = unwinder.unwind(&snapshot);
        Ok(RemoteStack {
            addresses: frames.iter().map(|(f, _)| f.address()).collect(),
            sps: frames.iter().map(|&(_, sp)| sp).collect(),
            stack: snapshot.stack,
            stack_sp: snapshot.sp,
            cut,
            stopped: snapshot.stopped,
            to_stop: snapshot.to_stop,
            ran_to_stop: snapshot.ran_to_stop,
            stopped_in: snapshot.stopped_in,
        })
    }

    /// Lets go the threads that had not stopped in time and have since.
    pub fn release_pending(&mut self) {
        self.pending.retain(|&tid| !ptrace::release(tid));
    }

    /// Symbolizes a [`RemoteStack`]'s addresses as [`crate::symbolize`] does in process:
    /// innermost first, inlined calls as frames of their own, each frame with its module and
    /// module-relative address. The first address is looked up as is, the others (return
    /// addresses) one byte earlier.
    pub fn symbolize(&mut self, addresses: &[u64]) -> Vec<SymbolFrame> {
        let mut frames = Vec::new();
        for (n, &address) in addresses.iter().enumerate() {
            let lookup = if n == 0 {
                address
            } else {
                address.saturating_sub(1)
            };
            let ip = usize::try_from(address).unwrap_or(usize::MAX);
            if let Some(known) = self.symbolized.get(&lookup) {
                frames.extend(known.iter().map(|f| SymbolFrame { ip, ..f.clone() }));
                continue;
            }
            let found = self.symbolize_one(ip, lookup);
            if self.symbolized.len() >= SYMBOLIZED_KEPT {
                self.symbolized.clear();
            }
            self.symbolized.insert(lookup, found.clone());
            frames.extend(found);
        }
        frames
    }

    /// The frames at `lookup` (the address looked up for the frame at `ip`).
    fn symbolize_one(&mut self, ip: usize, lookup: u64) -> Vec<SymbolFrame> {
        let unknown = |module| {
            vec![SymbolFrame {
                ip,
                function: None,
                file: None,
                line: None,
                module,
            }]
        };
        let module = self
            .unwinder
            .as_ref()
            .and_then(|u| u.module_of(lookup))
            .cloned();
        let Some(module) = module else {
            return unknown(None);
        };
        let relative = lookup.wrapping_sub(module.bias);
        let debug = self
            .debug
            .entry(module.path.clone())
            .or_insert_with(|| DebugInfo::open(&module.file).ok());
        let at = ModuleAddress {
            path: module.path.clone(),
            build_id: module.build_id.clone(),
            address: relative,
        };
        match debug {
            Some(debug) => debug
                .symbolize(relative)
                .into_iter()
                .map(|f| SymbolFrame {
                    ip,
                    module: Some(at.clone()),
                    ..f
                })
                .collect(),
            None => unknown(Some(at)),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A thread still seized is let go if it has stopped; otherwise the kernel detaches it
        // as this process exits.
        self.release_pending();
    }
}

//! Why a thread is stuck and what to do about it: the cause of a stall from the thread's state,
//! its syscall and the blocking API in its stack, and the fix that fits the cause.

use std::fmt;

/// What the thread was doing, as far as the platform could tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The scheduling state.
    pub run: Run,
    /// The syscall the thread was in, by name.
    pub syscall: Option<String>,
    /// What the syscall waits on.
    pub target: Option<TargetKind>,
}

/// The thread's scheduling state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Run {
    /// On a CPU (or runnable), not in a syscall.
    Running,
    /// Asleep in the kernel, waiting for something.
    Waiting,
    /// In uninterruptible IO.
    DiskWait,
    /// Not known (no /proc).
    #[default]
    Unknown,
}

/// What the syscall waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// A file.
    File,
    /// A socket.
    Socket,
    /// A pipe or FIFO.
    Pipe,
    /// A futex: a lock or condition variable.
    Futex,
    /// A sleep.
    Sleep,
    /// The process's memory-map lock.
    MemoryMap,
    /// Another file descriptor.
    Other,
}

/// Why a poll held its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// File I/O (or a pipe's).
    FileIo,
    /// A sleep.
    Sleep,
    /// A lock, condition variable or thread join.
    Lock,
    /// A std channel.
    Channel,
    /// CPU work.
    Cpu,
    /// Network I/O.
    Network,
    /// A `block_on` inside a task.
    BlockOn,
    /// A child process.
    Process,
    /// Waiting in `mmap`, `munmap`, `mprotect` (or another call that changes the process's
    /// memory map) for the memory-map lock another thread holds.
    MemoryMap,
    /// CPU work (or a lock wait) the thread mostly spent waiting for a CPU: the host or
    /// container is short of CPU (`stall::sched`'s rule).
    Descheduled,
    /// Nothing tells.
    Unknown,
}

impl Cause {
    /// The name used in reports and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::FileIo => "file_io",
            Cause::Sleep => "sleep",
            Cause::Lock => "lock",
            Cause::Channel => "channel",
            Cause::Cpu => "cpu",
            Cause::Network => "network",
            Cause::BlockOn => "block_on",
            Cause::Process => "process",
            Cause::MemoryMap => "memory_map",
            Cause::Descheduled => "descheduled",
            Cause::Unknown => "unknown",
        }
    }
}

impl Cause {
    /// Every cause.
    pub const ALL: [Cause; 11] = [
        Cause::FileIo,
        Cause::Sleep,
        Cause::Lock,
        Cause::Channel,
        Cause::Cpu,
        Cause::Network,
        Cause::BlockOn,
        Cause::Process,
        Cause::MemoryMap,
        Cause::Descheduled,
        Cause::Unknown,
    ];

    /// The cause a report names (see [`Cause::as_str`]).
    pub fn from_name(name: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cause: the blocking API in the stack when there is one, else the syscall and its
/// target, else the scheduling state.
///
/// An API named through a trait or wrapper (`std::fs::File::write (via std::io::Write::write_all)`)
/// takes the cause of the concrete call it starts with. A pipe or FIFO is file IO: a FIFO is a
/// path opened with `std::fs::File` (its target is the file), and an anonymous pipe read or
/// written with no API recognised is a file descriptor like a file's; a child process's pipes
/// read through `std::process` are that process's.
pub fn cause(observed: &Observed, api: Option<&str>) -> Cause {
    if let Some(api) = api {
        let by_api = if api.starts_with("futures::executor::block_on") {
            Cause::BlockOn
        } else if api.starts_with("std::fs::") {
            Cause::FileIo
        } else if api.starts_with("std::thread::sleep") {
            Cause::Sleep
        } else if api.starts_with("std::sync::mpsc::") {
            Cause::Channel
        } else if api.starts_with("std::sync::") || api.starts_with("std::thread::JoinHandle") {
            Cause::Lock
        } else if api.starts_with("std::net::") || api.starts_with("std::os::unix::net::") {
            Cause::Network
        } else if api.starts_with("std::process::") {
            Cause::Process
        } else {
            Cause::Unknown
        };
        if by_api != Cause::Unknown {
            return by_api;
        }
    }
    match observed.target {
        Some(TargetKind::File | TargetKind::Pipe) => return Cause::FileIo,
        Some(TargetKind::Socket) => return Cause::Network,
        Some(TargetKind::Futex) => return Cause::Lock,
        Some(TargetKind::Sleep) => return Cause::Sleep,
        Some(TargetKind::MemoryMap) => return Cause::MemoryMap,
        _ => {}
    }
    if !matches!(observed.run, Run::Running)
        && observed
            .syscall
            .as_deref()
            .is_some_and(|call| MEMORY_MAP_CALLS.contains(&call))
    {
        // Asleep (often uninterruptibly, like disk IO) in a call that takes the process's
        // memory-map lock: waiting for that lock.
        return Cause::MemoryMap;
    }
    match observed.run {
        Run::Running if observed.syscall.is_none() => Cause::Cpu,
        Run::DiskWait => Cause::FileIo,
        _ => Cause::Unknown,
    }
}

/// Syscalls that take the process's memory-map lock for writing: a thread asleep in one waits
/// for that lock, held by another thread changing the map (or faulting pages in).
pub const MEMORY_MAP_CALLS: [&str; 7] = [
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "mlock",
];

/// The call the application made, from an API name: `std::io::BufRead::read_line` from
/// `std::net::TcpStream::read (via std::io::BufRead::read_line)`, else the name itself.
fn called(api: &str) -> &str {
    api.split_once(" (via ")
        .map_or(api, |(_, via)| via.trim_end_matches(')'))
}

/// The tokio reader or writer that replaces a std one read or written through `api`: a
/// buffered one for `BufRead`/`BufReader`/`BufWriter`, else the `AsyncReadExt` or
/// `AsyncWriteExt` method of the same name.
fn async_io(api: &str) -> String {
    let call = called(api);
    let method = call.rsplit("::").next().unwrap_or(call);
    if call.starts_with("std::io::BufRead::") || call.starts_with("std::io::BufReader::") {
        format!("tokio::io::BufReader and tokio::io::AsyncBufReadExt::{method}(..).await")
    } else if call.starts_with("std::io::BufWriter::") || call.starts_with("std::io::LineWriter::")
    {
        format!("tokio::io::BufWriter and tokio::io::AsyncWriteExt::{method}(..).await")
    } else if api.contains("::write") || call.starts_with("std::io::Write::") {
        let method = if method.starts_with("write") || method == "flush" {
            method
        } else {
            "write_all"
        };
        format!("tokio::io::AsyncWriteExt::{method}(..).await")
    } else {
        let method = if method.starts_with("read") {
            method
        } else {
            "read"
        };
        format!("tokio::io::AsyncReadExt::{method}(..).await")
    }
}

/// `std::fs` functions that `tokio::fs` offers under the same name.
const TOKIO_FS: [&str; 18] = [
    "read",
    "read_to_string",
    "write",
    "read_dir",
    "metadata",
    "symlink_metadata",
    "copy",
    "rename",
    "remove_file",
    "remove_dir",
    "remove_dir_all",
    "create_dir",
    "create_dir_all",
    "canonicalize",
    "hard_link",
    "read_link",
    "set_permissions",
    "try_exists",
];

/// The fix to apply, as one or two sentences: the async counterpart of the blocking API
/// where there is one, else the cause's usual fix.
pub fn suggestion(cause: Cause, api: Option<&str>) -> String {
    let api = api.unwrap_or_default();
    match cause {
        Cause::FileIo => {
            let same_name = api
                .strip_prefix("std::fs::")
                .filter(|f| TOKIO_FS.contains(f));
            if let Some(f) = same_name {
                format!("Use tokio::fs::{f} or tokio::task::spawn_blocking.")
            } else if api.starts_with("std::fs::File::") {
                format!(
                    "Use tokio::fs::File with {} (for a FIFO, tokio::net::unix::pipe), or move \
                     the file IO into tokio::task::spawn_blocking.",
                    async_io(api)
                )
            } else {
                "Use tokio::fs (tokio::fs::File; tokio::net::unix::pipe for a pipe or FIFO) or \
                 move the file IO into tokio::task::spawn_blocking."
                    .to_owned()
            }
        }
        Cause::Sleep => "Use tokio::time::sleep(..).await.".to_owned(),
        Cause::Lock if api.starts_with("std::sync::Condvar::") => {
            "Wait on a tokio::sync::Notify (or a tokio::sync::watch channel) with .await \
             instead of a std::sync::Condvar."
                .to_owned()
        }
        Cause::Lock if api.starts_with("std::thread::JoinHandle::join") => {
            "Start the work with tokio::task::spawn_blocking and .await its JoinHandle instead \
             of joining a std thread."
                .to_owned()
        }
        Cause::Lock => "Use tokio::sync::Mutex (or RwLock), or keep the std lock's critical \
                        section short and never hold it across slow work."
            .to_owned(),
        Cause::Channel if api.starts_with("std::sync::mpsc::Receiver::recv_timeout") => {
            "Use tokio::sync::mpsc and .await its recv() inside tokio::time::timeout.".to_owned()
        }
        Cause::Channel if api.starts_with("std::sync::mpsc::SyncSender::send") => {
            "Use a bounded tokio::sync::mpsc channel and .await its send().".to_owned()
        }
        Cause::Channel => "Use tokio::sync::mpsc (or another tokio::sync channel) and .await \
                           its recv()."
            .to_owned(),
        Cause::Cpu => "Move the computation to tokio::task::spawn_blocking, \
                       tokio::task::block_in_place or a rayon pool."
            .to_owned(),
        Cause::Network => {
            let specific = if api.starts_with("std::net::ToSocketAddrs") {
                "Resolve names with tokio::net::lookup_host(..).await".to_owned()
            } else if api.starts_with("std::net::TcpStream::read or ") {
                // A direct read the stack cannot tell from a `UdpSocket::recv`.
                "Use tokio::net::TcpStream with tokio::io::AsyncReadExt::read(..).await (a \
                 UDP socket: tokio::net::UdpSocket::recv(..).await)"
                    .to_owned()
            } else if api.starts_with("std::net::TcpStream::connect") {
                "Use tokio::net::TcpStream::connect(..).await".to_owned()
            } else if api.starts_with("std::net::TcpStream::") {
                format!("Use tokio::net::TcpStream with {}", async_io(api))
            } else if api.starts_with("std::net::TcpListener::") {
                "Use tokio::net::TcpListener and .await its accept()".to_owned()
            } else if api.starts_with("std::net::UdpSocket::") {
                "Use tokio::net::UdpSocket and .await its calls".to_owned()
            } else if api.starts_with("std::os::unix::net::UnixStream::") {
                format!("Use tokio::net::UnixStream with {}", async_io(api))
            } else {
                return "Use an async client (tokio::net, hyper, reqwest) or run the blocking \
                        call in tokio::task::spawn_blocking."
                    .to_owned();
            };
            format!(
                "{specific}, or an async client (hyper, reqwest), or run the blocking call in \
                 tokio::task::spawn_blocking."
            )
        }
        Cause::BlockOn => {
            "Never call block_on inside a task: .await the future instead.".to_owned()
        }
        Cause::Process if api.starts_with("std::process::Command::") => {
            let method = api.rsplit("::").next().unwrap_or("output");
            format!("Use tokio::process::Command and .await its {method}().")
        }
        Cause::Process if api.starts_with("std::process::Child::wait") => {
            "Use tokio::process::Command and .await the child's wait().".to_owned()
        }
        Cause::Process => "Use tokio::process::Command.".to_owned(),
        Cause::MemoryMap => "No fix in this code: the thread waited for the process's \
                             memory-map lock, which another thread held while mapping or \
                             unmapping memory (a large allocation or free, a file mapping, a \
                             library loaded). Look at what else maps memory then; reusing large \
                             buffers instead of allocating them avoids it."
            .to_owned(),
        Cause::Descheduled => "No code fix: the thread waited for a CPU most of the time it \
                               was held. Look at the host's CPU: other processes or threads \
                               competing for it, or the container's CPU quota (cgroup cpu.max \
                               throttling)."
            .to_owned(),
        Cause::Unknown => "Move the blocking call to tokio::task::spawn_blocking.".to_owned(),
    }
}

/// What to say of a poll held in tokio's or mio's non-blocking I/O (`io`, the frame it was
/// in): that call cannot block, so there is no async replacement to advise; the time went to
/// the kernel's work in the call, to waiting for a CPU (below the CPU-shortage rule's bar), or
/// to the capture's own delay.
pub fn nonblocking_io_suggestion(io: &str) -> String {
    format!(
        "No blocking call: the thread was in tokio's non-blocking socket I/O ({io}), which \
         never waits for the socket. The time went to the kernel's work in the call or to \
         waiting for a CPU; look at the host's CPU, or at how much is written per poll."
    )
}

/// The fix for a lock taken inside a dependency's code (`dependency`, the function the
/// application called), which no `tokio::sync` type can replace. tokio's own calls that are
/// made for async code (`tokio::task::spawn_blocking`, `tokio::fs`) take its blocking pool's
/// lock, which is held only briefly: a long wait there is the host's doing.
pub fn dependency_lock_suggestion(dependency: &str) -> String {
    let onto_the_pool = dependency.starts_with("tokio::fs::")
        || (dependency.starts_with("tokio::") && dependency.ends_with("::spawn_blocking"));
    if onto_the_pool {
        return format!(
            "No fix in this code: {dependency} waited for tokio's own lock (its blocking \
             pool's), which another thread held for long only because it was kept off a CPU \
             or waited itself (starting a pool thread maps its stack, which waits for the \
             memory-map lock). Look at the host's CPU, and at what else maps memory then."
        );
    }
    format!(
        "Call {dependency} inside tokio::task::spawn_blocking: it waits on a lock of its own, \
         which the application cannot replace with tokio::sync."
    )
}

/// The fix for a blocking call inside a `Drop` (of `dropping`, when known): a `Drop` cannot
/// `.await`, so the async versions of the blocking call do not fit there.
pub fn drop_suggestion(dropping: Option<&str>) -> String {
    let what = dropping.map_or_else(|| "the value".to_owned(), |t| format!("`{t}`"));
    format!(
        "Drop cannot .await: move the blocking cleanup of {what} into \
         tokio::task::spawn_blocking, or into an explicit `async fn close()` called before the \
         value goes out of scope."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(run: Run, syscall: Option<&str>, target: Option<TargetKind>) -> Observed {
        Observed {
            run,
            syscall: syscall.map(str::to_owned),
            target,
        }
    }

    #[test]
    fn the_api_decides_when_known() {
        let waiting = observed(Run::Waiting, Some("futex"), Some(TargetKind::Futex));
        assert_eq!(
            cause(&waiting, Some("futures::executor::block_on")),
            Cause::BlockOn
        );
        assert_eq!(cause(&waiting, Some("std::sync::Mutex::lock")), Cause::Lock);
        // Asleep in a call that takes the memory-map lock, uninterruptibly like disk IO.
        let mapping = observed(Run::DiskWait, Some("mprotect"), None);
        assert_eq!(cause(&mapping, None), Cause::MemoryMap);
        assert_eq!(
            cause(&observed(Run::Waiting, Some("munmap"), None), None),
            Cause::MemoryMap
        );
        assert!(suggestion(Cause::MemoryMap, None).starts_with("No fix in this code"));
        // A lock inside a dependency: off the runtime, unless it is tokio's own lock.
        assert!(dependency_lock_suggestion("rusqlite::Connection::execute")
            .starts_with("Call rusqlite::Connection::execute inside tokio::task::spawn_blocking"));
        let pool = dependency_lock_suggestion("tokio::task::blocking::spawn_blocking");
        assert!(pool.starts_with("No fix in this code"), "{pool}");
        assert!(dependency_lock_suggestion("tokio::fs::read").starts_with("No fix in this code"));
        assert!(
            dependency_lock_suggestion("tokio::sync::Mutex::blocking_lock").starts_with("Call")
        );
        // Running in one (page-table work on a CPU) is not a wait.
        assert_ne!(
            cause(&observed(Run::Running, Some("mmap"), None), None),
            Cause::MemoryMap
        );
        let reading = observed(Run::Waiting, Some("read"), Some(TargetKind::File));
        assert_eq!(cause(&reading, Some("std::fs::read")), Cause::FileIo);
        assert_eq!(
            cause(&reading, Some("std::net::TcpStream::read")),
            Cause::Network
        );
    }

    #[test]
    fn without_an_api_the_syscall_target_and_state_decide() {
        assert_eq!(cause(&observed(Run::Running, None, None), None), Cause::Cpu);
        assert_eq!(
            cause(
                &observed(Run::Waiting, Some("read"), Some(TargetKind::Socket)),
                None
            ),
            Cause::Network
        );
        assert_eq!(
            cause(
                &observed(
                    Run::Waiting,
                    Some("clock_nanosleep"),
                    Some(TargetKind::Sleep)
                ),
                None
            ),
            Cause::Sleep
        );
        assert_eq!(
            cause(&observed(Run::DiskWait, Some("read"), None), None),
            Cause::FileIo
        );
        assert_eq!(
            cause(&observed(Run::Unknown, None, None), None),
            Cause::Unknown
        );
    }

    #[test]
    fn apis_named_through_traits_take_the_cause_of_their_concrete_call() {
        let unknown = observed(Run::Unknown, None, None);
        let cases = [
            (
                "std::net::TcpStream::read (via std::io::BufRead::read_line)",
                Cause::Network,
            ),
            (
                "std::net::TcpStream::read or std::net::UdpSocket::recv",
                Cause::Network,
            ),
            ("std::net::ToSocketAddrs::to_socket_addrs", Cause::Network),
            (
                "std::fs::File::write (via std::io::BufWriter::flush)",
                Cause::FileIo,
            ),
            ("std::process::Command::output", Cause::Process),
            ("std::sync::mpsc::Receiver::recv_timeout", Cause::Channel),
            ("std::sync::Condvar::wait_timeout", Cause::Lock),
            ("std::thread::JoinHandle::join", Cause::Lock),
        ];
        for (api, expected) in cases {
            assert_eq!(cause(&unknown, Some(api)), expected, "{api}");
        }
        // A trait call with nothing concrete inside it: the target decides.
        let pipe = observed(Run::Waiting, Some("read"), Some(TargetKind::Pipe));
        assert_eq!(
            cause(&pipe, Some("std::io::Read::read_exact")),
            Cause::FileIo
        );
        assert_eq!(cause(&pipe, None), Cause::FileIo);
    }

    #[test]
    fn fixes_name_the_tokio_counterpart() {
        let cases = [
            (
                Cause::Network,
                "std::net::TcpStream::read (via std::io::BufRead::read_line)",
                "tokio::io::BufReader and tokio::io::AsyncBufReadExt::read_line(..).await",
            ),
            (
                Cause::Network,
                "std::net::TcpStream::read (via std::io::Read::read_exact)",
                "tokio::net::TcpStream with tokio::io::AsyncReadExt::read_exact(..).await",
            ),
            (
                Cause::Network,
                "std::net::ToSocketAddrs::to_socket_addrs",
                "tokio::net::lookup_host(..).await",
            ),
            (
                Cause::FileIo,
                "std::fs::File::write (via std::io::Write::write_all)",
                "tokio::fs::File with tokio::io::AsyncWriteExt::write_all(..).await",
            ),
            (
                Cause::FileIo,
                "std::fs::File::write (via std::io::BufWriter::flush)",
                "tokio::io::BufWriter and tokio::io::AsyncWriteExt::flush(..).await",
            ),
            (
                Cause::Process,
                "std::process::Command::output",
                "tokio::process::Command and .await its output()",
            ),
            (
                Cause::Channel,
                "std::sync::mpsc::Receiver::recv",
                "tokio::sync::mpsc",
            ),
            (
                Cause::Lock,
                "std::sync::Condvar::wait",
                "tokio::sync::Notify",
            ),
            (
                Cause::Lock,
                "std::thread::JoinHandle::join",
                "tokio::task::spawn_blocking and .await its JoinHandle",
            ),
        ];
        for (cause, api, fix) in cases {
            let text = suggestion(cause, Some(api));
            assert!(text.contains(fix), "{api}: {text}");
        }
        assert!(
            suggestion(Cause::Lock, Some("std::sync::Mutex::lock")).contains("tokio::sync::Mutex")
        );
    }

    #[test]
    fn suggestions_fit_the_cause() {
        assert_eq!(
            suggestion(Cause::FileIo, Some("std::fs::read_to_string")),
            "Use tokio::fs::read_to_string or tokio::task::spawn_blocking."
        );
        assert!(suggestion(Cause::FileIo, Some("std::fs::File::read")).contains("tokio::fs::File"));
        assert!(suggestion(Cause::Sleep, None).contains("tokio::time::sleep"));
        assert!(suggestion(Cause::Lock, None).contains("tokio::sync::Mutex"));
        assert!(suggestion(Cause::Cpu, None).contains("spawn_blocking"));
        assert!(suggestion(Cause::BlockOn, None).contains("Never call block_on"));
        assert!(suggestion(Cause::Network, None).contains("async client"));
        let host = suggestion(Cause::Descheduled, None);
        assert!(!host.is_empty());
    }

    #[test]
    fn every_cause_is_one_the_report_format_lists() {
        let all = Cause::ALL;
        let names: Vec<&str> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, pollwatch_report::CAUSES);
        let host = suggestion(Cause::Descheduled, None);
        assert!(
            host.starts_with("No code fix") && !host.contains("spawn_blocking"),
            "{host}"
        );
    }
}

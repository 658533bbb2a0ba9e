//! What an [`crate::Inspector`] reports.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// An OS thread id.
pub type Tid = i32;

/// A thread's scheduler accounting so far (`/proc/self/task/<tid>/schedstat`): how long it
/// ran on a CPU, and how long it was runnable but waited on a run queue for one. Two readings
/// of the same thread tell running from waiting for a CPU (which `cpu_time_ns` alone cannot:
/// a thread waiting for a CPU and a thread asleep both use none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedTimes {
    /// Time on a CPU, ns.
    pub run_ns: u64,
    /// Time runnable on a run queue, waiting for a CPU, ns.
    pub wait_ns: u64,
    /// How many times it was put on a CPU (0 where unknown): a thread that has not run since
    /// an earlier reading has the same count.
    pub timeslices: u64,
}

/// The CPU throttling of this process's cgroup so far (cgroup v2 `cpu.stat`): how often and
/// how long the CPU quota (`cpu.max`) stopped its threads from running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Throttling {
    /// Periods in which the cgroup used up its quota (`nr_throttled`).
    pub nr_throttled: u64,
    /// Time its threads were held back, µs (`throttled_usec`).
    pub throttled_usec: u64,
}

/// A thread's state, syscall and what the syscall waits on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadState {
    /// The scheduling state.
    pub run: RunState,
    /// The kernel function the thread sleeps in (`wchan`), when it sleeps.
    pub wchan: Option<String>,
    /// The syscall the thread is in; `None` when it runs in user space.
    pub syscall: Option<Syscall>,
}

/// A thread's scheduling state (`/proc/<tid>/stat` field 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// `R`: running on a CPU or runnable.
    Running,
    /// `S`: sleeping, waiting for an event.
    Sleeping,
    /// `D`: in uninterruptible sleep, usually disk IO.
    DiskWait,
    /// `T` or `t`: stopped or traced.
    Stopped,
    /// `Z`: exited.
    Zombie,
    /// Any other state letter.
    Other(char),
}

impl RunState {
    /// The state for a `/proc` state letter.
    pub fn from_letter(letter: char) -> Self {
        match letter {
            'R' => RunState::Running,
            'S' => RunState::Sleeping,
            'D' => RunState::DiskWait,
            'T' | 't' => RunState::Stopped,
            'Z' | 'X' => RunState::Zombie,
            other => RunState::Other(other),
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunState::Running => f.write_str("running on CPU"),
            RunState::Sleeping => f.write_str("sleeping"),
            RunState::DiskWait => f.write_str("in uninterruptible IO"),
            RunState::Stopped => f.write_str("stopped"),
            RunState::Zombie => f.write_str("exited"),
            RunState::Other(c) => write!(f, "state {c}"),
        }
    }
}

/// A syscall a thread is blocked in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// The syscall number, as the architecture numbers it.
    pub number: u64,
    /// Its name, when known.
    pub name: Option<&'static str>,
    /// Its six argument registers.
    pub args: [u64; 6],
    /// What it waits on, when known.
    pub target: Option<Target>,
}

/// What a syscall waits on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A file (or named FIFO) by path.
    File {
        /// The descriptor.
        fd: i32,
        /// Its path.
        path: String,
    },
    /// An anonymous pipe.
    Pipe {
        /// The descriptor.
        fd: i32,
        /// `pipe:[inode]`.
        link: String,
    },
    /// A socket.
    Socket {
        /// The descriptor.
        fd: i32,
        /// `tcp`, `tcp6`, `udp`, `udp6`, `unix`, or `socket` when the socket could not be
        /// asked (the descriptor was closed or reused meanwhile; then `local` is
        /// `socket:[inode]`).
        protocol: &'static str,
        /// The local address (`127.0.0.1:8080`, a unix path, or the socket inode).
        local: String,
        /// The peer's address, when connected.
        peer: Option<String>,
    },
    /// A futex: a lock, condition variable or thread park.
    Futex {
        /// The futex word's address.
        addr: u64,
    },
    /// A sleep.
    Sleep,
    /// The process's memory-map lock, which the thread waits for in a call that changes the
    /// map (`mmap`, `munmap`, `mprotect`, ...), with the other threads seen in such a call at
    /// the same look: one of them, or a thread faulting pages in, holds it.
    MemoryMapLock {
        /// The other threads in a memory-map call, at most [`MAX_MAP_THREADS`].
        others: Vec<ThreadInCall>,
    },
    /// Any other descriptor.
    Fd {
        /// The descriptor.
        fd: i32,
        /// What `/proc/self/fd/N` links to.
        link: String,
    },
}

impl fmt::Display for Target {
    /// Human text: `/data/users.json`, `TCP 127.0.0.1:5000 -> 127.0.0.1:6000`,
    /// `Unix socket /run/app.sock`, `a lock or condition variable (futex 0x7f..)`, `a sleep`,
    /// `pipe:[123]`, `fd 5 (anon_inode:[eventpoll])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File { path, .. } => f.write_str(path),
            Target::Pipe { link, .. } => f.write_str(link),
            Target::Socket {
                protocol,
                local,
                peer,
                ..
            } => {
                let kind = match *protocol {
                    "tcp" | "tcp6" => "TCP",
                    "udp" | "udp6" => "UDP",
                    "unix" => "Unix socket",
                    _ => "socket",
                };
                match peer {
                    Some(peer) => write!(f, "{kind} {local} -> {peer}"),
                    None => write!(f, "{kind} {local}"),
                }
            }
            Target::Futex { addr } => write!(f, "a lock or condition variable (futex {addr:#x})"),
            Target::Sleep => f.write_str("a sleep"),
            Target::MemoryMapLock { others } if others.is_empty() => f.write_str(
                "the memory-map lock (no other thread seen in a memory-map call; one faulting \
                 pages in may hold it)",
            ),
            Target::MemoryMapLock { others } => {
                f.write_str("the memory-map lock (other threads in memory-map calls: ")?;
                for (i, t) in others.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{:?} (tid {}) in {}()", t.name, t.tid, t.syscall)?;
                }
                f.write_str(")")
            }
            Target::Fd { fd, link } => write!(f, "fd {fd} ({link})"),
        }
    }
}

/// Where an address is: its module's file and GNU build-id, and the address as the file
/// numbers it (`addr2line -e FILE ADDRESS` takes it as is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleAddress {
    /// The module's file as it was loaded (the executable, or a shared library).
    pub path: Arc<str>,
    /// Its GNU build-id in lower-case hex, when it has one.
    pub build_id: Option<Arc<str>>,
    /// The address relative to the module.
    pub address: u64,
}

/// The most other threads a [`Target::MemoryMapLock`] names.
pub const MAX_MAP_THREADS: usize = 4;

/// Another thread of the process, seen in a syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInCall {
    /// Its thread id.
    pub tid: Tid,
    /// Its name (`/proc/self/task/<tid>/comm`).
    pub name: String,
    /// The syscall it is in.
    pub syscall: &'static str,
}

/// The raw addresses of a captured stack, innermost first: the interrupted instruction, then
/// return addresses (see the crate docs, *Stack capture*, for when the capture machinery's
/// own frames come first instead). Symbolize them with [`crate::symbolize`].
#[derive(Clone, Debug)]
pub struct RawBacktrace {
    /// The addresses, at most 128.
    pub ips: Vec<usize>,
    /// From the signal being sent to the frames being stored by the captured thread.
    pub took: Duration,
    /// When the captured thread stored the frames: the stack is what the thread was doing
    /// then, which a caller can compare with when the work it was watching ended.
    pub captured_at: std::time::Instant,
}

/// A call the capture signal would interrupt: the kernel does not restart it after a signal
/// handler, even one installed with `SA_RESTART`, so the thread would see `EINTR` (see the
/// crate docs, *`EINTR`*). [`Inspector::capture`](crate::Inspector::capture) does not signal
/// a thread in such a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unrestartable {
    /// The syscall the thread sleeps in (`recvfrom`, `epoll_wait`).
    pub syscall: &'static str,
    /// Why it would not be restarted.
    pub reason: NoRestart,
}

/// Why the kernel would not restart a call after a signal handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoRestart {
    /// It never restarts this call (`pause`, `sigtimedwait`, System V IPC, `io_getevents`,
    /// ...).
    Never,
    /// A socket call on a socket with a receive timeout (`SO_RCVTIMEO`).
    ReceiveTimeout,
    /// A socket call on a socket with a send timeout (`SO_SNDTIMEO`).
    SendTimeout,
    /// A call given a timeout argument (`poll`, `select`, `epoll_wait` and their variants,
    /// `recvmmsg`): it would return before its timeout.
    TimeoutArgument,
}

impl fmt::Display for Unrestartable {
    /// `the thread was in recvfrom() with a receive timeout, which a signal would interrupt`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let syscall = self.syscall;
        match self.reason {
            NoRestart::Never => write!(
                f,
                "the thread was in {syscall}(), which a signal would interrupt (the kernel \
                 never restarts it)"
            ),
            NoRestart::ReceiveTimeout => write!(
                f,
                "the thread was in {syscall}() with a receive timeout, which a signal would \
                 interrupt"
            ),
            NoRestart::SendTimeout => write!(
                f,
                "the thread was in {syscall}() with a send timeout, which a signal would \
                 interrupt"
            ),
            NoRestart::TimeoutArgument => write!(
                f,
                "the thread was in {syscall}() with a timeout, which a signal would interrupt"
            ),
        }
    }
}

/// Why a capture did not produce a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureError {
    /// Capture is switched off.
    Disabled,
    /// Not available on this platform, or the signal could not be installed.
    Unsupported,
    /// Another capture is in flight.
    Busy,
    /// The thread no longer exists.
    ThreadGone,
    /// The thread did not record its stack in time.
    Timeout,
    /// Sending the signal failed with this errno.
    Signal(i32),
    /// The thread was not signalled: it is in a call the signal would interrupt.
    WouldInterrupt(Unrestartable),
    /// The application installed its own handler for the capture signal (this number) after
    /// pollwatch did: no signal is sent while it holds it.
    HandlerReplaced(i32),
    /// The thread blocks the capture signal, or has one pending already: no other is sent.
    SignalBlocked,
    /// Every capture buffer is kept for a late stack still to come (see
    /// [`Inspector::collect_late`](crate::Inspector::collect_late)): no signal is sent until
    /// one comes or [`LATE_HOLD`](crate::LATE_HOLD) has passed.
    AwaitingLate,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Disabled => f.write_str("stack capture is switched off"),
            CaptureError::Unsupported => f.write_str(
                "stack capture is not available here (not Linux, or the application \
                 already handles the capture signal SIGRTMIN+4)",
            ),
            CaptureError::Busy => f.write_str("another stack capture is in flight; try again"),
            CaptureError::ThreadGone => f.write_str("the thread has exited"),
            CaptureError::Timeout => f.write_str(
                "the thread did not record its stack in time (it may block signals or be \
                 stopped)",
            ),
            CaptureError::Signal(errno) => {
                write!(f, "sending the capture signal failed (errno {errno})")
            }
            CaptureError::WouldInterrupt(call) => write!(f, "not signalled: {call}"),
            CaptureError::HandlerReplaced(signal) => write!(
                f,
                "not signalled: the application installed its own handler for signal {signal}, \
                 pollwatch's capture signal (set POLLWATCH_SIGNAL to a realtime signal it does \
                 not use)"
            ),
            CaptureError::AwaitingLate => {
                f.write_str("every capture buffer waits for a late stack; try again")
            }
            CaptureError::SignalBlocked => f.write_str(
                "not signalled: the thread blocks the capture signal or has one pending",
            ),
        }
    }
}

impl std::error::Error for CaptureError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_human_text() {
        let cases = [
            (
                Target::File {
                    fd: 3,
                    path: "/data/users.json".into(),
                },
                "/data/users.json",
            ),
            (
                Target::Socket {
                    fd: 4,
                    protocol: "tcp",
                    local: "127.0.0.1:5000".into(),
                    peer: Some("127.0.0.1:6000".into()),
                },
                "TCP 127.0.0.1:5000 -> 127.0.0.1:6000",
            ),
            (
                Target::Socket {
                    fd: 4,
                    protocol: "unix",
                    local: "/run/app.sock".into(),
                    peer: None,
                },
                "Unix socket /run/app.sock",
            ),
            (
                Target::Futex { addr: 0x1000 },
                "a lock or condition variable (futex 0x1000)",
            ),
            (Target::Sleep, "a sleep"),
            (
                Target::MemoryMapLock {
                    others: vec![
                        ThreadInCall {
                            tid: 12,
                            name: "pollwatch-report".into(),
                            syscall: "munmap",
                        },
                        ThreadInCall {
                            tid: 15,
                            name: "worker".into(),
                            syscall: "mmap",
                        },
                    ],
                },
                "the memory-map lock (other threads in memory-map calls: \"pollwatch-report\" \
                 (tid 12) in munmap(), \"worker\" (tid 15) in mmap())",
            ),
            (
                Target::Pipe {
                    fd: 5,
                    link: "pipe:[123]".into(),
                },
                "pipe:[123]",
            ),
            (
                Target::Fd {
                    fd: 6,
                    link: "anon_inode:[eventpoll]".into(),
                },
                "fd 6 (anon_inode:[eventpoll])",
            ),
        ];
        for (target, text) in cases {
            assert_eq!(target.to_string(), text);
        }
    }

    #[test]
    fn calls_a_signal_would_interrupt_read_as_human_text() {
        let call = |syscall, reason| Unrestartable { syscall, reason };
        assert_eq!(
            call("recvfrom", NoRestart::ReceiveTimeout).to_string(),
            "the thread was in recvfrom() with a receive timeout, which a signal would \
             interrupt"
        );
        assert_eq!(
            call("sendto", NoRestart::SendTimeout).to_string(),
            "the thread was in sendto() with a send timeout, which a signal would interrupt"
        );
        assert_eq!(
            call("semop", NoRestart::Never).to_string(),
            "the thread was in semop(), which a signal would interrupt (the kernel never \
             restarts it)"
        );
        assert_eq!(
            call("recvmmsg", NoRestart::TimeoutArgument).to_string(),
            "the thread was in recvmmsg() with a timeout, which a signal would interrupt"
        );
        assert_eq!(
            CaptureError::WouldInterrupt(call("poll", NoRestart::TimeoutArgument)).to_string(),
            "not signalled: the thread was in poll() with a timeout, which a signal would \
             interrupt"
        );
    }

    #[test]
    fn run_states_from_letters_and_as_text() {
        assert_eq!(RunState::from_letter('R').to_string(), "running on CPU");
        assert_eq!(RunState::from_letter('S').to_string(), "sleeping");
        assert_eq!(
            RunState::from_letter('D').to_string(),
            "in uninterruptible IO"
        );
        assert_eq!(RunState::from_letter('t'), RunState::Stopped);
        assert_eq!(RunState::from_letter('I'), RunState::Other('I'));
    }
}

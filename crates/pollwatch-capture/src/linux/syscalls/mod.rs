//! Syscall names, per architecture, from the C library's own numbering.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
use aarch64::TABLE;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64::TABLE;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const TABLE: &[(i64, &str)] = &[];

/// The name of syscall `number` on this architecture.
pub(crate) fn name(number: u64) -> Option<&'static str> {
    let number = i64::try_from(number).ok()?;
    TABLE
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

/// Syscalls whose first argument is the file descriptor they wait on (or work on), so that
/// `/proc/self/fd/<arg0>` names their target.
pub(crate) const FD_FIRST: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "accept",
    "accept4",
    "connect",
    "fsync",
    "fdatasync",
    "flock",
    "fstat",
    "getdents64",
    "sendfile",
    "splice",
    "copy_file_range",
    "ftruncate",
    "ioctl",
    "fcntl",
    "sync_file_range",
    "lseek",
    "close",
    "fallocate",
    "fstatfs",
    "fadvise64",
    "syncfs",
    "shutdown",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "io_uring_enter",
];

/// Syscalls that sleep for a time.
pub(crate) const SLEEPS: &[&str] = &["nanosleep", "clock_nanosleep"];

/// Syscalls that change the process's memory map, taking its memory-map lock for writing: a
/// thread asleep in one waits for that lock.
pub(crate) const MEMORY_MAP: &[&str] = &[
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "mlock",
];

/// Syscalls that wait on a futex word (locks, condition variables, thread parking).
pub(crate) const FUTEXES: &[&str] = &["futex", "futex_waitv"];

/// What the capture signal's handler, installed with `SA_RESTART`, does to a call a thread
/// sleeps in (man 7 signal, "Interruption of system calls and library functions by signal
/// handlers").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnSignal {
    /// The kernel restarts the call after the handler: the caller never notices. Every
    /// syscall not in [`ON_SIGNAL`] (file I/O, `wait4`, `flock`, `openat` of a FIFO, ...).
    Restarted,
    /// The kernel never restarts it: the caller gets `EINTR` (or a shortened wait).
    Never,
    /// Not always restarted, but its callers wait again: a sleep returns the time left,
    /// which `std::thread::sleep` (like any sleep loop) sleeps again; a futex wait with a
    /// timeout returns `EINTR`, and every futex waiter (std's and parking_lot's locks, condition
    /// variables and thread parking, glibc's pthread functions) checks its word and waits
    /// again, as it must after a spurious wakeup. (Without a timeout a futex wait is restarted.)
    Retried,
    /// A socket call: never restarted when the socket has one of `timeouts` set (the kernel
    /// turns the interrupted wait into `EINTR`), or when argument `timeout_arg` (a pointer to
    /// a timeout) is not null; restarted otherwise, and on descriptors that are not sockets.
    Socket {
        timeouts: &'static [SocketTimeout],
        timeout_arg: Option<usize>,
    },
    /// A wait for descriptors: never restarted. With a timeout, the interrupted wait returns
    /// early, which its caller may take for its timeout or an error. Without one (`timeout`
    /// says forever), its callers wait again: an early return shortens no wait, and every
    /// caller has to loop on `EINTR` for any signal the process takes (std's
    /// `Command::output` polls its pipes so, and mio's and tokio's event loops ignore it).
    Wait { timeout: TimeoutArg },
}

/// Where a wait's timeout is, and how it says "forever".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeoutArg {
    /// This argument is an `int` of milliseconds; negative is forever.
    Millis(usize),
    /// This argument points to a `timespec` or `timeval`; null is forever.
    Pointer(usize),
}

impl TimeoutArg {
    /// Whether a call with `args` waits forever.
    pub(crate) fn forever(self, args: &[u64; 6]) -> bool {
        match self {
            // An `int` argument: the kernel reads the register's low 32 bits.
            TimeoutArg::Millis(i) => (args[i] as u32 as i32).is_negative(),
            TimeoutArg::Pointer(i) => args[i] == 0,
        }
    }
}

/// A socket's timeout option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketTimeout {
    /// `SO_RCVTIMEO`.
    Receive,
    /// `SO_SNDTIMEO`.
    Send,
}

/// Receiving (and accepting) waits on the receive timeout.
const RECEIVE: OnSignal = OnSignal::Socket {
    timeouts: &[SocketTimeout::Receive],
    timeout_arg: None,
};

/// Sending (and connecting) waits on the send timeout in Linux's code; man 7 signal names
/// the receive timeout for these calls. A socket with either is not signalled.
const SEND: OnSignal = OnSignal::Socket {
    timeouts: &[SocketTimeout::Send, SocketTimeout::Receive],
    timeout_arg: None,
};

const fn wait(timeout: TimeoutArg) -> OnSignal {
    OnSignal::Wait { timeout }
}

/// The calls a signal handler does not simply restart, by name (the architecture's
/// [`TABLE`] gives the name of a number). Every other call is [`OnSignal::Restarted`].
pub(crate) const ON_SIGNAL: &[(&str, OnSignal)] = &[
    // Socket input and output: restarted unless the socket has a timeout. On a file, pipe,
    // terminal or eventfd, `read`/`write` and their vector forms are restarted.
    ("read", RECEIVE),
    ("readv", RECEIVE),
    ("recvfrom", RECEIVE),
    ("recvmsg", RECEIVE),
    (
        "recvmmsg",
        OnSignal::Socket {
            timeouts: &[SocketTimeout::Receive],
            // recvmmsg(fd, msgvec, vlen, flags, timeout)
            timeout_arg: Some(4),
        },
    ),
    ("accept", RECEIVE),
    ("accept4", RECEIVE),
    ("write", SEND),
    ("writev", SEND),
    ("sendto", SEND),
    ("sendmsg", SEND),
    ("sendmmsg", SEND),
    ("connect", SEND),
    // Descriptor multiplexing: poll(fds, nfds, timeout_ms), ppoll(fds, nfds, timespec, ..),
    // select(n, r, w, e, timeval), pselect6(n, r, w, e, timespec, ..),
    // epoll_wait(epfd, events, max, timeout_ms), epoll_pwait2(epfd, events, max, timespec, ..).
    ("poll", wait(TimeoutArg::Millis(2))),
    ("ppoll", wait(TimeoutArg::Pointer(2))),
    ("select", wait(TimeoutArg::Pointer(4))),
    ("pselect6", wait(TimeoutArg::Pointer(4))),
    ("epoll_wait", wait(TimeoutArg::Millis(3))),
    ("epoll_pwait", wait(TimeoutArg::Millis(3))),
    ("epoll_pwait2", wait(TimeoutArg::Pointer(3))),
    // Waiting for signals.
    ("pause", OnSignal::Never),
    ("rt_sigsuspend", OnSignal::Never),
    ("rt_sigtimedwait", OnSignal::Never),
    // System V IPC.
    ("msgrcv", OnSignal::Never),
    ("msgsnd", OnSignal::Never),
    ("semop", OnSignal::Never),
    ("semtimedop", OnSignal::Never),
    // Asynchronous I/O completions (io_uring's wait returns EINTR too).
    ("io_getevents", OnSignal::Never),
    ("io_pgetevents", OnSignal::Never),
    ("io_uring_enter", OnSignal::Never),
    // A call the kernel is resuming after a stop (a sleep, poll or futex wait with a
    // timeout): a handler makes it return EINTR whatever it was.
    ("restart_syscall", OnSignal::Never),
    // Sleeps and futex waits: waited again by their callers.
    ("nanosleep", OnSignal::Retried),
    ("clock_nanosleep", OnSignal::Retried),
    ("futex", OnSignal::Retried),
    ("futex_waitv", OnSignal::Retried),
];

/// What a signal handler does to the call named `name`.
pub(crate) fn on_signal(name: &str) -> OnSignal {
    ON_SIGNAL
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(OnSignal::Restarted, |(_, on)| *on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_blocking_syscalls_have_names() {
        for wanted in [
            "read",
            "write",
            "pread64",
            "pwrite64",
            "readv",
            "writev",
            "openat",
            "close",
            "fsync",
            "fdatasync",
            "recvfrom",
            "recvmsg",
            "sendto",
            "sendmsg",
            "accept4",
            "connect",
            "ppoll",
            "pselect6",
            "epoll_pwait",
            "futex",
            "nanosleep",
            "clock_nanosleep",
            "wait4",
            "flock",
            "fcntl",
            "sendfile",
            "splice",
            "copy_file_range",
            "statx",
            "newfstatat",
            "getdents64",
            "mmap",
            "ioctl",
        ] {
            assert!(
                TABLE.iter().any(|(_, name)| *name == wanted),
                "{wanted} missing"
            );
        }
        assert!(TABLE.len() >= 60);
    }

    #[test]
    fn numbers_and_names_are_unique() {
        for (i, (number, name)) in TABLE.iter().enumerate() {
            for (other_number, other_name) in &TABLE[i + 1..] {
                assert_ne!(number, other_number, "{name} / {other_name}");
                assert_ne!(name, other_name);
            }
        }
    }

    #[test]
    fn lookups_by_number() {
        let read = TABLE.iter().find(|(_, n)| *n == "read").unwrap().0;
        assert_eq!(name(u64::try_from(read).unwrap()), Some("read"));
        assert_eq!(name(999_999), None);
        assert_eq!(name(u64::MAX), None);
    }

    #[test]
    fn every_syscall_of_the_c_library_is_named() {
        #[cfg(target_arch = "x86_64")]
        for (number, expected) in [
            (9, "mmap"),
            (10, "mprotect"),
            (11, "munmap"),
            (333, "io_pgetevents"),
        ] {
            assert_eq!(name(number), Some(expected));
        }
        #[cfg(target_arch = "aarch64")]
        for (number, expected) in [(222, "mmap"), (226, "mprotect"), (215, "munmap")] {
            assert_eq!(name(number), Some(expected));
        }
        // Numbers are unique: a look names one call.
        let mut numbers: Vec<i64> = TABLE.iter().map(|(n, _)| *n).collect();
        numbers.dedup();
        assert_eq!(numbers.len(), TABLE.len());
    }

    #[test]
    fn classification_tables_only_name_known_syscalls_or_other_architectures() {
        // Names absent here exist on the other architecture (x86_64 has epoll_wait, aarch64
        // does not); a typo would be absent on both and show up on x86_64 CI.
        #[cfg(target_arch = "x86_64")]
        for name in FD_FIRST
            .iter()
            .chain(SLEEPS)
            .chain(FUTEXES)
            .chain(ON_SIGNAL.iter().map(|(name, _)| name))
        {
            assert!(TABLE.iter().any(|(_, n)| n == name), "{name}");
        }
    }

    #[test]
    fn what_a_signal_does_to_each_call() {
        for (waits, timeout) in [
            ("poll", TimeoutArg::Millis(2)),
            ("ppoll", TimeoutArg::Pointer(2)),
            ("select", TimeoutArg::Pointer(4)),
            ("pselect6", TimeoutArg::Pointer(4)),
            ("epoll_wait", TimeoutArg::Millis(3)),
            ("epoll_pwait", TimeoutArg::Millis(3)),
            ("epoll_pwait2", TimeoutArg::Pointer(3)),
        ] {
            assert_eq!(on_signal(waits), OnSignal::Wait { timeout }, "{waits}");
        }
        for never in [
            "pause",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "msgrcv",
            "msgsnd",
            "semop",
            "semtimedop",
            "io_getevents",
            "io_pgetevents",
            "restart_syscall",
        ] {
            assert_eq!(on_signal(never), OnSignal::Never, "{never}");
        }
        for retried in ["nanosleep", "clock_nanosleep", "futex"] {
            assert_eq!(on_signal(retried), OnSignal::Retried, "{retried}");
        }
        for restarted in ["pread64", "fsync", "openat", "wait4", "flock", "getrandom"] {
            assert_eq!(on_signal(restarted), OnSignal::Restarted, "{restarted}");
        }
        for receive in ["read", "readv", "recvfrom", "recvmsg", "accept", "accept4"] {
            assert_eq!(on_signal(receive), RECEIVE, "{receive}");
        }
        for send in [
            "write", "writev", "sendto", "sendmsg", "sendmmsg", "connect",
        ] {
            assert_eq!(on_signal(send), SEND, "{send}");
        }
        assert_eq!(
            on_signal("recvmmsg"),
            OnSignal::Socket {
                timeouts: &[SocketTimeout::Receive],
                timeout_arg: Some(4)
            }
        );
    }

    #[test]
    fn a_wait_is_forever_with_a_negative_millisecond_timeout_or_a_null_pointer() {
        let millis = TimeoutArg::Millis(2);
        assert!(
            millis.forever(&[3, 0x7f00, 0xffff_ffff, 0, 0, 0]),
            "-1 as an int"
        );
        assert!(
            millis.forever(&[3, 0x7f00, u64::MAX, 0, 0, 0]),
            "-1 sign-extended"
        );
        assert!(
            !millis.forever(&[3, 0x7f00, 0, 0, 0, 0]),
            "0: return at once"
        );
        assert!(!millis.forever(&[3, 0x7f00, 2_000, 0, 0, 0]));
        let pointer = TimeoutArg::Pointer(4);
        assert!(pointer.forever(&[8, 0x7f00, 0, 0, 0, 0]));
        assert!(!pointer.forever(&[8, 0x7f00, 0, 0, 0x7ffd_1000, 0]));
    }

    #[test]
    fn each_call_is_classified_once() {
        for (i, (name, _)) in ON_SIGNAL.iter().enumerate() {
            assert!(
                !ON_SIGNAL[i + 1..].iter().any(|(other, _)| other == name),
                "{name}"
            );
        }
    }
}

//! Whether the capture signal would interrupt what a thread is doing: the call it sleeps in,
//! from `/proc/self/task/<tid>/syscall`, classified by [`syscalls::on_signal`], and for
//! socket calls the socket's timeouts, from `getsockopt` on the call's descriptor (the
//! threads of a process share one descriptor table, so it is this thread's descriptor too).
//!
//! Read just before the signal is sent. Reading `syscall` is quick for a sleeping thread (the
//! kernel reads its saved registers) and for a running one (the file then says `running`).

use crate::{NoRestart, Tid, Unrestartable};

use super::proc::parse_syscall;
use super::syscalls::{self, OnSignal, SocketTimeout};

/// The call thread `tid` sleeps in, when the capture signal would interrupt it. `None` when
/// a signal is harmless: the thread runs (on a CPU, or in user space), sleeps in a call the
/// kernel restarts or its caller waits again, in a syscall this architecture's table does
/// not name, or is gone (sending the signal then fails).
pub(crate) fn unrestartable(tid: Tid) -> Option<Unrestartable> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let (number, args) = parse_syscall(&text)?;
    classify(syscalls::name(number)?, &args)
}

/// Whether a signal handler would interrupt `syscall`, called with `args`.
pub(crate) fn classify(syscall: &'static str, args: &[u64; 6]) -> Option<Unrestartable> {
    let reason = match syscalls::on_signal(syscall) {
        OnSignal::Restarted | OnSignal::Retried => return None,
        OnSignal::Never => NoRestart::Never,
        OnSignal::Wait { timeout } if timeout.forever(args) => return None,
        OnSignal::Wait { .. } => NoRestart::TimeoutArgument,
        OnSignal::Socket {
            timeouts,
            timeout_arg,
        } => {
            // An `int` argument: the kernel reads the register's low 32 bits.
            let fd = i32::try_from(args[0] & 0xffff_ffff).ok()?;
            match timeouts.iter().copied().find(|&t| has_timeout(fd, t)) {
                Some(SocketTimeout::Receive) => NoRestart::ReceiveTimeout,
                Some(SocketTimeout::Send) => NoRestart::SendTimeout,
                None if timeout_arg.is_some_and(|i| args[i] != 0) => NoRestart::TimeoutArgument,
                None => return None,
            }
        }
    };
    Some(Unrestartable { syscall, reason })
}

/// The size of the `timeval` that `SO_RCVTIMEO`/`SO_SNDTIMEO` read into.
const TIMEVAL_LEN: libc::socklen_t = std::mem::size_of::<libc::timeval>() as libc::socklen_t;

/// Whether descriptor `fd` is a socket with `timeout` set (not zero, which means none).
/// False for a descriptor that is not a socket, or is closed.
fn has_timeout(fd: i32, timeout: SocketTimeout) -> bool {
    let option = match timeout {
        SocketTimeout::Receive => libc::SO_RCVTIMEO,
        SocketTimeout::Send => libc::SO_SNDTIMEO,
    };
    let mut value = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = TIMEVAL_LEN;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, a timeval owned here, and
    // stores the length written into `len`; on a descriptor that is not an open socket it
    // fails (ENOTSOCK, EBADF) without writing. It only reads the socket's options.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            std::ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    result == 0 && (value.tv_sec != 0 || value.tv_usec != 0)
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::*;

    const RECEIVING: &[&str] = &["read", "readv", "recvfrom", "recvmsg", "recvmmsg"];
    const SENDING: &[&str] = &[
        "write", "writev", "sendto", "sendmsg", "sendmmsg", "connect",
    ];

    /// A call's arguments with descriptor `fd` first.
    fn on(fd: &impl AsRawFd) -> [u64; 6] {
        [u64::try_from(fd.as_raw_fd()).unwrap(), 0, 0, 0, 0, 0]
    }

    fn reason(syscall: &'static str, args: &[u64; 6]) -> Option<NoRestart> {
        classify(syscall, args).map(|call| {
            assert_eq!(call.syscall, syscall);
            call.reason
        })
    }

    /// A connected pair of TCP sockets on the loopback interface.
    fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn a_socket_without_timeouts_is_restarted() {
        let (client, _server) = connected();
        for call in RECEIVING
            .iter()
            .chain(SENDING)
            .chain(&["accept", "accept4"])
        {
            assert_eq!(reason(call, &on(&client)), None, "{call}");
        }
    }

    #[test]
    fn a_receive_timeout_makes_socket_calls_unrestartable() {
        let (client, _server) = connected();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        for call in RECEIVING {
            assert_eq!(
                reason(call, &on(&client)),
                Some(NoRestart::ReceiveTimeout),
                "{call}"
            );
        }
        // man 7 signal names the receive timeout for sending and connecting too.
        for call in SENDING {
            assert_eq!(
                reason(call, &on(&client)),
                Some(NoRestart::ReceiveTimeout),
                "{call}"
            );
        }
    }

    #[test]
    fn a_send_timeout_makes_sending_and_connecting_unrestartable() {
        let (client, _server) = connected();
        client
            .set_write_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        for call in SENDING {
            assert_eq!(
                reason(call, &on(&client)),
                Some(NoRestart::SendTimeout),
                "{call}"
            );
        }
        for call in RECEIVING {
            assert_eq!(reason(call, &on(&client)), None, "{call}");
        }
    }

    #[test]
    fn accepting_on_a_listener_with_a_receive_timeout_is_unrestartable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(reason("accept4", &on(&listener)), None);
        let timeout = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: the listener's descriptor is open; setsockopt reads `TIMEVAL_LEN` bytes of
        // `timeout`, a timeval.
        let set = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(timeout).cast(),
                TIMEVAL_LEN,
            )
        };
        assert_eq!(set, 0);
        for call in ["accept", "accept4"] {
            assert_eq!(
                reason(call, &on(&listener)),
                Some(NoRestart::ReceiveTimeout),
                "{call}"
            );
        }
    }

    #[test]
    fn recvmmsg_with_a_timeout_argument_is_unrestartable() {
        let (client, _server) = connected();
        let mut args = on(&client);
        args[4] = 0x7ffd_0000_1000;
        assert_eq!(reason("recvmmsg", &args), Some(NoRestart::TimeoutArgument));
        assert_eq!(
            reason("recvmsg", &args),
            None,
            "recvmsg has no timeout argument"
        );
    }

    #[test]
    fn files_and_pipes_are_restarted() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        for call in RECEIVING.iter().chain(SENDING) {
            assert_eq!(reason(call, &on(&file)), None, "{call}");
        }
        let mut fds = [0i32; 2];
        // SAFETY: `fds` is a writable array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let pipe = |fd: i32| [u64::try_from(fd).unwrap(), 0, 0, 0, 0, 0];
        assert_eq!(reason("read", &pipe(fds[0])), None);
        assert_eq!(reason("write", &pipe(fds[1])), None);
        // SAFETY: both descriptors are open and owned here; nothing uses them afterwards.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        assert_eq!(
            reason("read", &pipe(fds[0])),
            None,
            "a closed descriptor is not a socket"
        );
    }

    #[test]
    fn descriptor_waits_with_a_timeout_are_unrestartable_and_without_one_retried() {
        // poll(fds, 1, 30_000) and poll(fds, 1, -1); epoll_wait(epfd, events, 64, ..).
        assert_eq!(
            reason("poll", &[0x7f00, 1, 30_000, 0, 0, 0]),
            Some(NoRestart::TimeoutArgument)
        );
        assert_eq!(reason("poll", &[0x7f00, 1, 0xffff_ffff, 0, 0, 0]), None);
        assert_eq!(
            reason("epoll_wait", &[5, 0x7f00, 64, 10, 0, 0]),
            Some(NoRestart::TimeoutArgument)
        );
        assert_eq!(
            reason("epoll_pwait", &[5, 0x7f00, 64, u64::MAX, 0, 0]),
            None
        );
        // ppoll(fds, 1, &timespec, ..), pselect6(n, r, w, e, &timespec, ..); null: forever.
        assert_eq!(
            reason("ppoll", &[0x7f00, 1, 0x7ffd_1000, 0, 8, 0]),
            Some(NoRestart::TimeoutArgument)
        );
        assert_eq!(reason("ppoll", &[0x7f00, 1, 0, 0, 8, 0]), None);
        assert_eq!(
            reason("pselect6", &[4, 0x7f00, 0, 0, 0x7ffd_1000, 0]),
            Some(NoRestart::TimeoutArgument)
        );
        assert_eq!(reason("pselect6", &[4, 0x7f00, 0, 0, 0, 0]), None);
    }

    #[test]
    fn signal_waits_are_never_restarted_and_sleeps_and_futexes_are_retried() {
        let (client, _server) = connected();
        for call in [
            "pause",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "semop",
            "io_getevents",
        ] {
            assert_eq!(reason(call, &on(&client)), Some(NoRestart::Never), "{call}");
            assert_eq!(reason(call, &[0; 6]), Some(NoRestart::Never), "{call}");
        }
        for call in ["nanosleep", "clock_nanosleep", "futex", "openat", "fsync"] {
            assert_eq!(reason(call, &[0; 6]), None, "{call}");
        }
    }

    #[test]
    fn the_calling_thread_is_in_no_unrestartable_call() {
        // Reading its own `syscall` file, a thread is in `read`, on a file.
        assert_eq!(unrestartable(super::super::signal::gettid()), None);
        assert_eq!(unrestartable(0), None, "no such thread");
    }
}

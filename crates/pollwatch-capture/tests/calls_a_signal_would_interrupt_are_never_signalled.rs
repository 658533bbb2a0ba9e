//! A capture never changes what the captured thread sees. A thread sleeping in a call the
//! kernel would not restart after the signal's handler (a socket read or write with a timeout,
//! `poll`) is not signalled: `capture` says why, and the call completes as if nothing had
//! looked. The same read without a timeout is restarted by the kernel, and is captured.
#![cfg(target_os = "linux")]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use pollwatch_capture::{CaptureError, Inspector, NoRestart, ThreadState, Tid, Unrestartable};
use support::{capture, function_names, thread_with_tid, wait_for_state, TIMEOUT};

const CAPTURES: usize = 200;

/// A connected pair of TCP sockets on the loopback interface: (client, server).
fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Whether the thread sleeps in one of `names`.
fn sleeps_in(state: &ThreadState, names: &[&str]) -> bool {
    state.run == pollwatch_capture::RunState::Sleeping
        && state
            .syscall
            .as_ref()
            .and_then(|s| s.name)
            .is_some_and(|name| names.contains(&name))
}

/// The syscall the thread was seen in.
fn syscall_of(state: Option<ThreadState>) -> &'static str {
    state.and_then(|s| s.syscall?.name).unwrap_or("none")
}

/// `CAPTURES` captures of `tid`, each retried while another test's capture is in flight.
fn captures(inspector: &dyn Inspector, tid: Tid) -> Vec<Result<usize, CaptureError>> {
    (0..CAPTURES)
        .map(|_| capture(inspector, tid).map(|stack| stack.ips.len()))
        .collect()
}

/// Asserts every capture was refused because of `call`.
fn assert_all_refused(results: &[Result<usize, CaptureError>], call: Unrestartable) {
    for result in results {
        assert_eq!(result, &Err(CaptureError::WouldInterrupt(call)));
    }
}

#[inline(never)]
fn reads_one_answer(mut stream: TcpStream) -> std::io::Result<usize> {
    let mut buf = [0u8; 4];
    // One read, not retried: an interruption is returned as `Interrupted`.
    stream.read(&mut buf)
}

#[test]
fn a_socket_read_with_a_timeout_is_never_signalled() {
    let inspector = pollwatch_capture::inspector(true);
    let (client, mut server) = connected();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (tid, reader) = thread_with_tid(move || reads_one_answer(client));
    let (state, seen) = wait_for_state(&*inspector, tid, |s| {
        sleeps_in(s, &["recvfrom", "recvmsg", "read"])
    });
    let syscall = syscall_of(state);
    let results = captures(&*inspector, tid);
    server.write_all(b"late").unwrap();
    let read = reader.join().unwrap();

    assert!(seen, "never seen reading the socket: {syscall}");
    assert_all_refused(
        &results,
        Unrestartable {
            syscall,
            reason: NoRestart::ReceiveTimeout,
        },
    );
    assert_eq!(read.ok(), Some(4), "the read returns the answer");
}

#[test]
fn a_socket_read_without_a_timeout_is_captured_and_restarted() {
    let inspector = pollwatch_capture::inspector(true);
    let (client, mut server) = connected();
    let (tid, reader) = thread_with_tid(move || reads_one_answer(client));
    let (state, seen) = wait_for_state(&*inspector, tid, |s| {
        sleeps_in(s, &["recvfrom", "recvmsg", "read"])
    });
    // From before the check to the stack stored: a bound on the time in which the thread
    // could enter a call the signal would interrupt after the check let it through.
    let mut windows = Vec::new();
    let mut last = None;
    while windows.len() < CAPTURES {
        let started = Instant::now();
        match inspector.capture(tid, TIMEOUT) {
            Err(CaptureError::Busy) => std::thread::yield_now(),
            Ok(stack) => {
                windows.push(stack.captured_at.saturating_duration_since(started));
                last = Some(stack);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    server.write_all(b"late").unwrap();
    let read = reader.join().unwrap();

    assert!(seen, "never seen reading the socket: {}", syscall_of(state));
    let names = function_names(&last.expect("a stack"));
    assert!(
        names.iter().any(|n| n.ends_with("reads_one_answer")),
        "{names:#?}"
    );
    assert_eq!(
        read.ok(),
        Some(4),
        "restarted {CAPTURES} times, the read returns the answer"
    );
    windows.sort();
    println!(
        "{CAPTURES} captures (check -> stack stored): p50 {:?}, p99 {:?}, max {:?}",
        windows[CAPTURES / 2],
        windows[CAPTURES * 99 / 100],
        windows[CAPTURES - 1]
    );
}

#[inline(never)]
fn sends_in_one_write(mut stream: TcpStream, bytes: usize) -> std::io::Result<usize> {
    // One write, not retried: an interruption after part of it is sent returns a short count.
    stream.write(&vec![7u8; bytes])
}

#[test]
fn a_socket_write_with_a_timeout_is_never_signalled() {
    // More than the loopback's send and receive buffers hold: the write waits for the peer.
    const BYTES: usize = 64 << 20;
    let inspector = pollwatch_capture::inspector(true);
    let (client, mut server) = connected();
    client
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (tid, writer) = thread_with_tid(move || sends_in_one_write(client, BYTES));
    let (state, seen) = wait_for_state(&*inspector, tid, |s| {
        sleeps_in(s, &["sendto", "sendmsg", "write"])
    });
    let syscall = syscall_of(state);
    let results = captures(&*inspector, tid);
    let mut received = 0;
    let mut buf = vec![0u8; 1 << 20];
    while received < BYTES {
        match server.read(&mut buf).unwrap() {
            // The writer gave up (an interrupted write returns a short count).
            0 => break,
            n => received += n,
        }
    }
    let written = writer.join().unwrap();

    assert!(seen, "never seen writing to the socket: {syscall}");
    assert_all_refused(
        &results,
        Unrestartable {
            syscall,
            reason: NoRestart::SendTimeout,
        },
    );
    assert_eq!(written.ok(), Some(BYTES), "the write is whole");
    assert_eq!(received, BYTES);
}

#[inline(never)]
fn polls_a_pipe(fd: i32, timeout_ms: i32) -> (i32, i32) {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pollfd` is one valid, writable pollfd.
    let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    (ready, errno)
}

/// Polls a pipe until it is readable, as std's `Command::output` polls its pipes: a poll
/// without a timeout, retried on `EINTR`. Returns how many polls were interrupted.
#[inline(never)]
fn polls_a_pipe_until_readable(fd: i32) -> usize {
    let mut interrupted = 0;
    loop {
        match polls_a_pipe(fd, -1) {
            (1, _) => return interrupted,
            (-1, libc::EINTR) => interrupted += 1,
            other => panic!("poll: {other:?}"),
        }
    }
}

/// A pipe: (read end, write end).
fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

/// Writes one byte into the pipe.
fn write_one_byte(write_end: i32) -> isize {
    // SAFETY: `write_end` is the pipe's open write end; the buffer is 1 readable byte.
    unsafe { libc::write(write_end, b"x".as_ptr().cast(), 1) }
}

/// Closes both ends of a pipe.
fn close(read_end: i32, write_end: i32) {
    // SAFETY: both descriptors are open and owned by the caller; nothing uses them after.
    unsafe {
        libc::close(read_end);
        libc::close(write_end);
    }
}

#[test]
fn a_poll_with_a_timeout_is_never_signalled() {
    let inspector = pollwatch_capture::inspector(true);
    let (read_end, write_end) = pipe();
    let (tid, poller) = thread_with_tid(move || polls_a_pipe(read_end, 30_000));
    // glibc's poll() is the poll syscall on x86_64, ppoll on aarch64.
    let (state, seen) = wait_for_state(&*inspector, tid, |s| sleeps_in(s, &["poll", "ppoll"]));
    let syscall = syscall_of(state);
    let results = captures(&*inspector, tid);
    let written = write_one_byte(write_end);
    let (ready, errno) = poller.join().unwrap();
    close(read_end, write_end);

    assert!(seen, "never seen polling: {syscall}");
    assert_all_refused(
        &results,
        Unrestartable {
            syscall,
            reason: NoRestart::TimeoutArgument,
        },
    );
    assert_eq!(written, 1);
    assert_eq!(
        ready, 1,
        "poll returns the readable pipe, not EINTR (errno {errno})"
    );
}

#[test]
fn a_poll_without_a_timeout_is_captured_and_its_caller_polls_again() {
    let inspector = pollwatch_capture::inspector(true);
    let (read_end, write_end) = pipe();
    let (tid, poller) = thread_with_tid(move || polls_a_pipe_until_readable(read_end));
    let (state, seen) = wait_for_state(&*inspector, tid, |s| sleeps_in(s, &["poll", "ppoll"]));
    let stack = capture(&*inspector, tid);
    // Seen polling again: the interrupted poll was retried.
    let (again, polling_again) =
        wait_for_state(&*inspector, tid, |s| sleeps_in(s, &["poll", "ppoll"]));
    let written = write_one_byte(write_end);
    let interrupted = poller.join().unwrap();
    close(read_end, write_end);

    assert!(seen, "never seen polling: {}", syscall_of(state));
    assert!(polling_again, "{}", syscall_of(again));
    let names = function_names(&stack.expect("a stack"));
    assert!(
        names
            .iter()
            .any(|n| n.ends_with("polls_a_pipe_until_readable")),
        "{names:#?}"
    );
    assert_eq!(written, 1);
    assert_eq!(
        interrupted, 1,
        "the one capture returned EINTR, which was retried"
    );
}

#[inline(never)]
fn reads_one_answer_retrying(mut stream: TcpStream) -> (usize, u32) {
    let mut buf = [0u8; 4];
    let mut interrupted = 0;
    loop {
        match stream.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => interrupted += 1,
            read => return (read.unwrap(), interrupted),
        }
    }
}

#[test]
fn asked_to_interrupt_any_call_a_read_with_a_timeout_is_captured() {
    let inspector = pollwatch_capture::inspector_with(pollwatch_capture::Options {
        backtraces: true,
        interrupt_any_call: true,
        signal: None,
    });
    let (client, mut server) = connected();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (tid, reader) = thread_with_tid(move || reads_one_answer_retrying(client));
    let (state, seen) = wait_for_state(&*inspector, tid, |s| {
        sleeps_in(s, &["recvfrom", "recvmsg", "read"])
    });
    let syscall = syscall_of(state);
    let result = capture(&*inspector, tid);
    server.write_all(b"late").unwrap();
    let (read, interrupted) = reader.join().unwrap();
    assert!(seen, "never seen reading the socket: {syscall}");
    let stack = result.expect("a stack, the call interrupted");
    assert!(!stack.ips.is_empty());
    assert_eq!(read, 4, "the retrying reader still gets its answer");
    assert!(
        interrupted >= 1,
        "the read was interrupted once for the stack"
    );
}

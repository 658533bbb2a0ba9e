//! Capturing a stack never changes what the application sees. A blocking socket read with a
//! read timeout (as most clients set) is a call the kernel never restarts after a signal
//! handler: the capture signal would make it fail with `Interrupted`. pollwatch does not
//! signal a thread in such a call: the stall is still reported, with the thread's state,
//! syscall and peer, and says why it has no stack. The same read without a timeout is
//! restarted by the kernel, and is captured as any other stall.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pollwatch::Report;
use pollwatch_report::Stall;
use support::Watched;

const THIS_FILE: &str = "capture_never_interrupts_a_socket_read.rs";
const THRESHOLD: Duration = Duration::from_millis(20);
const READ_TIMEOUT: Duration = Duration::from_secs(2);
const ROUNDS: usize = 10;
/// The server answers once the watchdog has looked at the blocked read this many times
/// (detection, then 2x, 4x, 8x, 16x the threshold: ~320 ms): each look is one the capture
/// signal would have interrupted.
const LOOKS: usize = 5;

/// What the rounds of one run saw.
struct Run {
    reads: Vec<std::io::Result<usize>>,
    /// The line of the blocking read, for the call site.
    line: u32,
    server: SocketAddr,
    report: Report,
}

impl Run {
    fn interrupted(&self) -> usize {
        self.reads
            .iter()
            .filter(|r| matches!(r, Err(e) if e.kind() == ErrorKind::Interrupted))
            .count()
    }

    /// Asserts that no read was interrupted, every one returned the answer, and each was a
    /// stall; returns the stalls.
    fn answered_and_stalled(&self) -> Vec<&Stall> {
        assert_eq!(self.interrupted(), 0, "{:?}", self.reads);
        for read in &self.reads {
            assert_eq!(
                read.as_ref().ok(),
                Some(&4),
                "every read returns the answer"
            );
        }
        let stalls = self.stalls();
        assert_eq!(stalls.len(), ROUNDS, "{stalls:#?}");
        stalls
    }

    fn stalls(&self) -> Vec<&Stall> {
        self.report
            .stalls
            .iter()
            .filter(|s| s.site.contains(THIS_FILE))
            .collect()
    }
}

/// One request to the server: connect, ask, and wait for the answer in one blocking
/// `TcpStream::read` (not retried: an interruption is returned). Returns the read's result
/// and its line.
fn ask(server: SocketAddr, read_timeout: Option<Duration>) -> (std::io::Result<usize>, u32) {
    let mut stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(read_timeout).unwrap();
    stream.write_all(b"ping").unwrap();
    let mut answer = [0u8; 4];
    let (read, line) = (stream.read(&mut answer), line!());
    (
        read.map(|n| if &answer[..n] == b"pong" { n } else { 0 }),
        line,
    )
}

/// The newest stall of this file's tasks, when there are `count` of them.
fn newest_of(report: &Report, count: usize) -> Option<Stall> {
    let stalls: Vec<&Stall> = report
        .stalls
        .iter()
        .filter(|s| s.site.contains(THIS_FILE))
        .collect();
    (stalls.len() == count)
        .then(|| stalls.into_iter().max_by_key(|s| s.started_at_ns).cloned())
        .flatten()
}

/// `ROUNDS` tasks, one after the other, each asking a local server that answers only once the
/// watchdog has looked at the blocked read `LOOKS` times (or the stall is over: a read that
/// failed).
fn ask_a_slow_server(read_timeout: Option<Duration>) -> Run {
    let watched = Watched::new(THRESHOLD);
    // Declared before the channel, so that a failing test drops the sender first: the server
    // then answers, and the runtime's worker is not left blocked in a read.
    let rt = watched.runtime(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let (answer_tx, answer_rx) = mpsc::channel::<()>();
    let server_thread = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4];
            conn.read_exact(&mut request).unwrap();
            // Told to answer, or the test is over.
            let _ = answer_rx.recv();
            // The client may have given up already (its read failed).
            let _ = conn.write_all(b"pong");
        }
    });
    let mut reads = Vec::new();
    let mut line = 0;
    for round in 0..ROUNDS {
        let task = watched.scope(|| rt.spawn(async move { ask(server, read_timeout) }));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let looked = newest_of(&watched.handle.report(), round + 1)
                .is_some_and(|s| s.ended || s.samples.len() + 1 >= LOOKS);
            if looked {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the watchdog never looked {LOOKS} times: {:#?}",
                watched.handle.report().stalls
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        answer_tx.send(()).unwrap();
        let (read, at) = rt.block_on(task).unwrap();
        reads.push(read);
        line = at;
    }
    server_thread.join().unwrap();
    drop(rt);
    let run = Run {
        reads,
        line,
        server,
        report: watched.final_report(),
    };
    eprintln!(
        "read timeout {read_timeout:?}: {} of {ROUNDS} reads returned the answer, {} failed \
         with Interrupted; {} stalls",
        run.reads.iter().filter(|r| matches!(r, Ok(4))).count(),
        run.interrupted(),
        run.stalls().len()
    );
    let mut held_ms: Vec<u64> = run
        .stalls()
        .iter()
        .map(|s| s.duration_ns / 1_000_000)
        .collect();
    held_ms.sort();
    eprintln!("stalls held their worker for (ms): {held_ms:?}");
    if let Some(stall) = run.stalls().first() {
        eprintln!("first stall: {}", stall.message);
    }
    run
}

/// The stall is the blocked read: a network wait on the server's socket.
fn assert_the_read(stall: &Stall, server: SocketAddr) {
    assert_eq!(stall.cause, "network", "{stall:#?}");
    assert!(
        matches!(stall.syscall.as_deref(), Some("recvfrom" | "read")),
        "{stall:#?}"
    );
    let blocked_on = stall.blocked_on.as_deref().unwrap_or("");
    assert!(
        blocked_on.starts_with("TCP ") && blocked_on.ends_with(&format!("-> {server}")),
        "the server named as the peer: {blocked_on}"
    );
}

#[test]
fn a_read_with_a_timeout_is_never_interrupted_and_its_stalls_say_why_they_have_no_stack() {
    let run = ask_a_slow_server(Some(READ_TIMEOUT));
    let stalls = run.answered_and_stalled();
    for stall in stalls {
        assert_the_read(stall, run.server);
        assert!(stall.backtrace.is_empty(), "{stall:#?}");
        assert_eq!(stall.call_site, None);
        assert_eq!(
            stall.call_site_missing.as_deref(),
            Some("would_interrupt"),
            "{stall:#?}"
        );
        let syscall = stall.syscall.as_deref().unwrap_or_default();
        assert!(
            stall.message.contains(&format!(
                "no stack: the thread was in {syscall}() with a receive timeout, which a \
                 signal would interrupt"
            )),
            "{}",
            stall.message
        );
        assert!(
            stall.samples.len() + 1 >= LOOKS,
            "looked at again, never signalled: {stall:#?}"
        );
        assert!(stall.ended);
    }
}

#[test]
fn a_read_without_a_timeout_is_restarted_and_captured() {
    let run = ask_a_slow_server(None);
    let stalls = run.answered_and_stalled();
    for stall in stalls {
        assert_the_read(stall, run.server);
        assert!(!stall.backtrace.is_empty(), "{stall:#?}");
        support::assert_call_site_at(stall, THIS_FILE, run.line);
    }
}

//! Describing a thread blocked on a socket asks the socket itself (`getsockname`,
//! `getpeername` on its descriptor), so it costs the same with 10,000 sockets open as with a
//! few: the watchdog never reads the host's whole socket tables. Prints the cost of a look
//! with few and with 10,000 sockets, and of one read of `/proc/self/net/tcp` (what a table
//! lookup would read per socket stall) for comparison:
//! `cargo test -p pollwatch-capture --test socket_stalls_cost_the_same_with_many_sockets -- --nocapture`.
#![cfg(target_os = "linux")]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use pollwatch_capture::{Inspector, RunState, Target};
use support::{thread_with_tid, wait_for_state};

const SOCKETS: usize = 10_000;

/// Raises this process's open-file limit to `want` (or its hard limit); returns the limit.
fn raise_open_files(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the rlimit owned here.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = want.min(limit.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

#[inline(never)]
fn waits_for_an_answer(mut stream: TcpStream) -> usize {
    let mut buf = [0u8; 16];
    stream.read(&mut buf).unwrap()
}

/// The median and the longest of 200 looks at `tid`, each checked to name `peer`.
fn looks(inspector: &dyn Inspector, tid: i32, peer: &str) -> (Duration, Duration) {
    let mut took: Vec<Duration> = (0..200)
        .map(|_| {
            let started = Instant::now();
            let state = inspector.thread_state(tid).unwrap();
            let elapsed = started.elapsed();
            let target = state.syscall.and_then(|s| s.target);
            let Some(Target::Socket { peer: found, .. }) = target else {
                panic!("not on its socket: {target:?}");
            };
            assert_eq!(found.as_deref(), Some(peer));
            elapsed
        })
        .collect();
    took.sort();
    (took[took.len() / 2], took[took.len() - 1])
}

#[test]
fn ten_thousand_open_sockets_cost_a_look_nothing() {
    let limit = raise_open_files(SOCKETS as u64 + 1_000);
    assert!(
        limit >= SOCKETS as u64 + 100,
        "this test needs {SOCKETS} descriptors; the hard limit is {limit}"
    );
    let inspector = pollwatch_capture::inspector(false);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = listener.local_addr().unwrap().to_string();
    let client = TcpStream::connect(&peer).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let (tid, reader) = thread_with_tid(move || waits_for_an_answer(client));
    let (_, seen) = wait_for_state(&*inspector, tid, |s| {
        s.run == RunState::Sleeping
            && s.syscall
                .as_ref()
                .is_some_and(|c| matches!(c.target, Some(Target::Socket { .. })))
    });
    assert!(seen, "the reader blocks on its socket");
    let few = looks(&*inspector, tid, &peer);

    // 5,000 connections: 10,000 more sockets in this process (and its tcp table).
    let mut open = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS / 2 {
        open.push(TcpStream::connect(&peer).unwrap());
        open.push(listener.accept().unwrap().0);
    }
    let many = looks(&*inspector, tid, &peer);
    let started = Instant::now();
    let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    let table_read = started.elapsed();
    eprintln!(
        "a look at a thread blocked on a socket: median {:?}, max {:?} with {} sockets; \
         median {:?}, max {:?} with {} more; one read of /proc/self/net/tcp ({} rows, {} bytes) \
         takes {table_read:?}",
        few.0,
        few.1,
        3,
        many.0,
        many.1,
        open.len(),
        table.lines().count() - 1,
        table.len()
    );
    // The claim: the same cost. A look that read the host's socket tables would take
    // milliseconds with 10,000 sockets (the table read above) against microseconds with 3.
    assert!(
        many.0 <= few.0 * 4 + Duration::from_micros(200),
        "a look's median grew from {:?} to {:?} with {} more sockets",
        few.0,
        many.0,
        open.len()
    );
    server.write_all(b"late").unwrap();
    assert_eq!(reader.join().unwrap(), 4);
}

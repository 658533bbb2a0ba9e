//! A thread blocked in a syscall shows the syscall and what it waits on: the path of a FIFO,
//! both ends of a TCP connection, a futex.
#![cfg(target_os = "linux")]

mod support;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pollwatch_capture::{RunState, Target};
use support::{capture, function_names, in_syscall, thread_with_tid, wait_for_state};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "pollwatch-capture-{name}-{}-{}",
            std::process::id(),
            pollwatch_capture::current_tid()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[inline(never)]
fn reads_the_fifo(path: PathBuf) -> Vec<u8> {
    // Blocks in open(2) until a writer opens the FIFO, then in read(2) until it writes.
    let mut fifo = std::fs::File::open(path).unwrap();
    let mut buf = [0u8; 5];
    fifo.read_exact(&mut buf).unwrap();
    buf.to_vec()
}

#[test]
fn a_thread_reading_a_fifo_is_in_read_on_the_fifo_path() {
    let inspector = pollwatch_capture::inspector(true);
    let dir = TempDir::new("fifo");
    let path = dir.0.join("requests.fifo");
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c_path is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let reader_path = path.clone();
    let (tid, reader) = thread_with_tid(move || reads_the_fifo(reader_path));

    // Until a writer opens it, the reader waits in open.
    let (opening, seen_opening) = wait_for_state(&*inspector, tid, |s| {
        in_syscall(s, "openat") || in_syscall(s, "open")
    });
    let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let (reading, seen_reading) = wait_for_state(&*inspector, tid, |s| in_syscall(s, "read"));
    let stack = capture(&*inspector, tid);
    writer.write_all(b"hello").unwrap();
    assert_eq!(reader.join().unwrap(), b"hello");

    assert!(seen_opening, "never seen opening the FIFO: {opening:?}");
    assert!(seen_reading, "never seen reading the FIFO: {reading:?}");
    let reading = reading.unwrap();
    assert_eq!(reading.run, RunState::Sleeping);
    // readlink(/proc/self/fd/N) of a named FIFO gives its path (canonical: /tmp may be a link).
    let canonical = std::fs::canonicalize(&path).unwrap();
    match reading.syscall.unwrap().target {
        Some(Target::File { path: found, .. }) => {
            assert_eq!(found, canonical.display().to_string());
        }
        other => panic!("expected the FIFO's path, got {other:?}"),
    }
    let names = function_names(&stack.expect("capture"));
    assert!(
        names.iter().any(|n| n.ends_with("reads_the_fifo")),
        "{names:#?}"
    );
}

#[inline(never)]
fn waits_for_an_answer(mut stream: TcpStream) -> usize {
    let mut buf = [0u8; 16];
    stream.read(&mut buf).unwrap()
}

#[test]
fn a_thread_reading_a_silent_tcp_peer_shows_both_socket_ends() {
    let inspector = pollwatch_capture::inspector(true);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let local = client.local_addr().unwrap().to_string();
    let peer = listener.local_addr().unwrap().to_string();
    let (tid, reader) = thread_with_tid(move || waits_for_an_answer(client));

    let (state, seen) = wait_for_state(&*inspector, tid, |s| {
        s.run == RunState::Sleeping
            && s.syscall
                .as_ref()
                .is_some_and(|c| matches!(c.target, Some(Target::Socket { .. })))
    });
    server.write_all(b"late").unwrap();
    assert_eq!(reader.join().unwrap(), 4);

    assert!(seen, "never seen waiting on the socket: {state:?}");
    let syscall = state.unwrap().syscall.unwrap();
    assert!(
        matches!(syscall.name, Some("recvfrom" | "recvmsg" | "read")),
        "{syscall:?}"
    );
    let target = syscall.target.unwrap();
    let Target::Socket {
        protocol,
        local: found_local,
        peer: found_peer,
        ..
    } = &target
    else {
        panic!("not a socket: {target:?}");
    };
    assert_eq!(*protocol, "tcp");
    assert_eq!(*found_local, local);
    assert_eq!(found_peer.as_deref(), Some(peer.as_str()));
    assert_eq!(target.to_string(), format!("TCP {local} -> {peer}"));
}

#[inline(never)]
fn takes_the_lock(lock: Arc<Mutex<u32>>) -> u32 {
    *lock.lock().unwrap()
}

#[test]
fn a_thread_waiting_on_a_contended_mutex_is_in_futex() {
    let inspector = pollwatch_capture::inspector(true);
    let lock = Arc::new(Mutex::new(7));
    let held = lock.lock().unwrap();
    let contender = lock.clone();
    let (tid, waiter) = thread_with_tid(move || takes_the_lock(contender));

    let (state, seen) = wait_for_state(&*inspector, tid, |s| in_syscall(s, "futex"));
    let stack = capture(&*inspector, tid);
    drop(held);
    assert_eq!(waiter.join().unwrap(), 7);

    assert!(seen, "never seen in futex: {state:?}");
    let state = state.unwrap();
    assert_eq!(state.run, RunState::Sleeping);
    let target = state.syscall.unwrap().target;
    assert!(
        matches!(target, Some(Target::Futex { addr }) if addr != 0),
        "{target:?}"
    );
    assert!(target
        .unwrap()
        .to_string()
        .starts_with("a lock or condition variable (futex 0x"));
    let names = function_names(&stack.expect("capture"));
    assert!(
        names.iter().any(|n| n.ends_with("takes_the_lock")),
        "{names:#?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("Mutex") && n.contains("lock")),
        "{names:#?}"
    );
}

//! The blocking API is named for what blocks, also when the application reaches it through a
//! trait (`std::io::Read`), a wrapper (`BufReader`, `BufWriter`) or a dependency: each test
//! makes the real blocking call in a task and checks the API, the cause and the fix.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pollwatch::Builder;
use support::Watched;

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(150);

/// Evaluates a blocking call and returns the line it is on, for checking the call site.
macro_rules! blocking_at_line {
    ($call:expr) => {{
        {
            let _value = $call;
        }
        line!()
    }};
}

/// Runs `blocking` in one task and returns its one stall, after checking that the stall's
/// call site is the line `blocking` reported.
fn stall_of(blocking: impl FnOnce() -> u32 + Send + 'static) -> pollwatch_report::Stall {
    let watched = Watched::new_with(Builder::new().threshold(THRESHOLD));
    let rt = watched.runtime(2);
    let line = watched
        .scope(|| rt.block_on(async { tokio::spawn(async move { blocking() }).await.unwrap() }));
    drop(rt);
    let report = watched.final_report();
    let stall = support::only_stall(&report, "names_blocking_apis_through_traits.rs").clone();
    support::assert_call_site_at(&stall, "names_blocking_apis_through_traits.rs", line);
    stall
}

/// Checks the stall's API, cause, and that its fix names `fix`.
fn assert_named(stall: &pollwatch_report::Stall, api: &str, cause: &str, fix: &str) {
    assert_eq!(stall.blocking_call.as_deref(), Some(api), "{stall:#?}");
    assert_eq!(stall.cause, cause, "{stall:#?}");
    assert!(
        stall.suggestion.contains(fix),
        "fix {:?} does not name {fix:?}",
        stall.suggestion
    );
    assert!(stall.message.contains(api), "{}", stall.message);
}

/// A local server whose peer writes `reply` after [`BLOCK`], then closes the connection.
fn slow_peer(reply: &'static [u8]) -> (SocketAddr, JoinHandle<()>) {
    support::slow_peer(reply, BLOCK)
}

#[test]
fn a_tcp_read_through_read_read_is_a_socket_read() {
    let (addr, server) = slow_peer(b"pong");
    let stall = stall_of(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 4];
        blocking_at_line!(Read::read(&mut stream, &mut buf))
    });
    server.join().unwrap();
    // std compiles this read and `UdpSocket::recv` to one function: the name says both.
    assert_named(
        &stall,
        "std::net::TcpStream::read or std::net::UdpSocket::recv",
        "network",
        "tokio::net::TcpStream with tokio::io::AsyncReadExt::read(..).await",
    );
    assert!(stall.blocked_on.as_deref().unwrap_or("").starts_with("TCP"));
}

#[test]
fn a_tcp_read_through_bufreader_read_line_names_the_stream_and_the_line_read() {
    let (addr, server) = slow_peer(b"pong\n");
    let stall = stall_of(move || {
        let mut reader = std::io::BufReader::new(TcpStream::connect(addr).unwrap());
        let mut line = String::new();
        blocking_at_line!(reader.read_line(&mut line))
    });
    server.join().unwrap();
    assert_named(
        &stall,
        "std::net::TcpStream::read (via std::io::BufRead::read_line)",
        "network",
        "tokio::io::BufReader and tokio::io::AsyncBufReadExt::read_line(..).await",
    );
}

#[test]
fn a_tcp_read_exact_names_the_stream_and_read_exact() {
    let (addr, server) = slow_peer(b"pong");
    let stall = stall_of(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 4];
        blocking_at_line!(stream.read_exact(&mut buf))
    });
    server.join().unwrap();
    assert_named(
        &stall,
        "std::net::TcpStream::read (via std::io::Read::read_exact)",
        "network",
        "tokio::net::TcpStream with tokio::io::AsyncReadExt::read_exact(..).await",
    );
}

#[test]
fn a_tcp_read_to_end_names_the_stream_and_read_to_end() {
    let (addr, server) = slow_peer(b"pong");
    let stall = stall_of(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut all = Vec::new();
        blocking_at_line!(stream.read_to_end(&mut all))
    });
    server.join().unwrap();
    assert_named(
        &stall,
        "std::net::TcpStream::read (via std::io::Read::read_to_end)",
        "network",
        "tokio::net::TcpStream with tokio::io::AsyncReadExt::read_to_end(..).await",
    );
}

/// A FIFO in a directory of its own, its reader started: the reader opens it, waits
/// [`BLOCK`], then reads everything. Returns the FIFO opened for writing; a write larger than
/// the pipe's buffer blocks until the reader starts reading.
fn fifo_with_slow_reader(name: &str) -> (PathBuf, std::fs::File, JoinHandle<usize>) {
    let dir = std::env::temp_dir().join(format!("pollwatch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("out.fifo");
    let _ = std::fs::remove_file(&fifo);
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut r = std::fs::File::open(&reader_path).unwrap();
        std::thread::sleep(BLOCK);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap()
    });
    // Opening a FIFO for writing waits for its reader, which the thread above opens.
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    (dir, writer, reader)
}

/// More than a pipe holds (64 KiB by default).
const LARGE: usize = 1 << 20;

#[test]
fn a_file_write_all_names_the_file_and_write_all() {
    let (dir, mut file, reader) = fifo_with_slow_reader("write-all");
    // Filled before: on a busy machine filling a MiB can itself outlast the threshold, and
    // the watchdog's first look would catch that instead of the write.
    let data = vec![7u8; LARGE];
    let stall = stall_of(move || blocking_at_line!(file.write_all(&data)));
    assert_eq!(reader.join().unwrap(), LARGE);
    assert_named(
        &stall,
        "std::fs::File::write (via std::io::Write::write_all)",
        "file_io",
        "tokio::fs::File with tokio::io::AsyncWriteExt::write_all(..).await",
    );
    assert_eq!(stall.syscall.as_deref(), Some("write"));
    assert!(stall
        .blocked_on
        .as_deref()
        .unwrap_or("")
        .ends_with("out.fifo"));
    assert!(stall.suggestion.contains("tokio::net::unix::pipe"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bufwriter_flush_to_a_file_names_the_file_and_the_flush() {
    let (dir, file, reader) = fifo_with_slow_reader("bufwriter");
    let stall = stall_of(move || {
        let mut writer = std::io::BufWriter::with_capacity(LARGE, file);
        // Fits the buffer: nothing is written to the file before the flush.
        writer.write_all(&vec![7u8; LARGE / 2]).unwrap();
        blocking_at_line!(writer.flush())
    });
    assert_eq!(reader.join().unwrap(), LARGE / 2);
    assert_named(
        &stall,
        "std::fs::File::write (via std::io::BufWriter::flush)",
        "file_io",
        "tokio::io::BufWriter and tokio::io::AsyncWriteExt::flush(..).await",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn command_output_is_a_process() {
    let stall = stall_of(|| {
        let mut sleep = std::process::Command::new("sleep");
        sleep.arg("0.15");
        blocking_at_line!(sleep.output().unwrap())
    });
    assert_named(
        &stall,
        "std::process::Command::output",
        "process",
        "tokio::process::Command and .await its output()",
    );
}

#[test]
fn mpsc_recv_is_a_channel() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(BLOCK);
        tx.send(()).unwrap();
    });
    let stall = stall_of(move || blocking_at_line!(rx.recv().unwrap()));
    sender.join().unwrap();
    assert_named(
        &stall,
        "std::sync::mpsc::Receiver::recv",
        "channel",
        "tokio::sync::mpsc",
    );
}

#[test]
fn mpsc_recv_timeout_is_a_channel_with_a_timeout() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(BLOCK);
        tx.send(()).unwrap();
    });
    let stall =
        stall_of(move || blocking_at_line!(rx.recv_timeout(Duration::from_secs(10)).unwrap()));
    sender.join().unwrap();
    assert_named(
        &stall,
        "std::sync::mpsc::Receiver::recv_timeout",
        "channel",
        "tokio::sync::mpsc and .await its recv() inside tokio::time::timeout",
    );
}

/// A flag and its condition variable, set by another thread after [`BLOCK`].
fn flag_set_later() -> (Arc<(Mutex<bool>, Condvar)>, JoinHandle<()>) {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let setter_pair = pair.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(BLOCK);
        *setter_pair.0.lock().unwrap() = true;
        setter_pair.1.notify_all();
    });
    (pair, setter)
}

#[test]
fn condvar_wait_is_a_lock_fixed_with_notify() {
    let (pair, setter) = flag_set_later();
    let stall = stall_of(move || {
        let (flag, condvar) = &*pair;
        let mut set = flag.lock().unwrap();
        let mut line = 0;
        while !*set {
            line = blocking_at_line!(set = condvar.wait(set).unwrap());
        }
        line
    });
    setter.join().unwrap();
    assert_named(
        &stall,
        "std::sync::Condvar::wait",
        "lock",
        "tokio::sync::Notify",
    );
}

#[test]
fn condvar_wait_timeout_is_a_lock_fixed_with_notify() {
    let (pair, setter) = flag_set_later();
    let stall = stall_of(move || {
        const LONG: Duration = Duration::from_secs(10);
        let (flag, condvar) = &*pair;
        let mut set = flag.lock().unwrap();
        let mut line = 0;
        while !*set {
            let (now_set, _) = condvar.wait_timeout(set, LONG).unwrap();
            line = line!() - 1;
            set = now_set;
        }
        line
    });
    setter.join().unwrap();
    assert_named(
        &stall,
        "std::sync::Condvar::wait_timeout",
        "lock",
        "tokio::sync::watch",
    );
}

#[test]
fn joining_a_thread_is_fixed_with_spawn_blocking() {
    let stall = stall_of(|| {
        let worker = std::thread::spawn(|| std::thread::sleep(BLOCK));
        blocking_at_line!(worker.join().unwrap())
    });
    assert_named(
        &stall,
        "std::thread::JoinHandle::join",
        "lock",
        "tokio::task::spawn_blocking and .await its JoinHandle",
    );
}

#[test]
fn futures_block_on_names_the_executor() {
    let stall = stall_of(|| {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(BLOCK);
            let _ = tx.send(());
        });
        blocking_at_line!(futures::executor::block_on(rx))
    });
    assert_named(
        &stall,
        "futures::executor::block_on",
        "block_on",
        "Never call block_on",
    );
}

#[test]
fn a_tcp_read_inside_a_dependency_names_the_stream_and_the_read_std_made() {
    let (addr, server) = slow_peer(br#"{"ok": true}"#);
    let stall = stall_of(move || {
        let stream = TcpStream::connect(addr).unwrap();
        blocking_at_line!(serde_json::from_reader::<_, serde_json::Value>(stream).unwrap())
    });
    server.join().unwrap();
    // serde_json reads byte by byte through `Read::bytes`.
    assert_named(
        &stall,
        "std::net::TcpStream::read (via std::io::Bytes::next)",
        "network",
        "tokio::net::TcpStream with tokio::io::AsyncReadExt::read(..).await",
    );
    assert!(
        stall
            .backtrace
            .iter()
            .any(|f| f.file.as_deref().unwrap_or("").contains("/serde_json-")),
        "{stall:#?}"
    );
}

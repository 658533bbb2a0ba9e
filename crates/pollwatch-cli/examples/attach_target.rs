//! A tokio service with no pollwatch in it, for `pollwatch attach`'s tests and benchmark: one
//! classic mistake per mode, made by a task again and again until the process is killed.
//!
//! ```text
//! attach_target MODE    # sleep, file, socket, mutex, cpu, command, or good
//! ```
//!
//! It prints `ready FILE:LINE` (the blocking call's line; `good` has none and prints
//! `ready`) once the mistake has been made once, then `tick N` after every round. `good` runs
//! a well-behaved load instead (async TCP round trips and short computations from 32 tasks)
//! and prints `ops N`, the round trips done so far, every 100 ms.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long each mistake holds its worker.
const BLOCK: Duration = Duration::from_millis(40);

static LOCK: Mutex<u64> = Mutex::new(0);

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Renamed, as services do: pollwatch attach finds workers by their stacks.
        .thread_name("svc-worker")
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let mistake: fn() -> u32 = match mode.as_str() {
            "sleep" => sleep,
            "file" => file,
            "socket" => socket,
            "mutex" => mutex,
            "cpu" => cpu,
            "command" => command,
            "good" => return good().await,
            other => panic!("no mode {other:?}"),
        };
        if mode == "file" {
            std::fs::write(data_file(), vec![7u8; 64 << 20]).expect("the data file");
        }
        if mode == "socket" {
            std::thread::spawn(slow_server);
        }
        if mode == "mutex" {
            std::thread::spawn(lock_holder);
        }
        for round in 0u64.. {
            let line = tokio::spawn(async move { mistake() })
                .await
                .expect("the task");
            if round == 0 {
                println!("ready {}:{line}", file!());
            }
            println!("tick {round}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

fn sleep() -> u32 {
    let line = line!() + 1;
    std::thread::sleep(BLOCK);
    line
}

fn data_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pollwatch-attach-target-{}", std::process::id()))
}

fn file() -> u32 {
    let line = line!() + 1;
    let bytes = std::fs::read(data_file()).expect("the data file");
    assert_eq!(bytes.len(), 64 << 20);
    // Given back to the system elsewhere: unmapping 64 MiB takes a while of its own.
    std::thread::spawn(move || drop(bytes));
    line
}

/// Answers each connection's byte after [`BLOCK`].
fn slow_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    SERVER.set(listener.local_addr().expect("its address")).ok();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut byte = [0u8; 1];
        if stream.read_exact(&mut byte).is_ok() {
            std::thread::sleep(BLOCK);
            let _ = stream.write_all(&byte);
        }
    }
}

static SERVER: std::sync::OnceLock<std::net::SocketAddr> = std::sync::OnceLock::new();

fn socket() -> u32 {
    let addr = loop {
        match SERVER.get() {
            Some(addr) => break *addr,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let mut stream = TcpStream::connect(addr).expect("the server");
    stream.write_all(b"x").expect("a write");
    let mut byte = [0u8; 1];
    let line = line!() + 1;
    stream.read_exact(&mut byte).expect("a read");
    line
}

/// Holds [`LOCK`] for [`BLOCK`], then lets it go for a moment, forever.
fn lock_holder() {
    loop {
        {
            let mut held = LOCK.lock().expect("the lock");
            *held += 1;
            std::thread::sleep(BLOCK);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mutex() -> u32 {
    let line = line!() + 1;
    let mut held = LOCK.lock().expect("the lock");
    *held += 1;
    line
}

fn cpu() -> u32 {
    let line = line!() + 4;
    let started = Instant::now();
    let mut digest = 1u64;
    while started.elapsed() < BLOCK {
        digest = digest.wrapping_mul(6364136223846793005).rotate_left(17) ^ digest >> 3;
    }
    std::hint::black_box(digest);
    line
}

fn command() -> u32 {
    let line = line!() + 1;
    let output = std::process::Command::new("sleep").arg("0.04").output();
    output.expect("sleep runs");
    line
}

/// 32 tasks doing async TCP round trips with an echo task, each with a short computation.
async fn good() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let ops = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for _ in 0..32 {
        let ops = ops.clone();
        tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("the echo");
            let mut buf = [0u8; 64];
            loop {
                stream.write_all(&[1u8; 64]).await.expect("a write");
                stream.read_exact(&mut buf).await.expect("a read");
                // A short computation, well under any threshold.
                let mut digest = u64::from(buf[0]);
                for i in 0..2_000u64 {
                    digest = digest.wrapping_mul(31).wrapping_add(i);
                }
                std::hint::black_box(digest);
                ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    println!("ready");
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        println!("ops {}", ops.load(std::sync::atomic::Ordering::Relaxed));
    }
}

//! Request/response: a loopback TCP server on 127.0.0.1 (on the configuration's runtime)
//! under 64 client connections (on a plain runtime of their own), each doing 64-byte
//! request/response round trips back to back. Measures throughput (req/s) and round-trip
//! latency percentiles (hdrhistogram), every configuration in interleaved rounds.
//!
//! `cargo run --release -p pollwatch-bench -- request-response` (env: `RR_ROUNDS`, default 3;
//! `RR_SECS`, measured seconds per run, default 3; `CONNECTIONS`, default 64; `RR_WORKERS`,
//! server workers, default 2; `CLIENT_WORKERS`, default 2).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::{Config, Spawner};
use crate::measure::{env_usize, median};
use crate::report::{at_least, at_most, median_ratio, raw, rotated};

/// Bytes in a request and in its response.
const MESSAGE: usize = 64;
/// Unmeasured time at the start of each run.
const WARMUP: Duration = Duration::from_millis(500);

/// One run's figures.
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

pub fn run() {
    let rounds = env_usize("RR_ROUNDS", 3);
    let secs = env_usize("RR_SECS", 3);
    let connections = env_usize("CONNECTIONS", 64);
    let workers = env_usize("RR_WORKERS", 2);
    let client_workers = env_usize("CLIENT_WORKERS", 2);
    println!();
    println!(
        "## request-response: {connections} connections x {MESSAGE}-byte round trips on 127.0.0.1, {workers} server worker(s), {client_workers} client worker(s), {secs} s per run, {rounds} interleaved rounds"
    );
    let n = Config::ALL.len();
    let mut rps = vec![Vec::new(); n];
    let mut p50 = vec![Vec::new(); n];
    let mut p99 = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let config = rotated(round, k);
            let s = one(config, workers, client_workers, connections, secs);
            rps[config.index()].push(s.rps);
            p50[config.index()].push(s.p50_us);
            p99[config.index()].push(s.p99_us);
        }
    }
    let plain = Config::Plain.index();
    println!();
    println!("| configuration | req/s | throughput vs plain | p50 µs | p99 µs | p99 vs plain |");
    println!("|---|---:|---:|---:|---:|---:|");
    for config in Config::ALL {
        let i = config.index();
        println!(
            "| {} | {:.0} | {:+.1}% | {:.1} | {:.1} | {:+.1}% |",
            config.name(),
            median(&rps[i]),
            (median_ratio(&rps[i], &rps[plain]) - 1.0) * 100.0,
            median(&p50[i]),
            median(&p99[i]),
            (median_ratio(&p99[i], &p99[plain]) - 1.0) * 100.0,
        );
    }
    println!();
    raw("throughput", "req/s", &rps);
    raw("p99 latency", "µs", &p99);
    println!();
    for config in Config::POLLWATCH {
        let i = config.index();
        at_least(
            &format!("{}: throughput vs plain tokio", config.key()),
            (median_ratio(&rps[i], &rps[plain]) - 1.0) * 100.0,
            -2.0,
            "%",
        );
        at_most(
            &format!("{}: p99 latency vs plain tokio", config.key()),
            (median_ratio(&p99[i], &p99[plain]) - 1.0) * 100.0,
            2.0,
            "%",
        );
    }
}

/// One run: the server under `config`, the clients on a plain runtime.
fn one(
    config: Config,
    workers: usize,
    client_workers: usize,
    connections: usize,
    secs: usize,
) -> Sample {
    let server = config.start(workers);
    let spawner = server.spawner.clone();
    let port = server.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = spawner.clone();
        accept.spawn(serve(listener, spawner));
        port
    });
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_workers)
        .enable_all()
        .build()
        .unwrap();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (histogram, requests, wall) = clients.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(client(port, measuring.clone(), stop.clone())))
            .collect();
        tokio::time::sleep(WARMUP).await;
        measuring.store(true, Relaxed);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs as u64)).await;
        stop.store(true, Relaxed);
        let wall = start.elapsed();
        let mut merged = new_histogram();
        let mut requests = 0;
        for task in tasks {
            let (h, n) = task.await.unwrap();
            merged.add(&h).unwrap();
            requests += n;
        }
        (merged, requests, wall)
    });
    drop(clients);
    server.finish();
    Sample {
        rps: requests as f64 / wall.as_secs_f64(),
        p50_us: histogram.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: histogram.value_at_quantile(0.99) as f64 / 1e3,
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 10_000_000_000, 3).unwrap()
}

/// Accepts connections and answers each on a task of its own.
async fn serve(listener: TcpListener, spawner: Spawner) {
    while let Ok((mut socket, _)) = listener.accept().await {
        socket.set_nodelay(true).unwrap();
        spawner.spawn(async move {
            let mut buf = [0u8; MESSAGE];
            while socket.read_exact(&mut buf).await.is_ok() {
                if socket.write_all(&buf).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// One connection's round trips until `stop`; those completed while `measuring` are timed.
async fn client(
    port: u16,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> (Histogram<u64>, u64) {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    socket.set_nodelay(true).unwrap();
    let request = [7u8; MESSAGE];
    let mut response = [0u8; MESSAGE];
    let mut histogram = new_histogram();
    let mut requests = 0;
    while !stop.load(Relaxed) {
        let start = Instant::now();
        socket.write_all(&request).await.unwrap();
        socket.read_exact(&mut response).await.unwrap();
        if measuring.load(Relaxed) && !stop.load(Relaxed) {
            let ns = start.elapsed().as_nanos() as u64;
            histogram.saturating_record(ns.max(1_000));
            requests += 1;
        }
    }
    (histogram, requests)
}

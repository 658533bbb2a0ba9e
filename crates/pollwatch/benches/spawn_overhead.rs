//! Spawn-path overhead: `TASKS` tasks that finish at once, spawned from one task on a
//! 2-worker runtime and awaited in batches, in interleaved rounds: plain tokio (no subscriber),
//! a bare `Registry`, and `Registry` + pollwatch, unnamed and named (`conn-{i}`: one site).
//! Prints wall-clock ns per task and the medians over rounds.
//!
//! `cargo bench -p pollwatch --bench spawn_overhead` (env: `ROUNDS`, default 5; `TASKS`,
//! default 200000).

use std::time::Instant;

use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CONFIGS: [&str; 5] = [
    "plain tokio (no subscriber)",
    "Registry alone",
    "Registry + pollwatch",
    "Registry alone, named tasks",
    "Registry + pollwatch, named tasks",
];

/// ns per task for configuration `config`.
fn run(config: usize, tasks: usize) -> f64 {
    let dispatch = match config {
        0 => None,
        1 | 3 => Some(Dispatch::new(tracing_subscriber::registry())),
        _ => {
            let (layer, handle) = pollwatch::Builder::new().build();
            // The handle's threads stop when the layer's last user is gone.
            drop(handle);
            Some(Dispatch::new(tracing_subscriber::registry().with(layer)))
        }
    };
    let named = config >= 3;
    let body = move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async move {
            tokio::spawn(async move {
                let started = Instant::now();
                let mut batch = Vec::with_capacity(1000);
                for i in 0..tasks {
                    let handle = if named {
                        tokio::task::Builder::new()
                            .name(&format!("conn-{i}"))
                            .spawn(async {})
                            .unwrap()
                    } else {
                        tokio::spawn(async {})
                    };
                    batch.push(handle);
                    if batch.len() == 1000 {
                        for h in batch.drain(..) {
                            h.await.unwrap();
                        }
                    }
                }
                for h in batch {
                    h.await.unwrap();
                }
                started.elapsed().as_nanos() as f64 / tasks as f64
            })
            .await
            .unwrap()
        })
    };
    match dispatch {
        None => body(),
        Some(d) => tracing::dispatcher::with_default(&d, body),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env("ROUNDS", 5);
    let tasks = env("TASKS", 200_000);
    println!("spawn_overhead: {tasks} tasks per run, {rounds} interleaved rounds, 2 workers");
    let mut results = vec![Vec::new(); CONFIGS.len()];
    for _ in 0..rounds {
        for (config, out) in results.iter_mut().enumerate() {
            out.push(run(config, tasks));
        }
    }
    for (name, mut ns) in CONFIGS.iter().zip(results) {
        println!("  {name:<36} median {:>7.1} ns/task", median(&mut ns));
    }
}

//! Spawn-heavy: 1,000,000 short tasks (each finishes at once), spawned from one task on a
//! 2-worker runtime and awaited in batches of 1,000. Measures wall time and the process's peak
//! RSS, so each configuration runs in a child process of its own (this binary, re-run with
//! `spawn-heavy-child <configuration>`), in interleaved rounds.
//!
//! console-subscriber is left out unless `SPAWN_CONSOLE=1`: it keeps every finished task for
//! its retention period (an hour by default), and here took ~4.8 GiB of peak RSS and ~9 s at
//! 100,000 tasks, so 1,000,000 would exhaust the machine's memory.
//!
//! `cargo run --release -p pollwatch-bench -- spawn-heavy` (env: `SPAWN_ROUNDS`, default 3;
//! `SPAWN_TASKS`, default 1000000; `SPAWN_CONSOLE`, default 0).

use std::process::Command;
use std::time::Instant;

use crate::config::Config;
use crate::measure::{env_usize, median, peak_rss_kib};
use crate::report::{at_most, median_difference, raw, rotated};

/// The argument that makes this binary run one configuration and print its figures.
pub const CHILD_ARG: &str = "spawn-heavy-child";

/// Tasks awaited together.
const BATCH: usize = 1000;

pub fn run() {
    let rounds = env_usize("SPAWN_ROUNDS", 3);
    let tasks = env_usize("SPAWN_TASKS", 1_000_000);
    println!();
    println!(
        "## spawn-heavy: {tasks} short tasks (awaited in batches of {BATCH}), 2 workers, one child process per configuration, {rounds} interleaved rounds"
    );
    let n = Config::ALL.len();
    let mut wall_ms = vec![Vec::new(); n];
    let mut peak_mib = vec![Vec::new(); n];
    let mut stalls: Vec<Vec<f64>> = vec![Vec::new(); n];
    let exe = std::env::current_exe().unwrap();
    let with_console = env_usize("SPAWN_CONSOLE", 0) == 1;
    for round in 0..rounds {
        for k in 0..n {
            let config = rotated(round, k);
            if config == Config::Console && !with_console {
                continue;
            }
            let output = Command::new(&exe)
                .args([CHILD_ARG, config.key()])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout);
            let figures: Vec<f64> = text
                .lines()
                .last()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            if !output.status.success() || figures.len() != 3 {
                println!(
                    "warning: {} child failed ({}): {}",
                    config.key(),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                continue;
            }
            wall_ms[config.index()].push(figures[0]);
            peak_mib[config.index()].push(figures[1]);
            stalls[config.index()].push(figures[2]);
        }
    }
    let plain = Config::Plain.index();
    let registry = Config::Registry.index();
    println!();
    println!("| configuration | wall ms | ns/task | peak RSS MiB | RSS vs plain MiB | RSS vs `Registry` MiB | stalls caught (per round) |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for config in Config::ALL {
        let i = config.index();
        if wall_ms[i].is_empty() {
            println!(
                "| {} | left out (see the note below) | | | | |",
                config.name()
            );
            continue;
        }
        let caught = match config {
            Config::Layer | Config::Hooks | Config::Watched | Config::Workers => stalls[i]
                .iter()
                .map(|s| format!("{s:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.1} | {:+.1} | {:+.1} | {caught} |",
            config.name(),
            median(&wall_ms[i]),
            median(&wall_ms[i]) * 1e6 / tasks as f64,
            median(&peak_mib[i]),
            median_difference(&peak_mib[i], &peak_mib[plain]),
            median_difference(&peak_mib[i], &peak_mib[registry]),
        );
    }
    println!();
    raw("wall time", "ms", &wall_ms);
    raw("peak RSS", "MiB", &peak_mib);
    println!(
        "note: a round in which pollwatch caught a stall (here, a poll the busy machine kept \
         from finishing within the 10 ms threshold) parsed the binary's debug info to name it: \
         its peak RSS includes that (see docs/limitations.md)"
    );
    if !with_console {
        println!(
            "note: console-subscriber left out (SPAWN_CONSOLE=1 to include it): it keeps every finished task for its retention period, ~4.8 GiB peak RSS at 100,000 tasks"
        );
    }
    println!();
    for config in Config::POLLWATCH {
        let i = config.index();
        at_most(
            &format!("{}: spawn-heavy peak RSS over plain tokio", config.key()),
            median_difference(&peak_mib[i], &peak_mib[plain]),
            16.0,
            "MiB",
        );
    }
}

/// The child: one run under the configuration named `key`; prints `wall_ms peak_rss_mib
/// stalls` (the stalls pollwatch caught, 0 in the other configurations).
pub fn child(key: &str) {
    let config = Config::from_key(key).unwrap_or_else(|| panic!("no configuration {key}"));
    let tasks = env_usize("SPAWN_TASKS", 1_000_000);
    let rt = config.start(2);
    let spawner = rt.spawner.clone();
    let start = Instant::now();
    rt.block_on(async move {
        let inner = spawner.clone();
        spawner
            .spawn(async move {
                let mut batch = Vec::with_capacity(BATCH);
                for _ in 0..tasks {
                    batch.push(inner.spawn(async {}));
                    if batch.len() == BATCH {
                        for handle in batch.drain(..) {
                            handle.await.unwrap();
                        }
                    }
                }
                for handle in batch {
                    handle.await.unwrap();
                }
            })
            .await
            .unwrap();
    });
    let wall = start.elapsed();
    let stalls = rt.stalls();
    rt.finish();
    let peak = peak_rss_kib().unwrap_or(0);
    println!(
        "{:.3} {:.3} {stalls}",
        wall.as_secs_f64() * 1e3,
        peak as f64 / 1024.0
    );
}

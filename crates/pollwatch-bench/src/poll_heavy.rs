//! Poll-heavy: 1,000 tasks × 2,000 `yield_now`, at 1, 2 and 4 workers, every configuration in
//! interleaved rounds. Measures wall ns per poll and CPU ns per poll (CPU time of every thread
//! the run started, plus the driving thread, over polls): CPU ns per poll is the cost of one
//! poll, and must not grow with workers.
//!
//! `cargo run --release -p pollwatch-bench -- poll-heavy` (env: `ROUNDS`, default 7; `TASKS`,
//! default 1000; `YIELDS`, default 2000; `WORKERS`, default `1,2,4`). With `PROFILE=<key>`
//! (a configuration's key, such as `hooks`), it runs only that configuration, `ROUNDS` times
//! at the first worker count, and prints each round's CPU ns/poll: a process to hand to
//! `perf record`. With `CONFIGS=<key>,<key>`, the rounds run only those configurations and
//! the baselines (plain tokio, `Registry` alone and both floors), for a quicker comparison.

use std::time::Instant;

use crate::config::Config;
use crate::measure::{env_usize, median, CpuMark};
use crate::report::{at_most, best_difference, median_difference, median_ratio, raw, rotated};

/// One run's figures.
struct Sample {
    wall_ns: f64,
    cpu_ns: f64,
}

pub fn run() {
    let rounds = env_usize("ROUNDS", 7);
    let tasks = env_usize("TASKS", 1000);
    let yields = env_usize("YIELDS", 2000);
    let workers: Vec<usize> = std::env::var("WORKERS")
        .unwrap_or_else(|_| "1,2,4".to_owned())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    if let Ok(key) = std::env::var("PROFILE") {
        let Some(config) = Config::from_key(&key) else {
            eprintln!("PROFILE={key}: no such configuration");
            std::process::exit(2);
        };
        let w = workers.first().copied().unwrap_or(2);
        for _ in 0..rounds {
            let sample = one(config, w, tasks, yields);
            println!("{key}: {:.1} CPU ns/poll", sample.cpu_ns);
        }
        return;
    }
    let chosen: Option<Vec<Config>> = std::env::var("CONFIGS").ok().map(|keys| {
        keys.split(',')
            .filter_map(|key| Config::from_key(key.trim()))
            .collect()
    });
    let runs = |config: Config| {
        matches!(
            config,
            Config::Plain | Config::Registry | Config::Floor | Config::TscFloor
        ) || chosen
            .as_ref()
            .is_none_or(|chosen| chosen.contains(&config))
    };
    let n = Config::ALL.len();
    // CPU ns per poll, median per configuration, per worker count.
    let mut by_workers: Vec<(usize, Vec<f64>)> = Vec::new();
    for &w in &workers {
        println!();
        println!(
            "## poll-heavy: {tasks} tasks x {yields} yield_now, {w} worker(s), {rounds} interleaved rounds"
        );
        for &config in Config::ALL.iter().filter(|&&c| runs(c)) {
            one(config, w, tasks / 10, yields / 10);
        }
        let mut wall = vec![Vec::new(); n];
        let mut cpu = vec![Vec::new(); n];
        for round in 0..rounds {
            for k in 0..n {
                let config = rotated(round, k);
                if !runs(config) {
                    continue;
                }
                let sample = one(config, w, tasks, yields);
                wall[config.index()].push(sample.wall_ns);
                cpu[config.index()].push(sample.cpu_ns);
            }
        }
        let plain = Config::Plain.index();
        let registry = Config::Registry.index();
        println!();
        println!("| configuration | wall ns/poll | CPU ns/poll | CPU +ns/poll over plain | ratio to plain (CPU) | CPU +ns/poll over `Registry` |");
        println!("|---|---:|---:|---:|---:|---:|");
        for config in Config::ALL.into_iter().filter(|&c| runs(c)) {
            let i = config.index();
            println!(
                "| {} | {:.1} | {:.1} | {:+.1} | {:.2} | {:+.1} |",
                config.name(),
                median(&wall[i]),
                median(&cpu[i]),
                median_difference(&cpu[i], &cpu[plain]),
                median_ratio(&cpu[i], &cpu[plain]),
                median_difference(&cpu[i], &cpu[registry]),
            );
        }
        println!();
        raw("wall ns/poll", "ns", &wall);
        raw("CPU ns/poll", "ns", &cpu);
        println!();
        let hooks = Config::Hooks.index();
        let layer = Config::Layer.index();
        let floor = Config::Floor.index();
        if runs(Config::Hooks) {
            at_most(
                &format!(
                    "{w} worker(s): hooks source over plain tokio, CPU ns/poll (wall {:+.1})",
                    median_difference(&wall[hooks], &wall[plain])
                ),
                median_difference(&cpu[hooks], &cpu[plain]),
                20.0,
                "ns/poll",
            );
        }
        if runs(Config::Layer) {
            at_most(
                &format!(
                    "{w} worker(s): layer over `Registry` alone, CPU ns/poll (wall {:+.1})",
                    median_difference(&wall[layer], &wall[registry])
                ),
                median_difference(&cpu[layer], &cpu[registry]),
                25.0,
                "ns/poll",
            );
        }
        if runs(Config::Hooks) {
            println!(
                "info: {w} worker(s): hooks source over the `quanta` floor: {:+.1} CPU ns/poll; that floor over plain: {:+.1}",
                median_difference(&cpu[hooks], &cpu[floor]),
                median_difference(&cpu[floor], &cpu[plain]),
            );
        }
        let tsc_floor = Config::TscFloor.index();
        println!(
            "info: {w} worker(s): the real floor (two TSC reads + one TLS add{}) over plain: {:+.1} CPU ns/poll (best rounds {:+.1})",
            if crate::floor::invariant_tsc() { ", invariant TSC" } else { ", TSC not invariant here" },
            median_difference(&cpu[tsc_floor], &cpu[plain]),
            best_difference(&cpu[tsc_floor], &cpu[plain]),
        );
        for config in Config::POLLWATCH.into_iter().filter(|&c| runs(c)) {
            let i = config.index();
            println!(
                "info: {w} worker(s): {} over the real floor: {:+.1} CPU ns/poll (median of round differences), {:+.1} (best rounds)",
                config.name(),
                median_difference(&cpu[i], &cpu[tsc_floor]),
                best_difference(&cpu[i], &cpu[tsc_floor]),
            );
        }
        for config in [Config::Hooks, Config::Watched]
            .into_iter()
            .filter(|&c| runs(c))
        {
            let i = config.index();
            for (how, value) in [
                (
                    "median of round differences",
                    median_difference(&cpu[i], &cpu[tsc_floor]),
                ),
                ("best rounds", best_difference(&cpu[i], &cpu[tsc_floor])),
            ] {
                at_most(
                    &format!(
                        "{w} worker(s): {} over the real floor, CPU ns/poll ({how})",
                        config.name()
                    ),
                    value,
                    10.0,
                    "ns/poll",
                );
            }
        }
        if runs(Config::Layer) {
            by_state(w, &cpu, Config::Layer, Config::Registry, 25.0);
        }
        by_workers.push((w, cpu.iter().map(|s| median(s)).collect()));
    }
    if by_workers.len() > 1 {
        println!();
        println!("## poll-heavy: CPU ns/poll by worker count (medians)");
        println!();
        let heads: Vec<String> = by_workers
            .iter()
            .map(|(w, _)| format!("{w} worker(s)"))
            .collect();
        println!("| configuration | {} | last / first |", heads.join(" | "));
        println!("|---|{}---:|", "---:|".repeat(heads.len()));
        for config in Config::ALL {
            let i = config.index();
            let cells: Vec<String> = by_workers
                .iter()
                .map(|(_, m)| format!("{:.1}", m[i]))
                .collect();
            let first = by_workers[0].1[i];
            let last = by_workers[by_workers.len() - 1].1[i];
            println!(
                "| {} | {} | {:.2} |",
                config.name(),
                cells.join(" | "),
                last / first
            );
        }
    }
}

/// How far a round of plain tokio may be from its best round and still count as the
/// machine's fast state. This machine (a VM) moves between a fast and a slow state for
/// minutes at a time; a slow round of plain tokio is slower by a quarter or more.
const FAST_STATE: f64 = 1.10;

/// `config` against `base` in the machine's fast and slow states, told apart round by round
/// by plain tokio's figure in the same round: a PASS/MISS line for each state with rounds.
fn by_state(workers: usize, cpu: &[Vec<f64>], config: Config, base: Config, target: f64) {
    let plain = &cpu[Config::Plain.index()];
    let best = plain.iter().copied().fold(f64::INFINITY, f64::min);
    for (state, fast) in [("fast", true), ("slow", false)] {
        let differences: Vec<f64> = (0..plain.len())
            .filter(|&r| (plain[r] <= best * FAST_STATE) == fast)
            .map(|r| cpu[config.index()][r] - cpu[base.index()][r])
            .collect();
        let what = format!(
            "{workers} worker(s): {} over {} in the machine's {state} state ({} of {} rounds, plain tokio {} {:.0}% of its best round), CPU ns/poll (median of round differences)",
            config.key(),
            base.key(),
            differences.len(),
            plain.len(),
            if fast { "within" } else { "over" },
            (FAST_STATE - 1.0) * 100.0,
        );
        if differences.is_empty() {
            println!("info: {what}: no such round");
        } else {
            at_most(&what, median(&differences), target, "ns/poll");
        }
    }
}

/// One run of the workload under `config`.
fn one(config: Config, workers: usize, tasks: usize, yields: usize) -> Sample {
    let mark = CpuMark::now();
    let rt = config.start(workers);
    let mark = mark.restart();
    let spawner = rt.spawner.clone();
    let start = Instant::now();
    let cpu_ns = rt.block_on(async move {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                spawner.spawn(async move {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        mark.elapsed_ns()
    });
    let wall = start.elapsed();
    let polls = tasks * (yields + 1);
    if let Some(counted) = rt.finish() {
        if counted < polls as u64 {
            println!(
                "warning: {} counted {counted} of {polls} polls",
                config.key()
            );
        }
    }
    Sample {
        wall_ns: wall.as_nanos() as f64 / polls as f64,
        cpu_ns: cpu_ns as f64 / polls as f64,
    }
}

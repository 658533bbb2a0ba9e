//! Disabled instrumentation: a `tracing::trace!` event and a `tracing::debug_span!`
//! enter/exit in a loop, under a fmt layer filtered at INFO, with and without pollwatch.
//! Measures ns per iteration, which should come out about equal: pollwatch enables only
//! tokio's task spans. Two ways in:
//! - scoped: a registry with the fmt layer (writing to `io::sink`), with and without the layer
//!   from `Builder::build`, each built afresh and dropped after, so only one is alive when
//!   callsite interest and the max level are computed;
//! - global, as a service installs it: `pollwatch::init()`, against the registry and fmt layer
//!   it installs (`EnvFilter` `info`, stderr) without pollwatch, each in a child process of its
//!   own (this binary, re-run with `disabled-child <plain|init>`), since the global default can
//!   be set once per process. A third row turns TRACE on for tokio's task spans in the log
//!   filter instead: what any subscriber that needs TRACE spans costs the disabled callsites
//!   (the macros then read each callsite's cached interest instead of stopping at the global
//!   max level).
//!
//! `cargo run --release -p pollwatch-bench -- disabled` (env: `ROUNDS`, default 7;
//! `DISABLED_ITERS`, default 10000000).

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use tracing::level_filters::LevelFilter;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::measure::{env_usize, median};
use crate::report::{at_most, median_difference};

const ROWS: [&str; 5] = [
    "`Registry` + fmt (INFO), scoped",
    "`Registry` + fmt (INFO) + pollwatch layer, scoped",
    "`registry().with(fmt.with_filter(EnvFilter::new(\"info\"))).init()`",
    "the same with `EnvFilter::new(\"info,tokio::task=trace\")`: TRACE on elsewhere",
    "`pollwatch::init()`",
];

/// The row each row is compared with: the same way in without pollwatch.
const BASELINE: [usize; 5] = [0, 0, 2, 2, 2];

/// The argument that runs one global configuration in this process.
pub const CHILD_ARG: &str = "disabled-child";

/// The global configurations' child arguments, in the order of their rows.
const GLOBAL: [&str; 3] = ["plain", "trace-elsewhere", "init"];

pub fn run() {
    let rounds = env_usize("ROUNDS", 7);
    let iters = env_usize("DISABLED_ITERS", 10_000_000);
    println!();
    println!(
        "## disabled instrumentation: trace! + debug_span! enter/exit, {iters} iterations, {rounds} interleaved rounds"
    );
    let mut samples: [Vec<f64>; 5] = Default::default();
    let mut max_levels: [String; 5] = Default::default();
    one(false, iters / 10);
    one(true, iters / 10);
    for round in 0..rounds {
        for k in 0..ROWS.len() {
            // Interleaved, the order turning each round.
            let row = (k + round) % ROWS.len();
            let (ns, max_level) = match row {
                0 | 1 => one(row == 1, iters),
                _ => global(GLOBAL[row - 2], iters),
            };
            samples[row].push(ns);
            max_levels[row] = max_level;
        }
    }
    println!();
    println!("| configuration | ns/iteration | +ns over without pollwatch | max level in force |");
    println!("|---|---:|---:|---|");
    for (i, row) in ROWS.iter().enumerate() {
        let without = &samples[BASELINE[i]];
        println!(
            "| {row} | {:.2} | {:+.2} | {} |",
            median(&samples[i]),
            median_difference(&samples[i], without),
            max_levels[i]
        );
    }
    println!();
    println!("raw per-round ns/iteration:");
    for (i, row) in ROWS.iter().enumerate() {
        let figures: Vec<String> = samples[i].iter().map(|v| format!("{v:.2}")).collect();
        println!("  {row}: {}", figures.join("  "));
    }
    println!();
    at_most(
        "disabled instrumentation with the layer vs without (about equal: within 1 ns or 5%)",
        median_difference(&samples[1], &samples[0]),
        (median(&samples[0]) * 0.05).max(1.0),
        "ns/iter",
    );
    at_most(
        "disabled instrumentation under pollwatch::init() vs the same logs without pollwatch \
         (within 1 ns or 5%)",
        median_difference(&samples[4], &samples[2]),
        (median(&samples[2]) * 0.05).max(1.0),
        "ns/iter",
    );
}

/// One global configuration, in a child process: ns per iteration and the max level.
fn global(key: &str, iters: usize) -> (f64, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_ARG, key])
        .env("DISABLED_ITERS", iters.to_string())
        .env_remove("RUST_LOG")
        .env(
            "POLLWATCH_REPORT_DIR",
            std::env::temp_dir().join("pollwatch-bench-disabled"),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or("");
    match last.split_once(' ') {
        Some((ns, level)) if output.status.success() => match ns.parse() {
            Ok(ns) => (ns, level.to_owned()),
            Err(_) => panic!("{CHILD_ARG} {key}: {last}"),
        },
        _ => panic!(
            "{CHILD_ARG} {key} failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The child: installs the configuration `key` names as the global default, then prints ns
/// per iteration (after a warm-up of a tenth) and the max level in force.
pub fn child(key: &str) {
    let iters = env_usize("DISABLED_ITERS", 10_000_000);
    let logs = |filter: &str| {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(EnvFilter::new(filter)),
            )
            .init();
    };
    let _guard = match key {
        "plain" => {
            logs("info");
            None
        }
        "trace-elsewhere" => {
            logs("info,tokio::task=trace");
            None
        }
        "init" => Some(pollwatch::init()),
        other => panic!("no configuration {other}"),
    };
    probe(iters / 10);
    let ns = probe(iters);
    println!("{ns} {}", LevelFilter::current());
}

/// ns per iteration of `iters` iterations of the disabled instrumentation.
fn probe(iters: usize) -> f64 {
    let start = Instant::now();
    for i in 0..iters {
        tracing::trace!(i = black_box(i), "disabled event");
        let _span = tracing::debug_span!("disabled span").entered();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// One run: ns per iteration, and the global max level while the subscriber was in force.
fn one(with_pollwatch: bool, iters: usize) -> (f64, String) {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(fmt);
    let (dispatch, handle) = if with_pollwatch {
        let (layer, handle) = pollwatch::Builder::new().build();
        (Dispatch::new(registry.with(layer)), Some(handle))
    } else {
        (Dispatch::new(registry), None)
    };
    let result = tracing::dispatcher::with_default(&dispatch, || {
        (probe(iters), LevelFilter::current().to_string())
    });
    drop(dispatch);
    if let Some(handle) = handle {
        handle.shutdown();
    }
    result
}

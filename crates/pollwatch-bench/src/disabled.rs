//! Disabled instrumentation: a `tracing::trace!` event and a `tracing::debug_span!`
//! enter/exit in a loop, under a fmt layer filtered at INFO (writing to `io::sink`), with and
//! without the pollwatch layer in the same registry. Measures ns per iteration, which should
//! come out about equal: the layer enables only tokio's task spans. Each run builds its
//! subscriber afresh and drops it after, so only one is alive when callsite interest and the
//! max level are computed.
//!
//! `cargo run --release -p pollwatch-bench -- disabled` (env: `ROUNDS`, default 7;
//! `DISABLED_ITERS`, default 10000000).

use std::hint::black_box;
use std::time::Instant;

use tracing::level_filters::LevelFilter;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::measure::{env_usize, median};
use crate::report::{at_most, median_difference};

const ROWS: [&str; 2] = [
    "`Registry` + fmt (INFO)",
    "`Registry` + fmt (INFO) + pollwatch layer",
];

pub fn run() {
    let rounds = env_usize("ROUNDS", 7);
    let iters = env_usize("DISABLED_ITERS", 10_000_000);
    println!();
    println!(
        "## disabled instrumentation: trace! + debug_span! enter/exit, {iters} iterations, {rounds} interleaved rounds"
    );
    let mut samples = [Vec::new(), Vec::new()];
    let mut max_levels = [String::new(), String::new()];
    one(false, iters / 10);
    one(true, iters / 10);
    for round in 0..rounds {
        for k in 0..2 {
            let with_pollwatch = (k + round) % 2 == 1;
            let (ns, max_level) = one(with_pollwatch, iters);
            samples[usize::from(with_pollwatch)].push(ns);
            max_levels[usize::from(with_pollwatch)] = max_level;
        }
    }
    println!();
    println!("| configuration | ns/iteration | +ns over without pollwatch | max level in force |");
    println!("|---|---:|---:|---|");
    for (i, row) in ROWS.iter().enumerate() {
        println!(
            "| {row} | {:.2} | {:+.2} | {} |",
            median(&samples[i]),
            median_difference(&samples[i], &samples[0]),
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
    let without = median(&samples[0]);
    at_most(
        "disabled instrumentation with the layer vs without (about equal: within 1 ns or 5%)",
        median_difference(&samples[1], &samples[0]),
        (without * 0.05).max(1.0),
        "ns/iter",
    );
}

/// One run: ns per iteration, and the global max level while the subscriber was in force.
fn one(with_pollwatch: bool, iters: usize) -> (f64, String) {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(fmt);
    let (dispatch, handle) = if with_pollwatch {
        let (layer, handle) = pollwatch::PollWatch::builder().build();
        (Dispatch::new(registry.with(layer)), Some(handle))
    } else {
        (Dispatch::new(registry), None)
    };
    let result = tracing::dispatcher::with_default(&dispatch, || {
        let start = Instant::now();
        for i in 0..iters {
            tracing::trace!(i = black_box(i), "disabled event");
            let _span = tracing::debug_span!("disabled span").entered();
        }
        let ns = start.elapsed().as_nanos() as f64 / iters as f64;
        (ns, LevelFilter::current().to_string())
    });
    drop(dispatch);
    if let Some(handle) = handle {
        handle.shutdown();
    }
    result
}

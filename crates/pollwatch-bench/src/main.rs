//! pollwatch against plain tokio and its peers: every configuration side by side, in
//! interleaved rounds within one run, printed as markdown tables with the raw per-round
//! figures and PASS/MISS lines against pollwatch's targets.
//!
//! `cargo run --release -p pollwatch-bench -- [workload]`, where workload is `all` (the
//! default: every workload below, each in a child process of its own so no workload's
//! subscribers or allocations reach the next), `poll-heavy`, `request-response`,
//! `spawn-heavy`, `disabled` or `watchdog-idle`. Each workload's module says what it measures
//! and the environment variables it takes.
//!
//! Configurations (see `config.rs`): plain tokio, `Registry` alone, `Registry` + pollwatch
//! layer, pollwatch hooks source, watched futures, stable worker hooks, two floors (hooks that
//! only time polls: through `quanta`, and the real floor of two TSC reads and one
//! thread-local add), console-subscriber, tokio-metrics, tokio-blocked, dial9-tokio-telemetry.

mod config;
mod disabled;
mod floor;
mod measure;
mod poll_heavy;
mod report;
mod request_response;
mod spawn_heavy;
mod watchdog_idle;

use std::process::Command;
use std::time::Instant;

/// The workloads, in the order `all` runs them.
const WORKLOADS: [&str; 5] = [
    "poll-heavy",
    "request-response",
    "spawn-heavy",
    "disabled",
    "watchdog-idle",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str).unwrap_or("all") {
        "all" => all(),
        "poll-heavy" => poll_heavy::run(),
        "request-response" => request_response::run(),
        "spawn-heavy" => spawn_heavy::run(),
        "disabled" => disabled::run(),
        "watchdog-idle" => watchdog_idle::run(),
        disabled::CHILD_ARG => disabled::child(args.get(1).map_or("", String::as_str)),
        spawn_heavy::CHILD_ARG => spawn_heavy::child(args.get(1).map_or("", String::as_str)),
        other => {
            eprintln!(
                "unknown workload {other}; expected all, {}",
                WORKLOADS.join(", ")
            );
            std::process::exit(2);
        }
    }
}

/// Every workload, each in a child process of its own.
fn all() {
    let start = Instant::now();
    println!(
        "pollwatch-bench: every workload, each in a process of its own (tokio_unstable: {}, {} CPUs)",
        cfg!(tokio_unstable),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let exe = std::env::current_exe().unwrap();
    for workload in WORKLOADS {
        let started = Instant::now();
        let status = Command::new(&exe).arg(workload).status().unwrap();
        if !status.success() {
            println!("warning: {workload} exited with {status}");
        }
        println!();
        println!("({workload} took {:.0} s)", started.elapsed().as_secs_f64());
    }
    println!();
    println!("full run took {:.0} s", start.elapsed().as_secs_f64());
}

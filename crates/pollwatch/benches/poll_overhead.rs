//! Poll-path overhead: 1,000 tasks × 2,000 `yield_now` on a 2-worker runtime, in one process,
//! in interleaved rounds: plain tokio (no subscriber), a bare `Registry`, and `Registry` +
//! pollwatch. Prints wall-clock ns per poll (both workers busy), the medians over rounds, and
//! the cost pollwatch adds on top of `Registry` alone. With `--features console`, two more
//! rows in the same rounds: console-subscriber alone (`Registry` + `ConsoleLayer`, serving)
//! and `Registry` + `ConsoleLayer` + pollwatch (what `init()` composes with the feature,
//! fmt aside), and the cost pollwatch adds on top of console-subscriber.
//!
//! `cargo bench -p pollwatch --bench poll_overhead [--features console]` (env: `ROUNDS`,
//! default 7; `TASKS`, default 1000; `YIELDS`, default 2000; `WORKERS`, default 2).

use std::time::{Duration, Instant};

use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Config {
    Plain,
    Registry,
    PollWatch,
    #[cfg(feature = "console")]
    Console,
    #[cfg(feature = "console")]
    ConsolePollWatch,
}

impl Config {
    #[cfg(not(feature = "console"))]
    const ALL: &[Config] = &[Config::Plain, Config::Registry, Config::PollWatch];
    #[cfg(feature = "console")]
    const ALL: &[Config] = &[
        Config::Plain,
        Config::Registry,
        Config::PollWatch,
        Config::Console,
        Config::ConsolePollWatch,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::Plain => "plain tokio (no subscriber)",
            Config::Registry => "Registry alone",
            Config::PollWatch => "Registry + pollwatch",
            #[cfg(feature = "console")]
            Config::Console => "Registry + console-subscriber",
            #[cfg(feature = "console")]
            Config::ConsolePollWatch => {
                "Registry + console-subscriber + pollwatch (feature console)"
            }
        }
    }

    fn dispatch(self) -> (Option<Dispatch>, Option<pollwatch::Handle>) {
        match self {
            Config::Plain => (None, None),
            Config::Registry => (Some(Dispatch::new(tracing_subscriber::registry())), None),
            Config::PollWatch => {
                let (layer, handle) = pollwatch::Builder::new().build();
                (
                    Some(Dispatch::new(tracing_subscriber::registry().with(layer))),
                    Some(handle),
                )
            }
            // Both serve the console feed (on a port of their own), as in an application.
            #[cfg(feature = "console")]
            Config::Console => {
                let console = console_subscriber::ConsoleLayer::builder()
                    .server_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                    .spawn();
                (
                    Some(Dispatch::new(tracing_subscriber::registry().with(console))),
                    None,
                )
            }
            #[cfg(feature = "console")]
            Config::ConsolePollWatch => {
                let builder = pollwatch::Builder::new()
                    .console_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
                let console = builder.console_layer().expect("console layer");
                let (layer, handle) = builder.build();
                let subscriber = tracing_subscriber::registry().with(console).with(layer);
                (Some(Dispatch::new(subscriber)), Some(handle))
            }
        }
    }
}

/// One run of the workload; returns ns per poll and the polls pollwatch counted, if any.
fn run(config: Config, workers: usize, tasks: usize, yields: usize) -> (f64, Option<u64>) {
    let (dispatch, handle) = config.dispatch();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers);
    if let Some(dispatch) = dispatch.clone() {
        builder.on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        });
    }
    let mut work = || {
        let rt = builder.build().unwrap();
        let start = Instant::now();
        rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    tokio::spawn(async move {
                        for _ in 0..yields {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        });
        let elapsed = start.elapsed();
        drop(rt);
        elapsed
    };
    let elapsed: Duration = match &dispatch {
        Some(dispatch) => tracing::dispatcher::with_default(dispatch, work),
        None => work(),
    };
    let polls = (tasks * (yields + 1)) as f64;
    let counted = handle.map(|h| h.report().totals.polls);
    (elapsed.as_nanos() as f64 / polls, counted)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env("ROUNDS", 7);
    let tasks = env("TASKS", 1000);
    let yields = env("YIELDS", 2000);
    let workers = env("WORKERS", 2);
    println!(
        "poll_overhead: {tasks} tasks x {yields} yield_now, {workers} workers, {rounds} interleaved rounds (tokio_unstable: {})",
        cfg!(tokio_unstable)
    );
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Config::ALL.len()];
    let mut added: Vec<f64> = Vec::new();
    let mut added_to_console: Vec<f64> = Vec::new();
    // A warm-up round, not counted.
    for &config in Config::ALL {
        run(config, workers, tasks / 10, yields / 10);
    }
    for round in 0..rounds {
        let mut this_round = vec![0.0; Config::ALL.len()];
        // Rotate the order each round so no configuration always runs first.
        for k in 0..Config::ALL.len() {
            let i = (k + round) % Config::ALL.len();
            let (ns, counted) = run(Config::ALL[i], workers, tasks, yields);
            if let Some(counted) = counted {
                assert!(
                    counted >= (tasks * (yields + 1)) as u64,
                    "pollwatch counted {counted} polls"
                );
            }
            this_round[i] = ns;
            samples[i].push(ns);
        }
        added.push(this_round[2] - this_round[1]);
        if this_round.len() == 5 {
            added_to_console.push(this_round[4] - this_round[3]);
        }
        let figures: Vec<String> = this_round.iter().map(|ns| format!("{ns:.1}")).collect();
        println!("  round {round}: {} ns/poll", figures.join("  "));
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    println!();
    println!("| configuration | ns/poll (median) | ratio to plain | ratio to Registry |");
    println!("|---|---|---|---|");
    for (i, config) in Config::ALL.iter().enumerate() {
        println!(
            "| {} | {:.1} | {:.2} | {:.2} |",
            config.name(),
            medians[i],
            medians[i] / medians[0],
            medians[i] / medians[1]
        );
    }
    let added_median = median(&mut added);
    println!();
    println!(
        "pollwatch adds {:.1} ns/poll over Registry alone (median of per-round differences; target <= 30)",
        added_median
    );
    if !added_to_console.is_empty() {
        println!(
            "pollwatch adds {:.1} ns/poll over console-subscriber alone (median of per-round differences)",
            median(&mut added_to_console)
        );
    }
}

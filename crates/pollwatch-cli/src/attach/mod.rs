//! `pollwatch attach PID`: the blocking line of a tokio service that is already running, with
//! no rebuild and no code change. The process is never stopped as a whole: its workers
//! (found by their stacks, [`workers`]) are followed from `/proc/<pid>/task/<tid>/` every
//! tick ([`watch`]); a worker held past the threshold has its stack read by stopping that one
//! thread for the microseconds copying it takes (`pollwatch_capture::remote`), and is judged
//! by the same code as in process ([`stack`], `pollwatch-judge`): call site, blocking API,
//! cause, fix. What it sees shows live ([`view`]), and a report is written at the end
//! (`--duration`, Ctrl-C, or the process exiting) that the other commands read ([`report`]).
//!
//! Needs ptrace access to the process (the same user with `kernel.yama.ptrace_scope` 0, or
//! `CAP_SYS_PTRACE`); a killed `pollwatch attach` leaves the process running and untraced.

mod report;
mod stack;
mod view;
mod watch;
mod workers;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollwatch_capture::remote::{Process, RemoteStack};
use pollwatch_report::units::format_duration_ns;

use crate::Outcome;
use stack::Stack;
use watch::Watch;
use workers::Workers;

/// How often the process's threads are listed again.
const RELIST: Duration = Duration::from_secs(1);

/// `pollwatch attach`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The process to watch (a tokio service; no pollwatch needed in it).
    pid: i32,
    /// How long to watch (`10s`, `2m`); until Ctrl-C or the process exits when not given.
    #[arg(long)]
    duration: Option<humantime::Duration>,
    /// A worker held longer than this by one call or one task poll is a stall.
    #[arg(long, default_value = "10ms")]
    threshold: humantime::Duration,
    /// How often each worker is looked at.
    #[arg(long, default_value = "2ms")]
    tick: humantime::Duration,
    /// Where the report goes [default: `pollwatch-attach-PID` in the current directory].
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Plain lines, one per stall caught and ended, instead of the live view (also when the
    /// output is not a terminal).
    #[arg(long)]
    no_tui: bool,
}

pub(crate) fn run(args: &Args) -> Result<Outcome, String> {
    let threshold: Duration = args.threshold.into();
    let tick: Duration = args.tick.into();
    if threshold < Duration::from_millis(1) || tick.is_zero() || tick > threshold {
        return Err(format!(
            "--threshold must be at least 1ms and --tick between 1ns and the threshold (got \
             {} and {})",
            args.threshold, args.tick
        ));
    }
    let mut process =
        Process::open(args.pid).map_err(|e| format!("cannot attach to {}: {e}", args.pid))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;

    let mut symbolize = |process: &mut Process, raw: &RemoteStack| {
        let symbolized = process.symbolize(&raw.addresses);
        Stack::new(raw, symbolized)
    };
    let started = Instant::now();
    let mut workers = Workers::default();
    workers.refresh(&mut process, &mut symbolize);
    if workers.found.is_empty() {
        let threads = process.threads().len();
        return Err(format!(
            "no tokio runtime worker in process {} ({threads} threads, {} unreadable): no \
             thread's stack runs tokio's scheduler. Not a tokio process, or its binary has no \
             symbols to tell (a stripped build: keep its symbol table)",
            args.pid, workers.unreadable
        ));
    }
    let tui = !args.no_tui && std::io::stdout().is_terminal();
    let exe = process.executable().unwrap_or_default();
    let mut watch = Watch::new(threshold);
    let mut last_list = started;
    let mut last_draw: Option<Instant> = None;
    let mut exited = false;
    if !tui {
        println!(
            "pollwatch attach: watching {} workers of process {} ({exe}); threshold {}",
            workers.found.len(),
            args.pid,
            args.threshold
        );
    }
    let deadline = args.duration.map(|d| started + Duration::from(d));
    let mut next = started;
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if !process.alive() {
            exited = true;
            break;
        }
        let current: Vec<workers::Worker> = workers.found.values().cloned().collect();
        for worker in &current {
            for i in watch.tick(&mut process, worker, now, &mut symbolize) {
                if !tui {
                    println!("{}", view::line(&watch.stalls[i], &watch.roots, started));
                }
            }
        }
        if now.duration_since(last_list) >= RELIST {
            last_list = now;
            let before: Vec<i32> = workers.found.keys().copied().collect();
            workers.refresh(&mut process, &mut symbolize);
            for tid in before {
                if !workers.found.contains_key(&tid) {
                    if let Some(i) = watch.forget(tid) {
                        if !tui {
                            println!("{}", view::line(&watch.stalls[i], &watch.roots, started));
                        }
                    }
                }
            }
        }
        if tui && last_draw.is_none_or(|at| now.duration_since(at) >= view::REDRAW) {
            last_draw = Some(now);
            let header = format!(
                "pollwatch attach {} ({exe}): {} workers, threshold {}, {} watched; Ctrl-C \
                 stops and writes the report",
                args.pid,
                workers.found.len(),
                args.threshold,
                format_duration_ns(nanos(now.duration_since(started)))
            );
            view::redraw(&view::screen(&header, &watch.stalls, &watch.roots, now));
        }
        next += tick;
        let after = Instant::now();
        if next > after {
            std::thread::sleep(next - after);
        } else {
            // Behind (this process was kept off a CPU): go on from now.
            next = after;
        }
    }
    let now = Instant::now();
    for i in watch.finish() {
        if !tui {
            println!("{}", view::line(&watch.stalls[i], &watch.roots, started));
        }
    }
    process.release_pending();

    let dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("pollwatch-attach-{}", args.pid)));
    let diagnostics = vec![format!(
        "pollwatch attach: process {} watched from outside for {}; only polls that held a \
         worker past the threshold were seen, so each site's polls, busy time and histogram \
         count its stalls only, and a site is the task the stack showed (its outermost \
         function of the application's), not its spawn site. {} stack reads stopped one \
         thread each for at most {} (mean {}).",
        args.pid,
        format_duration_ns(nanos(now.duration_since(started))),
        watch.reads,
        format_duration_ns(nanos(watch.stopped_max)),
        format_duration_ns(nanos(
            watch.stopped_total / u32::try_from(watch.reads.max(1)).unwrap_or(u32::MAX)
        )),
    )];
    let report = report::build(
        &watch.stalls,
        &watch.roots,
        started,
        threshold,
        workers.found.len(),
        diagnostics,
    );
    let written = pollwatch_report::write::write_dir(&dir, &report, 12)
        .map_err(|e| format!("cannot write the report: {e}"))?;
    let mut text = String::new();
    if tui {
        text.push_str(&view::screen(
            &format!("pollwatch attach {} ({exe}): stopped", args.pid),
            &watch.stalls,
            &watch.roots,
            now,
        ));
        text.push('\n');
    }
    if exited {
        text.push_str(&format!("process {} exited\n", args.pid));
    }
    text.push_str(&format!(
        "{} stalls on {} workers; {} stack reads stopped a thread for at most {}\n\
         report written: {}\nread it with: pollwatch show {}\n",
        watch.stalls.len(),
        workers.found.len(),
        watch.reads,
        format_duration_ns(nanos(watch.stopped_max)),
        written.json.display(),
        dir.display()
    ));
    Ok(Outcome::Done(text))
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

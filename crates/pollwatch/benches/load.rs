//! pollwatch under heavy load: what it costs in peak RSS and whether its counts stay exact.
//!
//! The same workload runs in four configurations, each in a child process of its own (this
//! bench re-executed with `--child CONFIG`), so each peak RSS (`VmHWM`) is that
//! configuration's alone: plain tokio (no subscriber), a `tracing_subscriber::Registry` alone
//! as the global subscriber, the `Registry` with pollwatch's layer and its live report files
//! (`report.json` and `report.txt` rewritten every `FLUSH_SECS`, an interval appended to
//! `report.hlog` every second, in a temporary directory), and the `Registry` with
//! console-subscriber's `ConsoleLayer` at its defaults (served on an ephemeral port).
//!
//! The workload: a multi-thread runtime with 2 workers; one driver task spawns `TASKS` short
//! tasks (each finishes in its one poll) named over `SITES` names, so they form `SITES` sites
//! of one spawn location, and after every `TASKS / STALLS` of them a stalling task (its own
//! site) that blocks its worker with `std::thread::sleep(STALL_MS)`, past pollwatch's
//! threshold of `THRESHOLD_MS`. The driver awaits its tasks in batches of `BATCH`, so at most
//! `BATCH` of them (plus the stalling ones among them) are alive at once, and yields every 100
//! spawns so that its own polls stay well under the threshold.
//!
//! The bench counts what it spawned, completed and stalled, per site. With pollwatch it fails
//! (prints `FAIL` and exits non-zero) unless: every short site shows exactly as many polls and
//! tasks as the bench completed and spawned there; the stalling site shows exactly `STALLS`
//! polls and slow polls, and at most that many stalls (a stall is a poll the watchdog caught
//! while it ran: the bench prints how many it caught); the report files written while running
//! are there; after the last write `report.json` reads back (`pollwatch_report::json::read`)
//! with the same counts; and the all-sites intervals of `report.hlog` add up to the report's
//! polls.
//!
//! `cargo bench -p pollwatch --bench load` (env: `TASKS`, default 1000000; `SITES`, default
//! 1000; `STALLS`, default 10000; `STALL_MS`, default 5; `THRESHOLD_MS`, default 2; `BATCH`,
//! default 1000; `FLUSH_SECS`, default 1; `BACKTRACES`, default 1: pollwatch captures the
//! stacks of stalls; `CONFIGS`, default `plain,registry,pollwatch`).
//! A quick try: `TASKS=100000 STALLS=500 cargo bench -p pollwatch --bench load`.
//!
//! console-subscriber runs only when named (`CONFIGS=registry,console`), and only at a
//! reduced size: it keeps every task for an hour (its default retention), with its poll-time
//! histograms, about 50 KB a task: 4.7 GiB at `TASKS=100000`, so the full million would need
//! some 47 GiB.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollwatch_report::Report;
use tracing_subscriber::layer::SubscriberExt;

/// The configurations, in the order they run.
const CONFIGS: [(&str, &str); 4] = [
    ("plain", "plain tokio (no subscriber)"),
    ("registry", "Registry alone"),
    ("pollwatch", "Registry + pollwatch, live files"),
    ("console", "Registry + console-subscriber"),
];

/// The driver yields after this many spawns, so its own polls stay short.
const YIELD_EVERY: usize = 100;

/// The name of the stalling tasks' site.
const STALL_NAME: &str = "load-stall";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` in letters (`a`, `b`, .. `ba`, ..): a name's digits would be folded into one site.
fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The name of short-task site `site`.
fn site_name(site: usize) -> String {
    format!("load-{}", letters(site))
}

/// The process's peak resident set so far, KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// A `/proc/self/status` figure in KiB (0 when missing).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Samples this process's anonymous resident memory (`RssAnon`, which the kernel keeps no peak
/// of) every 20 ms until the returned flag is set; the thread returns the highest sample.
/// `VmHWM` also counts file-backed pages, such as the binary's debug sections the symbolizer
/// maps, which are page cache the kernel can drop; the anonymous peak is memory of its own.
fn sample_peak_anon() -> (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<u64>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !flag.load(Relaxed) {
            peak = peak.max(status_kib("RssAnon:"));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak.max(status_kib("RssAnon:"))
    });
    (stop, sampler)
}

/// The workload's size, from the environment.
#[derive(Clone, Copy, Debug)]
struct Params {
    tasks: usize,
    sites: usize,
    stalls: usize,
    stall: Duration,
    threshold: Duration,
    batch: usize,
    flush: Duration,
    backtraces: bool,
}

impl Params {
    fn from_env() -> Self {
        Self {
            tasks: env("TASKS", 1_000_000) as usize,
            sites: env("SITES", 1000).max(1) as usize,
            stalls: env("STALLS", 10_000) as usize,
            stall: Duration::from_millis(env("STALL_MS", 5)),
            threshold: Duration::from_millis(env("THRESHOLD_MS", 2)),
            batch: env("BATCH", 1000).max(1) as usize,
            flush: Duration::from_secs(env("FLUSH_SECS", 1)),
            backtraces: env("BACKTRACES", 1) != 0,
        }
    }
}

/// What the bench itself counted.
struct Counters {
    spawned: Vec<AtomicU64>,
    completed: Vec<AtomicU64>,
    stalls_started: AtomicU64,
    stalls_done: AtomicU64,
}

impl Counters {
    fn new(sites: usize) -> Self {
        Self {
            spawned: (0..sites).map(|_| AtomicU64::new(0)).collect(),
            completed: (0..sites).map(|_| AtomicU64::new(0)).collect(),
            stalls_started: AtomicU64::new(0),
            stalls_done: AtomicU64::new(0),
        }
    }

    fn completed_total(&self) -> u64 {
        self.completed.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// Spawns one short task of site `site` (every one from this line: one spawn location).
fn spawn_short(name: &str, site: usize, counters: &Arc<Counters>) -> tokio::task::JoinHandle<()> {
    counters.spawned[site].fetch_add(1, Relaxed);
    let counters = counters.clone();
    tokio::task::Builder::new()
        .name(name)
        .spawn(async move {
            counters.completed[site].fetch_add(1, Relaxed);
        })
        .unwrap()
}

/// Spawns one task that blocks its worker for `stall`.
fn spawn_stall(stall: Duration, counters: &Arc<Counters>) -> tokio::task::JoinHandle<()> {
    let counters = counters.clone();
    tokio::task::Builder::new()
        .name(STALL_NAME)
        .spawn(async move {
            counters.stalls_started.fetch_add(1, Relaxed);
            std::thread::sleep(stall);
            counters.stalls_done.fetch_add(1, Relaxed);
        })
        .unwrap()
}

/// Runs the workload on a new 2-worker runtime, dropped before returning.
fn workload(p: Params, counters: &Arc<Counters>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let names: Arc<Vec<String>> = Arc::new((0..p.sites).map(site_name).collect());
    let counters = counters.clone();
    rt.block_on(async move {
        let driver = tokio::task::Builder::new()
            .name("load-driver")
            .spawn(async move {
                let every = p
                    .tasks
                    .checked_div(p.stalls)
                    .map_or(usize::MAX, |n| n.max(1));
                let mut stalled = 0;
                let mut batch = Vec::with_capacity(p.batch + 1);
                let mut spawned = 0;
                while spawned < p.tasks || stalled < p.stalls {
                    if spawned < p.tasks {
                        let site = spawned % p.sites;
                        batch.push(spawn_short(&names[site], site, &counters));
                        spawned += 1;
                    }
                    if stalled < p.stalls && (spawned % every == 0 || spawned == p.tasks) {
                        batch.push(spawn_stall(p.stall, &counters));
                        stalled += 1;
                    }
                    if spawned % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                    if batch.len() >= p.batch {
                        for task in batch.drain(..) {
                            task.await.unwrap();
                        }
                    }
                }
                for task in batch {
                    task.await.unwrap();
                }
            })
            .unwrap();
        driver.await.unwrap();
    });
    drop(rt);
}

/// What one configuration measured, as the child prints it for the parent.
#[derive(Debug, Default)]
struct Outcome {
    config: String,
    wall_ms: u64,
    peak_rss_kib: u64,
    peak_anon_kib: u64,
    tasks_completed: u64,
    stalls_started: u64,
    /// pollwatch's figures (zero in the other configurations).
    sites: u64,
    polls: u64,
    slow_polls: u64,
    stalls: u64,
    stalls_other_sites: u64,
    dropped: String,
    failures: Vec<String>,
}

impl Outcome {
    fn to_json(&self) -> String {
        serde_json::json!({
            "config": self.config,
            "wall_ms": self.wall_ms,
            "peak_rss_kib": self.peak_rss_kib,
            "peak_anon_kib": self.peak_anon_kib,
            "tasks_completed": self.tasks_completed,
            "stalls_started": self.stalls_started,
            "sites": self.sites,
            "polls": self.polls,
            "slow_polls": self.slow_polls,
            "stalls": self.stalls,
            "stalls_other_sites": self.stalls_other_sites,
            "dropped": self.dropped,
            "failures": self.failures,
        })
        .to_string()
    }

    fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let n = |key: &str| v[key].as_u64().unwrap_or(0);
        let s = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            config: s("config"),
            wall_ms: n("wall_ms"),
            peak_rss_kib: n("peak_rss_kib"),
            peak_anon_kib: n("peak_anon_kib"),
            tasks_completed: n("tasks_completed"),
            stalls_started: n("stalls_started"),
            sites: n("sites"),
            polls: n("polls"),
            slow_polls: n("slow_polls"),
            stalls: n("stalls"),
            stalls_other_sites: n("stalls_other_sites"),
            dropped: s("dropped"),
            failures: v["failures"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Installs `config`'s subscriber globally; with pollwatch, returns its handle.
fn install(config: &str, p: Params, dir: &Path) -> Option<pollwatch::Handle> {
    match config {
        "plain" => None,
        "registry" => {
            tracing::subscriber::set_global_default(tracing_subscriber::registry()).unwrap();
            None
        }
        "pollwatch" => {
            let (layer, handle) = pollwatch::Builder::new()
                .threshold(p.threshold)
                .tick(Duration::from_millis(1))
                // Every name a site of its own (names take at most 3/4 of the table).
                .max_sites(p.sites * 2 + 16)
                .names_per_location(p.sites)
                .report_dir(dir)
                .flush_every(p.flush)
                .backtraces(p.backtraces)
                .build();
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .unwrap();
            Some(handle)
        }
        "console" => {
            let layer = console_subscriber::ConsoleLayer::builder()
                .server_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .spawn();
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .unwrap();
            None
        }
        other => panic!("unknown configuration {other}"),
    }
}

/// Sums the all-sites histograms of an interval log, one line at a time.
fn hlog_polls(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut polls = 0;
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with('"') || line.starts_with("Tag=") {
            continue;
        }
        let encoded = line.rsplit(',').next().unwrap_or_default();
        let h = pollwatch_report::histogram::decode(encoded).map_err(|e| e.to_string())?;
        polls += h.len();
    }
    Ok(polls)
}

/// Compares pollwatch's report with the bench's own counters; returns what differs.
fn check(report: &Report, p: Params, counters: &Counters, what: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let mut short_polls = 0;
    for site in 0..p.sites {
        let name = site_name(site);
        let (spawned, completed) = (
            counters.spawned[site].load(Relaxed),
            counters.completed[site].load(Relaxed),
        );
        let Some(s) = report.sites.iter().find(|s| s.name == name) else {
            failures.push(format!("{what}: no site named {name}"));
            continue;
        };
        short_polls += s.polls;
        if s.polls != completed || s.tasks_spawned != spawned {
            failures.push(format!(
                "{what}: site {name}: {} polls and {} tasks, the bench completed {completed} \
                 and spawned {spawned}",
                s.polls, s.tasks_spawned
            ));
        }
    }
    if short_polls != counters.completed_total() {
        failures.push(format!(
            "{what}: {short_polls} polls of short tasks, the bench completed {}",
            counters.completed_total()
        ));
    }
    let started = counters.stalls_started.load(Relaxed);
    match report.sites.iter().find(|s| s.name == STALL_NAME) {
        // Every stalling poll is counted and timed (polls, slow polls); a stall is one the
        // watchdog caught while it ran, so there can be fewer (a watchdog kept off a CPU for
        // the few ms a stall runs past the threshold), never more.
        Some(s)
            if p.stalls > 0
                && ((s.polls, s.slow_polls) != (started, started) || s.stalls > started) =>
        {
            failures.push(format!(
                "{what}: the stalling site shows {} polls, {} slow polls, {} stalls; the \
                 bench stalled {started} times",
                s.polls, s.slow_polls, s.stalls
            ));
        }
        None if p.stalls > 0 => failures.push(format!("{what}: no site named {STALL_NAME}")),
        _ => {}
    }
    failures
}

/// Runs configuration `config` in this process and prints its outcome.
fn child(config: &str) -> ExitCode {
    let p = Params::from_env();
    let dir = std::env::temp_dir().join(format!("pollwatch-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let counters = Arc::new(Counters::new(p.sites));
    let started = Instant::now();
    let (stop_sampling, sampler) = sample_peak_anon();
    let handle = install(config, p, &dir);
    workload(p, &counters);
    let mut out = Outcome {
        config: config.to_owned(),
        tasks_completed: counters.completed_total(),
        stalls_started: counters.stalls_started.load(Relaxed),
        ..Outcome::default()
    };
    let Some(handle) = handle else {
        out.wall_ms = started.elapsed().as_millis() as u64;
        out.peak_rss_kib = peak_rss_kib();
        stop_sampling.store(true, Relaxed);
        out.peak_anon_kib = sampler.join().unwrap_or(0);
        println!("RESULT {}", out.to_json());
        return ExitCode::SUCCESS;
    };
    // Files written while running, before the last write (as `Guard::finish` does it).
    let live: Vec<&str> = ["report.json", "report.txt", "report.hlog"]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !live.is_empty() {
        out.failures
            .push(format!("not written while running: {}", live.join(", ")));
    }
    handle.flush();
    handle.shutdown();
    if let Err(e) = handle.write_report(&dir) {
        out.failures.push(format!("writing the report: {e}"));
    }
    out.wall_ms = started.elapsed().as_millis() as u64;
    out.peak_rss_kib = peak_rss_kib();
    stop_sampling.store(true, Relaxed);
    out.peak_anon_kib = sampler.join().unwrap_or(0);

    let report = handle.report();
    out.sites = report.sites.len() as u64;
    out.polls = report.totals.polls;
    out.slow_polls = report.totals.slow_polls;
    out.stalls = report.totals.stalls;
    out.stalls_other_sites = report
        .sites
        .iter()
        .filter(|s| s.name != STALL_NAME)
        .map(|s| s.stalls)
        .sum();
    out.dropped = format!("{:?}", report.dropped);
    out.failures.extend(check(&report, p, &counters, "report"));
    match pollwatch_report::json::read(&dir) {
        Ok(file) => {
            out.failures
                .extend(check(&file, p, &counters, "report.json"));
            if (file.totals.polls, file.totals.stalls) != (out.polls, out.stalls) {
                out.failures.push(format!(
                    "report.json: {} polls and {} stalls, the handle's report {} and {}",
                    file.totals.polls, file.totals.stalls, out.polls, out.stalls
                ));
            }
        }
        Err(e) => out.failures.push(format!("report.json: {e}")),
    }
    if !dir.join("report.txt").is_file() {
        out.failures.push("report.txt missing".to_owned());
    }
    match hlog_polls(&dir.join("report.hlog")) {
        Ok(polls) if polls == out.polls => {}
        Ok(polls) => out.failures.push(format!(
            "report.hlog: {polls} polls over its intervals, the report {}",
            out.polls
        )),
        Err(e) => out.failures.push(format!("report.hlog: {e}")),
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("RESULT {}", out.to_json());
    if out.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs configuration `config` in a child process and reads its outcome.
fn run_child(exe: &PathBuf, config: &str) -> Result<Outcome, String> {
    let output = Command::new(exe)
        .args(["--child", config])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{config}: cannot run: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("{config}: no result ({})", output.status))?;
    Outcome::from_json(line).map_err(|e| format!("{config}: bad result: {e}"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if let Some(at) = args.iter().position(|a| a == "--child") {
        return child(args.get(at + 1).map_or("", String::as_str));
    }
    let p = Params::from_env();
    let wanted = std::env::var("CONFIGS").unwrap_or_else(|_| "plain,registry,pollwatch".to_owned());
    println!(
        "load: {} short tasks over {} sites, {} stalls of {} ms (threshold {} ms), batches of \
         {}, 2 workers; pollwatch's report files rewritten every {} s",
        p.tasks,
        p.sites,
        p.stalls,
        p.stall.as_millis(),
        p.threshold.as_millis(),
        p.batch,
        p.flush.as_secs()
    );
    let exe = std::env::current_exe().unwrap();
    let mut outcomes = Vec::new();
    let mut failed = false;
    for (config, label) in CONFIGS {
        if !wanted.split(',').any(|w| w.trim() == config) {
            continue;
        }
        match run_child(&exe, config) {
            Ok(out) => {
                println!(
                    "  {label:<36} wall {:>7.1} s  peak RSS {:>7.1} MiB (anonymous {:>7.1} MiB)  \
                     ({} tasks, {} stalls run)",
                    out.wall_ms as f64 / 1e3,
                    mib(out.peak_rss_kib),
                    mib(out.peak_anon_kib),
                    out.tasks_completed,
                    out.stalls_started
                );
                outcomes.push(out);
            }
            Err(e) => {
                println!("  FAIL {e}");
                failed = true;
            }
        }
    }
    let peak = |config: &str| {
        outcomes
            .iter()
            .find(|o| o.config == config)
            .map(|o| mib(o.peak_rss_kib))
    };
    let anon = |config: &str| {
        outcomes
            .iter()
            .find(|o| o.config == config)
            .map(|o| mib(o.peak_anon_kib))
    };
    if let Some(pw) = outcomes.iter().find(|o| o.config == "pollwatch") {
        if let (Some(registry), Some(registry_anon)) = (peak("registry"), anon("registry")) {
            println!(
                "  pollwatch's share: {:.1} MiB over the Registry alone ({:.1} MiB anonymous)",
                mib(pw.peak_rss_kib) - registry,
                mib(pw.peak_anon_kib) - registry_anon
            );
        }
        if let Some(plain) = peak("plain") {
            println!(
                "  pollwatch with the Registry: {:.1} MiB over plain tokio",
                mib(pw.peak_rss_kib) - plain
            );
        }
        println!(
            "  pollwatch counted: {} sites, {} polls, {} slow polls, {} stalls ({} at other \
             sites than the stalling one)",
            pw.sites, pw.polls, pw.slow_polls, pw.stalls, pw.stalls_other_sites
        );
        let caught = pw.stalls - pw.stalls_other_sites;
        println!(
            "  caught live: {caught} of the {} stalling polls ({:.2}%)",
            pw.stalls_started,
            100.0 * caught as f64 / pw.stalls_started.max(1) as f64
        );
        println!("  dropped: {}", pw.dropped);
        for f in &pw.failures {
            println!("  FAIL {f}");
        }
        failed |= !pw.failures.is_empty();
    }
    if let (Some(console), Some(registry)) = (peak("console"), peak("registry")) {
        println!(
            "  console-subscriber's share: {:.1} MiB over the Registry alone",
            console - registry
        );
    }
    if failed {
        println!("FAIL");
        ExitCode::FAILURE
    } else {
        println!("ok: pollwatch's counts are exact");
        ExitCode::SUCCESS
    }
}

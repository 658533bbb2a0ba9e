//! What keeping the report directory current costs: the reporter thread's CPU while tasks from
//! many sites run, with the live files off (the baseline) and on (an interval appended to
//! `report.hlog` every second, `report.json` and `report.txt` rewritten every `FLUSH_SECS`),
//! in the same run (after a warm-up run whose reporter loads the debug info), and the size of
//! the interval log.
//!
//! `cargo bench -p pollwatch --bench report_files` (env: `SITES`, default 100; `SECS`,
//! default 10 per configuration; `FLUSH_SECS`, default 10). The baseline runs first, so the
//! peak RSS printed after the live run shows what the live files add.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The reporter threads of this process (`comm` is cut to 15 bytes).
fn reporter_tids() -> HashSet<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return HashSet::new();
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == "pollwatch-repor")
        })
        .filter_map(|t| t.file_name().to_str()?.parse().ok())
        .collect()
}

/// CPU time of thread `tid` of this process, ns (Linux schedstat).
fn thread_cpu_ns(tid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
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

/// The process's peak resident set so far, KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

struct Run {
    reporter_cpu: Duration,
    polls: u64,
    log_bytes: u64,
}

fn run(live: bool, sites: usize, secs: u64, flush: Duration) -> Run {
    let dir = std::env::temp_dir().join(format!("pollwatch-bench-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let before = reporter_tids();
    // Every name a site of its own (names are sites only up to 3/4 of the table).
    let builder = pollwatch::Builder::new()
        .max_sites(sites * 2)
        .names_per_location(sites);
    let builder = if live {
        builder.report_dir(&dir).flush_every(flush)
    } else {
        builder.write_while_running(false)
    };
    let (layer, handle) = builder.build();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let tid = loop {
        if let Some(&tid) = reporter_tids().difference(&before).next() {
            break tid;
        }
        std::thread::yield_now();
    };
    let rt = {
        let dispatch = dispatch.clone();
        tracing::dispatcher::with_default(&dispatch.clone(), || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .on_thread_start(move || {
                    std::mem::forget(tracing::dispatcher::set_default(&dispatch));
                })
                .build()
                .unwrap()
        })
    };
    let cpu_start = thread_cpu_ns(tid);
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let until = Instant::now() + Duration::from_secs(secs);
            // One task per site at a time, each polled a few times a millisecond.
            let mut tasks = Vec::new();
            for site in 0..sites {
                let name = format!("site-{}", letters(site));
                tasks.push(
                    tokio::task::Builder::new()
                        .name(&name)
                        .spawn(async move {
                            while Instant::now() < until {
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                        })
                        .unwrap(),
                );
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    let reporter_cpu = Duration::from_nanos(thread_cpu_ns(tid).saturating_sub(cpu_start));
    let report = handle.report();
    handle.shutdown();
    let log_bytes = std::fs::metadata(dir.join("report.hlog")).map_or(0, |m| m.len());
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        reporter_cpu,
        polls: report.totals.polls,
        log_bytes,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sites = env("SITES", 100) as usize;
    let secs = env("SECS", 10);
    let flush = Duration::from_secs(env("FLUSH_SECS", 10));
    println!(
        "report_files: {sites} sites (one task each, polled about every ms), {secs} s per \
         configuration, 2 workers"
    );
    // The first reporter of the process loads the debug info for symbolizing (tens of ms):
    // not part of what is measured.
    let _ = run(false, 1, 1, flush);
    for live in [false, true] {
        let r = run(live, sites, secs, flush);
        let share = r.reporter_cpu.as_secs_f64() / secs as f64 * 100.0;
        let what = if live {
            format!(
                "live files (hlog every 1 s, reports every {} s)",
                flush.as_secs()
            )
        } else {
            "live files off (baseline)".to_owned()
        };
        println!(
            "  {what:<48} reporter CPU {:>8.1} ms = {share:.2}% of a core; {} polls; report.hlog {} bytes ({:.0} B/s); peak RSS so far {} KiB",
            r.reporter_cpu.as_secs_f64() * 1e3,
            r.polls,
            r.log_bytes,
            r.log_bytes as f64 / secs as f64,
            peak_rss_kib()
        );
    }
}

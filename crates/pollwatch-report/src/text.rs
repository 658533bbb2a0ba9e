//! The human-readable text report (`report.txt`).
//!
//! The text is for people; its layout may change in any release. Programs should read the JSON
//! report instead.
//!
//! ```text
//! pollwatch 0.1.0: uptime 60.0s, slow-poll threshold 10.0ms; 1202 polls, 3 slow, 3 tasks, 2 sites, 2 threads
//!
//! top sites by time held (2 of 2):
//! site                         polls  slow    busy     p50     p90     p99   p99.9     max
//! src/ingest.rs:42:5 "ingest"   1002     3   5.36s  5.01ms  9.03ms  9.92ms  45.0ms   312ms
//! src/tick.rs:80:9               200     0  6.06ms  30.2µs  38.4µs  39.9µs  40.4µs  40.4µs
//!
//! top sites by harm, the task delay their stalls caused (1 of 1):
//! site                         stalls  task delay  per stall   held
//! src/ingest.rs:42:5 "ingest"       1       3.74s      3.74s  5.36s
//!
//! slow polls (2 most recent of 3 counted, newest last):
//!   task "ingest" id=7 (src/ingest.rs:42:5 "ingest") held thread "tokio-runtime-worker" for 45.0ms
//!   task "ingest" id=7 (src/ingest.rs:42:5 "ingest") held thread "tokio-runtime-worker" for 312ms (drop)
//!
//! stalls caught while running (1 most recent of 1 counted, newest last):
//!   task "ingest" (src/ingest.rs:42:5) held worker "tokio-rt-worker" for 312ms: blocked in read() on /data/users.json at src/store.rs:17 (std::fs::read_to_string). Use tokio::fs::read_to_string or spawn_blocking.
//!       in span load_users{user=3}; 900µs on CPU since caught; up to 15 tasks waited behind it (6 in the global queue, 9 in its worker's own queue): 3.74s of task delay; at 20.0ms: sleeping at src/store.rs:17
//!
//! blocking call sites by spawn site:
//!   src/ingest.rs:42:5 "ingest" (1 stalls)
//!         1x src/store.rs:17 std::fs::read_to_string [file_io]
//! ```
//!
//! Columns: `polls` and `slow` count polls and slow polls; `busy` is the time the site's tasks
//! held their threads in total (`busy_ns`); `p50` .. `p99.9` are poll-time percentiles and `max`
//! the longest poll. In the harm table (shown when a stall delayed waiting tasks), `task delay`
//! is the scheduling delay the site's stalls added to the tasks ready to run behind them
//! (`delay_task_ns`: `1.20s` is one task held up for 1.2 s, or twelve for 100 ms) and `held`
//! its `busy`. Durations have three significant digits ([`format_duration_ns`]).

use std::fmt::Write as _;

use crate::model::{Harm, Report, SiteReport, SlowPoll};
use crate::units::format_duration_ns;

/// The text report's file name in a report directory.
pub const FILE: &str = "report.txt";

/// How many sites the text report lists, as pollwatch writes it.
pub const TOP_SITES: usize = 20;

/// The widest a table line may be, in characters.
pub const MAX_WIDTH: usize = 120;

/// How many recent slow polls the text report lists.
pub const SLOW_POLLS_SHOWN: usize = 10;

/// The narrowest the site column is made when labels are truncated.
const MIN_LABEL_WIDTH: usize = 16;

/// The column headers of the sites table, after the site label.
const HEADERS: [&str; 8] = ["polls", "slow", "busy", "p50", "p90", "p99", "p99.9", "max"];

/// Space between columns.
const GAP: &str = "  ";

/// Renders `report` as text: a header line, the `top` sites by time held, the most recent slow
/// polls, what was dropped (`nothing` when nothing was) and the diagnostics.
pub fn render(report: &Report, top: usize) -> String {
    let mut out = String::new();
    header(&mut out, report);
    sites(&mut out, report, top);
    if report.totals.delay_task_ns > 0 {
        sites_by_harm(&mut out, report, top);
    }
    slow_polls(&mut out, &report.slow_polls, report.totals.slow_polls);
    stalls(&mut out, report);
    in_place(&mut out, report);
    dropped(&mut out, report);
    diagnostics(&mut out, report);
    out
}

/// Appends the report's diagnostics, one `diagnostic:` line each, after a blank line (nothing
/// when there are none).
pub fn diagnostics(out: &mut String, report: &Report) {
    if !report.diagnostics.is_empty() {
        out.push('\n');
    }
    for diagnostic in &report.diagnostics {
        let _ = writeln!(out, "diagnostic: {diagnostic}");
    }
}

/// Appends the header line: version, uptime, threshold and totals.
pub fn header(out: &mut String, report: &Report) {
    let t = &report.totals;
    let _ = writeln!(
        out,
        "pollwatch {}: uptime {}, slow-poll threshold {}; {}, {} slow, {}, {}, {}",
        report.pollwatch_version,
        format_duration_ns(report.uptime_ns),
        format_duration_ns(report.threshold_ns),
        counted(t.polls, "poll"),
        t.slow_polls,
        counted(t.tasks_spawned, "task"),
        counted(report.sites.len() as u64, "site"),
        counted(u64::from(t.threads), "thread"),
    );
}

/// `1 site`, `17 sites`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Appends, after a blank line, the table of the `top` sites that held their threads longest,
/// with their poll counts and percentiles.
pub fn sites(out: &mut String, report: &Report, top: usize) {
    out.push('\n');
    if report.sites.is_empty() {
        out.push_str("no task has been polled yet\n");
        return;
    }
    let mut ranked: Vec<&SiteReport> = report.sites.iter().collect();
    ranked.sort_by_key(|s| std::cmp::Reverse(s.busy_ns));
    ranked.truncate(top);
    let _ = writeln!(
        out,
        "top sites by time held ({} of {}):",
        ranked.len(),
        report.sites.len()
    );

    let rows: Vec<Vec<String>> = ranked.iter().map(|s| numbers(s).to_vec()).collect();
    table(out, &ranked, &HEADERS, &rows);
}

/// A table of `sites`, one row of number cells each under `headers`: the labels left-aligned
/// and truncated on the left to keep lines within [`MAX_WIDTH`], the numbers right-aligned.
fn table(out: &mut String, sites: &[&SiteReport], headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(width_of(cell));
        }
    }
    let numbers_width: usize = widths.iter().map(|w| w + GAP.len()).sum();
    let label_limit = MAX_WIDTH.saturating_sub(numbers_width).max(MIN_LABEL_WIDTH);
    let label_width = sites
        .iter()
        .map(|s| width_of(&s.label))
        .chain([width_of("site")])
        .max()
        .unwrap_or(0)
        .min(label_limit);
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    line(out, "site", label_width, &headers, &widths);
    for (site, row) in sites.iter().zip(rows) {
        let label = truncate_left(&site.label, label_width);
        line(out, &label, label_width, row, &widths);
    }
}

/// The column headers of the harm table, after the site label.
const HARM_HEADERS: [&str; 4] = ["stalls", "task delay", "per stall", "held"];

/// Appends, after a blank line, the table of the `top` sites whose stalls delayed the tasks
/// waiting behind them most (`delay_task_ns`, shown as task delay: `1.20s` is one task held up
/// for 1.2 s, or twelve for 100 ms), with their stalls and the time they held their threads.
/// Sites with no delay are left out.
pub fn sites_by_harm(out: &mut String, report: &Report, top: usize) {
    out.push('\n');
    let mut ranked: Vec<&SiteReport> = report
        .sites
        .iter()
        .filter(|s| s.delay_task_ns > 0 || s.delay_unknown_stalls > 0)
        .collect();
    if ranked.is_empty() {
        out.push_str("no harm: no task was seen waiting behind a stall\n");
        return;
    }
    ranked.sort_by_key(|s| std::cmp::Reverse(s.delay_task_ns));
    let with_harm = ranked.len();
    ranked.truncate(top);
    let _ = writeln!(
        out,
        "top sites by harm, the task delay their stalls caused ({} of {with_harm}):",
        ranked.len(),
    );
    let rows: Vec<Vec<String>> = ranked
        .iter()
        .map(|s| {
            vec![
                s.stalls.to_string(),
                site_delay(s),
                format_duration_ns(s.delay_task_ns / s.stalls.max(1)),
                format_duration_ns(s.busy_ns),
            ]
        })
        .collect();
    table(out, &ranked, &HARM_HEADERS, &rows);
}

/// A site's task delay for a table: `unknown` when none was counted and some stalls' harm is
/// unknown, a lower bound (`12.3ms+`) when some was.
pub fn site_delay(site: &SiteReport) -> String {
    match (site.delay_task_ns, site.delay_unknown_stalls) {
        (_, 0) => format_duration_ns(site.delay_task_ns),
        (0, _) => "unknown".to_owned(),
        (ns, _) => format!("{}+", format_duration_ns(ns)),
    }
}

/// One stall's harm as a detail: the tasks that waited behind it and the delay.
pub fn harm_text(harm: &Harm) -> String {
    if harm.local_set {
        return format!(
            "its thread runs a LocalSet, whose waiting tasks pollwatch cannot count: task delay \
             unknown (at least {})",
            format_duration_ns(harm.delay_task_ns)
        );
    }
    let waiting = harm.tasks_waiting();
    if waiting == 0 {
        return "no task waited behind it".to_owned();
    }
    let own = harm
        .local_queue_max
        .map(|n| format!(", {n} in its worker's own queue"))
        .unwrap_or_default();
    format!(
        "up to {} waited behind it ({} in the global queue{own}): {} of task delay",
        counted(waiting, "task"),
        harm.global_queue_max,
        format_duration_ns(harm.delay_task_ns)
    )
}

/// The number cells of one site's row, in [`HEADERS`] order.
fn numbers(site: &SiteReport) -> [String; 8] {
    let p = &site.percentiles;
    [
        site.polls.to_string(),
        site.slow_polls.to_string(),
        format_duration_ns(site.busy_ns),
        format_duration_ns(p.p50_ns),
        format_duration_ns(p.p90_ns),
        format_duration_ns(p.p99_ns),
        format_duration_ns(p.p999_ns),
        format_duration_ns(site.max_ns),
    ]
}

/// One table line: the label left-aligned, the numbers right-aligned, no trailing spaces.
fn line(out: &mut String, label: &str, label_width: usize, cells: &[String], widths: &[usize]) {
    out.push_str(label);
    pad(out, label_width.saturating_sub(width_of(label)));
    for (cell, &width) in cells.iter().zip(widths) {
        out.push_str(GAP);
        pad(out, width.saturating_sub(width_of(cell)));
        out.push_str(cell);
    }
    out.push('\n');
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Display width, counting characters (`µ` is one column).
fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to at most `width` characters by dropping its start, marked with `…`; the end of a
/// site label (file name, line, task name) is the part that tells sites apart.
fn truncate_left(s: &str, width: usize) -> String {
    let len = width_of(s);
    if len <= width {
        return s.to_owned();
    }
    let keep = width.saturating_sub(1);
    let tail: String = s.chars().skip(len - keep).collect();
    format!("…{tail}")
}

fn slow_polls(out: &mut String, listed: &[SlowPoll], total: u64) {
    if listed.is_empty() {
        return;
    }
    let shown = &listed[listed.len().saturating_sub(SLOW_POLLS_SHOWN)..];
    out.push('\n');
    let _ = writeln!(
        out,
        "slow polls ({} most recent of {} counted, newest last):",
        shown.len(),
        total.max(listed.len() as u64)
    );
    for poll in shown {
        out.push_str("  task ");
        if !poll.task_name.is_empty() {
            let _ = write!(out, "{:?} ", poll.task_name);
        }
        let _ = write!(
            out,
            "id={} ({}) held thread {:?} for {}",
            poll.task_id,
            poll.site,
            poll.thread,
            format_duration_ns(poll.duration_ns)
        );
        if poll.kind == "drop" {
            out.push_str(" (drop)");
        }
        out.push('\n');
    }
}

/// Appends, after a blank line, the `dropped:` line: what was lost, or `nothing`.
pub fn dropped(out: &mut String, report: &Report) {
    let d = &report.dropped;
    let counters = [
        (d.tasks_in_overflow_site, "tasks in the overflow site"),
        (d.slow_poll_events, "slow-poll events"),
        (d.polls_nested_too_deep, "polls nested too deep to time"),
        (d.values_clamped, "values clamped to 1h"),
        (d.stall_warnings_suppressed, "warnings over the rate limit"),
        (d.stall_samples, "stall samples (queue full)"),
        (d.report_writes_failed, "report writes failed"),
        (d.host_panics, "panics caught on pollwatch's threads"),
    ];
    let nonzero: Vec<String> = counters
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    out.push('\n');
    if nonzero.is_empty() {
        out.push_str("dropped: nothing\n");
    } else {
        let _ = writeln!(out, "dropped: {}", nonzero.join(", "));
    }
}

/// The polls caught blocking inside `block_in_place`, per site: allowed, so not stalls.
fn in_place(out: &mut String, report: &Report) {
    if report.totals.polls_in_place == 0 {
        return;
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "polls blocking in place (allowed, not stalls): {}",
        report.totals.polls_in_place
    );
    for site in report.sites.iter().filter(|s| s.polls_in_place > 0) {
        let _ = writeln!(out, "  {}  {}", site.polls_in_place, site.label);
    }
}

/// How many recent stalls the text report lists.
pub const STALLS_SHOWN: usize = 10;

fn stalls(out: &mut String, report: &Report) {
    if report.stalls.is_empty() {
        return;
    }
    let shown = &report.stalls[report.stalls.len().saturating_sub(STALLS_SHOWN)..];
    out.push('\n');
    let _ = writeln!(
        out,
        "stalls caught while running ({} most recent of {} counted, newest last):",
        shown.len(),
        report.totals.stalls.max(report.stalls.len() as u64)
    );
    for stall in shown {
        let _ = writeln!(out, "  {}", stall.message);
        let mut details = Vec::new();
        if let Some(span) = &stall.span {
            details.push(format!("in span {span}"));
        }
        if let Some(cpu) = stall.cpu_ns {
            details.push(format!(
                "{} on CPU since caught",
                format_duration_ns(cpu.min(stall.duration_ns))
            ));
        }
        if !stall.ended {
            details.push("still running".to_owned());
        }
        if let Some(harm) = &stall.harm {
            details.push(harm_text(harm));
        }
        for sample in &stall.samples {
            details.push(format!(
                "at {}: {}{}",
                format_duration_ns(sample.at_ns),
                sample.state,
                sample
                    .call_site
                    .as_deref()
                    .map(|c| format!(" at {c}"))
                    .unwrap_or_default()
            ));
        }
        if !details.is_empty() {
            let _ = writeln!(out, "      {}", details.join("; "));
        }
    }
    let with_call_sites: Vec<&SiteReport> = report
        .sites
        .iter()
        .filter(|s| !s.call_sites.is_empty())
        .collect();
    if with_call_sites.is_empty() {
        return;
    }
    out.push('\n');
    out.push_str("blocking call sites by spawn site:\n");
    for site in with_call_sites {
        let _ = writeln!(out, "  {} ({} stalls)", site.label, site.stalls);
        for call in &site.call_sites {
            let _ = writeln!(
                out,
                "    {:>5}x {} {} [{}]",
                call.count,
                call.call_site,
                call.blocking_call.as_deref().unwrap_or("-"),
                call.cause
            );
        }
    }
}

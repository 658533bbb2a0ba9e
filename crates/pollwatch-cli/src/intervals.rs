//! `pollwatch intervals`: each interval of the interval log with its poll count and
//! percentiles, per site and for all sites together; `--json` adds every recorded value, for
//! checking the log against other HdrHistogram readers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pollwatch_report::histogram::Histogram;
use pollwatch_report::hlog;
use pollwatch_report::units::format_duration_ns;
use serde::Serialize;

use crate::input;
use crate::Outcome;

/// `pollwatch intervals`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A report directory, or a `report.hlog`.
    path: PathBuf,
    /// Only the sites whose label contains PATTERN (the all-sites lines are always kept).
    #[arg(long, value_name = "PATTERN")]
    site: Option<String>,
    /// Print JSON, one object per histogram, with every recorded value and its count.
    #[arg(long)]
    json: bool,
}

/// One histogram of the log, as `--json` prints it.
#[derive(Debug, Serialize)]
struct IntervalJson<'a> {
    /// The site label; `null` for all sites together.
    site: Option<&'a str>,
    start_s: f64,
    length_s: f64,
    count: u64,
    min_ns: u64,
    max_ns: u64,
    p50_ns: u64,
    p90_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    /// `[value, count]` for every recorded bucket (the bucket's lowest value).
    values: Vec<[u64; 2]>,
}

pub(crate) fn run(args: &Args) -> Result<Outcome, String> {
    let file = if args.path.is_dir() {
        args.path.join(hlog::FILE)
    } else {
        args.path.clone()
    };
    let log = hlog::read(&file).map_err(|e| e.to_string())?;
    let keep = |i: &&hlog::Interval| {
        i.site
            .as_deref()
            .is_none_or(|s| input::matches(args.site.as_deref(), s))
    };
    let intervals: Vec<&hlog::Interval> = log.intervals.iter().filter(keep).collect();
    if args.json {
        let all: Vec<IntervalJson<'_>> = intervals.iter().map(|i| json(i)).collect();
        let mut text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
        text.push('\n');
        return Ok(Outcome::Done(text));
    }
    Ok(Outcome::Done(render(&file, &log, &intervals)))
}

fn json(i: &hlog::Interval) -> IntervalJson<'_> {
    let h = &i.histogram;
    IntervalJson {
        site: i.site.as_deref(),
        start_s: i.start_s,
        length_s: i.length_s,
        count: h.len(),
        min_ns: if h.is_empty() { 0 } else { h.min() },
        max_ns: if h.is_empty() { 0 } else { h.max() },
        p50_ns: quantile(h, 0.5),
        p90_ns: quantile(h, 0.9),
        p99_ns: quantile(h, 0.99),
        p999_ns: quantile(h, 0.999),
        values: h
            .iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect(),
    }
}

fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

fn render(file: &Path, log: &hlog::Log, intervals: &[&hlog::Interval]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} histograms, {} sites",
        file.display(),
        intervals.len(),
        log.sites().len()
    );
    let _ = writeln!(
        out,
        "{:>9} {:>7} {:>8} {:>8} {:>8} {:>8}  site",
        "start", "polls", "p50", "p99", "p99.9", "max"
    );
    for i in intervals {
        let h = &i.histogram;
        let time = |ns: u64| {
            if h.is_empty() {
                "-".to_owned()
            } else {
                format_duration_ns(ns)
            }
        };
        let max = if h.is_empty() { 0 } else { h.max() };
        let _ = writeln!(
            out,
            "{:>8.3}s {:>7} {:>8} {:>8} {:>8} {:>8}  {}",
            i.start_s,
            h.len(),
            time(quantile(h, 0.5)),
            time(quantile(h, 0.99)),
            time(quantile(h, 0.999)),
            time(max),
            i.site.as_deref().unwrap_or("(all sites)")
        );
    }
    if log.truncated_tail {
        out.push_str("note: the last line was cut short (the process stopped while writing) and was left out\n");
    }
    out
}

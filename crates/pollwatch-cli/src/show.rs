//! `pollwatch show`: the sites that held their threads longest, then the stalls grouped by
//! blocking call site, with what to change. With `--by harm`, the sites whose stalls delayed
//! the tasks waiting behind them most, and the call sites whose recent stalls did.
//!
//! A report whose figures cannot all be true ([`Report::inconsistencies`]) is still shown, with
//! one `warning: inconsistent report: ...` line per problem under the header (and, with
//! `--json`, an `inconsistencies` list).

use std::fmt::Write as _;
use std::path::PathBuf;

use pollwatch_report::call_sites::{self, CallSiteGroup};
use pollwatch_report::units::format_duration_ns;
use pollwatch_report::{text, Dropped, Percentiles, Report, Totals};
use serde::Serialize;

use crate::input::{self, Run};
use crate::Outcome;

/// `pollwatch show`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A report directory, or a `report.json`.
    path: PathBuf,
    /// Print JSON for programs instead of text.
    #[arg(long)]
    json: bool,
    /// How many sites (and blocking call sites) to list.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Only the sites whose label (`file:line:col "name"`) contains PATTERN.
    #[arg(long, value_name = "PATTERN")]
    site: Option<String>,
    /// Rank sites by the time they held their threads, or by harm: the delay their stalls
    /// added to the tasks ready to run behind them.
    #[arg(long, value_enum, default_value_t = By::Held)]
    by: By,
}

/// What `show` ranks sites (and call sites) by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum By {
    /// The time the site's tasks held their threads (`busy_ns`); call sites by stalls.
    Held,
    /// The task delay the site's stalls caused (`delay_task_ns`); call sites by the task
    /// delay of their recent stalls.
    Harm,
}

pub(crate) fn run(args: &Args) -> Result<Outcome, String> {
    let run = Run::read(&args.path, false)?;
    let mut report = run.report;
    let pattern = args.site.as_deref();
    let total_sites = report.sites.len();
    // The header describes the whole run; the rest, the sites selected.
    let mut out = String::new();
    text::header(&mut out, &report);
    // Checked before `--site` narrows the sites: the warnings are about the whole file.
    let inconsistencies = report.inconsistencies();
    report.sites.retain(|s| input::matches(pattern, &s.label));
    let mut groups = call_sites::group(&report, |_| true);
    if args.by == By::Harm {
        // A stable sort: equal harm keeps the most stalls first.
        groups.sort_by_key(|g| std::cmp::Reverse(g.recent_delay_task_ns));
    }
    groups.truncate(args.top);
    if args.json {
        return Ok(Outcome::Done(json(
            &report,
            &groups,
            args,
            &inconsistencies,
        )));
    }
    for problem in &inconsistencies {
        let _ = writeln!(out, "warning: inconsistent report: {problem}");
    }
    if pattern.is_some() {
        let _ = writeln!(
            out,
            "{} of {total_sites} sites match --site {:?}",
            report.sites.len(),
            pattern.unwrap_or_default()
        );
    }
    match args.by {
        By::Held => text::sites(&mut out, &report, args.top),
        By::Harm => text::sites_by_harm(&mut out, &report, args.top),
    }
    stalls(&mut out, &report, &groups, args.by);
    text::dropped(&mut out, &report);
    text::diagnostics(&mut out, &report);
    Ok(Outcome::Done(out))
}

fn stalls(out: &mut String, report: &Report, groups: &[CallSiteGroup], by: By) {
    out.push('\n');
    let total: u64 = report.sites.iter().map(|s| s.stalls).sum();
    if total == 0 {
        out.push_str("no stalls: no poll held its thread past the threshold while watched\n");
        return;
    }
    let order = match by {
        By::Held => "",
        By::Harm => ", most task delay first",
    };
    let _ = writeln!(
        out,
        "stalls by blocking call site ({total} stalls; {} listed{order}):",
        crate::table::plural(groups.len() as u64, "call site")
    );
    for g in groups {
        let call = g
            .blocking_call
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>5}x {}{call} [{}]",
            g.count,
            g.call_site,
            g.causes.join(", ")
        );
        for s in &g.sites {
            let _ = writeln!(out, "          task spawned at {} ({})", s.site, s.count);
        }
        match (&g.blocked_on, g.longest_ns) {
            (Some(on), Some(ns)) => {
                let _ = writeln!(
                    out,
                    "          blocked on {on}; longest {}",
                    format_duration_ns(ns)
                );
            }
            (None, Some(ns)) => {
                let _ = writeln!(out, "          longest {}", format_duration_ns(ns));
            }
            _ => {}
        }
        if g.recent_delay_task_ns > 0 {
            let _ = writeln!(
                out,
                "          task delay {} (recent stalls)",
                format_duration_ns(g.recent_delay_task_ns)
            );
        }
        if let Some(fix) = &g.suggestion {
            let _ = writeln!(out, "          fix: {fix}");
        }
    }
}

/// `show --json`: a stable shape for programs (the sites listed, and the groups).
/// `inconsistencies` ([`Report::inconsistencies`]) is there only when the report has some.
#[derive(Serialize)]
struct ShowJson<'a> {
    pollwatch_version: &'a str,
    uptime_ns: u64,
    threshold_ns: u64,
    totals: &'a Totals,
    dropped: &'a Dropped,
    sites: Vec<SiteJson<'a>>,
    call_sites: &'a [CallSiteGroup],
    diagnostics: &'a [String],
    #[serde(skip_serializing_if = "no_strings")]
    inconsistencies: &'a [String],
}

fn no_strings(list: &&[String]) -> bool {
    list.is_empty()
}

#[derive(Serialize)]
struct SiteJson<'a> {
    label: &'a str,
    name: &'a str,
    polls: u64,
    slow_polls: u64,
    busy_ns: u64,
    max_ns: u64,
    percentiles: &'a Percentiles,
    stalls: u64,
    delay_task_ns: u64,
    /// Stalls whose harm is unknown: `delay_task_ns` is then a lower bound.
    delay_unknown_stalls: u64,
}

fn json(
    report: &Report,
    groups: &[CallSiteGroup],
    args: &Args,
    inconsistencies: &[String],
) -> String {
    let mut sites: Vec<_> = report.sites.iter().collect();
    match args.by {
        By::Held => sites.sort_by_key(|s| std::cmp::Reverse(s.busy_ns)),
        By::Harm => {
            sites.retain(|s| s.delay_task_ns > 0 || s.delay_unknown_stalls > 0);
            sites.sort_by_key(|s| std::cmp::Reverse(s.delay_task_ns));
        }
    }
    sites.truncate(args.top);
    let shown = ShowJson {
        pollwatch_version: &report.pollwatch_version,
        uptime_ns: report.uptime_ns,
        threshold_ns: report.threshold_ns,
        totals: &report.totals,
        dropped: &report.dropped,
        sites: sites
            .into_iter()
            .map(|s| SiteJson {
                label: &s.label,
                name: &s.name,
                polls: s.polls,
                slow_polls: s.slow_polls,
                busy_ns: s.busy_ns,
                max_ns: s.max_ns,
                percentiles: &s.percentiles,
                stalls: s.stalls,
                delay_task_ns: s.delay_task_ns,
                delay_unknown_stalls: s.delay_unknown_stalls,
            })
            .collect(),
        call_sites: groups,
        diagnostics: &report.diagnostics,
        inconsistencies,
    };
    let mut text = serde_json::to_string_pretty(&shown).unwrap_or_default();
    text.push('\n');
    text
}

//! `pollwatch diff BEFORE AFTER`: per-site changes in poll counts and percentiles, new and
//! vanished sites, new and fixed blocking call sites, and gates that fail on a regression.

use crate::table::plural;
use std::fmt::Write as _;
use std::path::PathBuf;

use pollwatch_report::call_sites::{self, CallSiteGroup};
use pollwatch_report::units::format_duration_ns;
use pollwatch_report::{Report, SiteReport, CAUSES};

use crate::gate::{self, Gate, Metric};
use crate::input::{self, Run};
use crate::table::Table;
use crate::Outcome;

/// `pollwatch diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The earlier run: a report directory or a `report.json`.
    before: PathBuf,
    /// The later run.
    after: PathBuf,
    /// Exit with status 1 when a site in both runs changed past this, e.g. 'p99>+20%',
    /// 'max>+50ms', 'stalls>+0', 'polls<-30%'. Metrics: p50, p90, p99, p99.9, max, busy,
    /// polls, slow, stalls. Repeat for several gates.
    #[arg(long = "fail-if", value_name = "GATE")]
    fail_if: Vec<Gate>,
    /// Exit with status 1 when the later run stalled at a blocking call site the earlier did not.
    #[arg(long)]
    fail_on_new_call_sites: bool,
    /// Percentile and max gates skip sites with fewer polls than this in either run (too few
    /// polls to compare tails).
    #[arg(long, default_value_t = 50, value_name = "N")]
    min_polls: u64,
    /// Leave out the stalls of this cause everywhere (site and total counts, gates, call
    /// sites). Repeat for several; `none` counts every stall. The default leaves out
    /// `descheduled`: stalls of a host short of CPU, not of the code.
    #[arg(
        long = "ignore-cause",
        value_name = "CAUSE",
        default_values_t = [String::from("descheduled")]
    )]
    ignore_causes: Vec<String>,
    /// How many sites in both runs to list (the gates check all of them).
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Only the sites whose label contains PATTERN.
    #[arg(long, value_name = "PATTERN")]
    site: Option<String>,
}

/// The metrics each site's rows show, in order.
const COLUMNS: [Metric; 8] = [
    Metric::Polls,
    Metric::Slow,
    Metric::Stalls,
    Metric::P50,
    Metric::P90,
    Metric::P99,
    Metric::P999,
    Metric::Max,
];

pub(crate) fn run(args: &Args) -> Result<Outcome, String> {
    for cause in &args.ignore_causes {
        if cause != "none" && !CAUSES.contains(&cause.as_str()) {
            return Err(format!(
                "--ignore-cause {cause}: not a stall cause (one of: none, {})",
                CAUSES.join(", ")
            ));
        }
    }
    let mut before = Run::read(&args.before, false)?;
    let mut after = Run::read(&args.after, false)?;
    let ignored =
        [&mut before, &mut after].map(|run| leave_out(&mut run.report, &args.ignore_causes));
    let pattern = args.site.as_deref();
    let keep = |s: &&SiteReport| input::matches(pattern, &s.label);
    let old: Vec<&SiteReport> = before.report.sites.iter().filter(keep).collect();
    let new: Vec<&SiteReport> = after.report.sites.iter().filter(keep).collect();
    let mut both: Vec<(&SiteReport, &SiteReport)> = new
        .iter()
        .filter_map(|a| find(&old, &a.label).map(|b| (b, *a)))
        .collect();
    both.sort_by_key(|(_, a)| std::cmp::Reverse(a.busy_ns));
    let appeared: Vec<&SiteReport> = new
        .iter()
        .copied()
        .filter(|a| find(&old, &a.label).is_none())
        .collect();
    let vanished: Vec<&SiteReport> = old
        .iter()
        .copied()
        .filter(|b| find(&new, &b.label).is_none())
        .collect();

    let mut out = String::new();
    header(&mut out, "before", &before.name, &before.report);
    header(&mut out, "after", &after.name, &after.report);
    if before.report.threshold_ns != after.report.threshold_ns {
        out.push_str(
            "note: the runs used different slow-poll thresholds: their slow-poll and stall \
             counts do not compare\n",
        );
    }
    totals(&mut out, &before.report, &after.report);
    if ignored.iter().any(|&n| n > 0) {
        let _ = writeln!(
            out,
            "left out: {} -> {} stalls of cause {} (--ignore-cause)",
            ignored[0],
            ignored[1],
            args.ignore_causes.join(", ")
        );
    }
    sites_in_both(&mut out, &both, args.top);
    listed(&mut out, "new sites", &appeared);
    listed(&mut out, "vanished sites", &vanished);
    let in_sites = |s: &SiteReport| input::matches(pattern, &s.label);
    let (added, fixed) = call_site_changes(
        &call_sites::group(&before.report, in_sites),
        &call_sites::group(&after.report, in_sites),
    );
    call_sites_section(&mut out, &added, &fixed);

    let mut failed = false;
    if !args.fail_if.is_empty() || args.fail_on_new_call_sites {
        out.push_str("\ngates:\n");
    }
    for gate in &args.fail_if {
        failed |= check_gate(&mut out, gate, &both, args.min_polls);
    }
    if args.fail_on_new_call_sites {
        if added.is_empty() {
            out.push_str("  no new blocking call sites: ok\n");
        } else {
            failed = true;
            let _ = writeln!(
                out,
                "  no new blocking call sites: FAILED, {} new",
                added.len()
            );
        }
    }
    Ok(if failed {
        Outcome::GateFailed(out)
    } else {
        Outcome::Done(out)
    })
}

/// The site labelled `label`.
fn find<'a>(sites: &[&'a SiteReport], label: &str) -> Option<&'a SiteReport> {
    sites.iter().copied().find(|s| s.label == label)
}

fn header(out: &mut String, which: &str, name: &str, r: &Report) {
    let _ = writeln!(
        out,
        "{which:<6} {name}: pollwatch {}, uptime {}, threshold {}",
        r.pollwatch_version,
        format_duration_ns(r.uptime_ns),
        format_duration_ns(r.threshold_ns)
    );
}

fn totals(out: &mut String, before: &Report, after: &Report) {
    let (b, a) = (&before.totals, &after.totals);
    let pair = |name: &str, b: u64, a: u64, show: fn(u64) -> String| {
        format!(
            "{name} {} -> {} ({})",
            show(b),
            show(a),
            gate::show_percent(gate::percent_change(b, a))
        )
    };
    let count = |n: u64| n.to_string();
    let _ = writeln!(
        out,
        "totals: {}, {}, {}, {}",
        pair("polls", b.polls, a.polls, count),
        pair("slow", b.slow_polls, a.slow_polls, count),
        pair("stalls", b.stalls, a.stalls, count),
        pair("held", b.busy_ns, a.busy_ns, format_duration_ns),
    );
}

fn sites_in_both(out: &mut String, both: &[(&SiteReport, &SiteReport)], top: usize) {
    out.push('\n');
    if both.is_empty() {
        out.push_str("no site is in both runs\n");
        return;
    }
    let shown = both.len().min(top);
    if shown == 0 {
        let _ = writeln!(
            out,
            "sites in both runs: {} (none listed, --top 0)",
            both.len()
        );
        return;
    }
    let _ = writeln!(
        out,
        "sites in both runs ({shown} of {}, by time held in the later run):",
        both.len()
    );
    let mut table = Table::new(COLUMNS.map(Metric::name).to_vec());
    for (b, a) in both.iter().take(top) {
        table.label(&a.label);
        table.row("  before", COLUMNS.map(|m| m.show(m.of(b))).to_vec());
        table.row("  after", COLUMNS.map(|m| m.show(m.of(a))).to_vec());
        table.row(
            "  change",
            COLUMNS.map(|m| change_cell(m, m.of(b), m.of(a))).to_vec(),
        );
    }
    out.push_str(&table.render());
}

/// A change as one cell: counts as a signed difference, times in percent.
fn change_cell(metric: Metric, before: u64, after: u64) -> String {
    if before == after {
        return "=".to_owned();
    }
    if metric.is_time() {
        gate::show_percent(gate::percent_change(before, after))
    } else {
        format!("{:+}", i128::from(after) - i128::from(before))
    }
}

fn listed(out: &mut String, title: &str, sites: &[&SiteReport]) {
    if sites.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title} ({}):", sites.len());
    for s in sites {
        let _ = writeln!(
            out,
            "  {}: {}, p99 {}, max {}, {}",
            s.label,
            plural(s.polls, "poll"),
            format_duration_ns(s.percentiles.p99_ns),
            format_duration_ns(s.max_ns),
            plural(s.stalls, "stall")
        );
    }
}

/// Removes the stalls of `causes` from `report`'s counts, call sites and listed stalls;
/// returns how many there were. (Stalls past a site's first 32 call sites are counted under
/// `other`, of `various` causes, and stay.)
fn leave_out(report: &mut Report, causes: &[String]) -> u64 {
    let ignored = |cause: &str| causes.iter().any(|c| c == cause);
    let mut total = 0;
    for site in &mut report.sites {
        let mut left_out = 0;
        site.call_sites.retain(|call| {
            let keep = !ignored(&call.cause);
            if !keep {
                left_out += call.count;
            }
            keep
        });
        site.stalls = site.stalls.saturating_sub(left_out);
        total += left_out;
    }
    report.stalls.retain(|stall| !ignored(&stall.cause));
    report.totals.stalls = report.totals.stalls.saturating_sub(total);
    total
}

/// The call sites only the later run stalled at, and those only the earlier did.
fn call_site_changes(
    before: &[CallSiteGroup],
    after: &[CallSiteGroup],
) -> (Vec<CallSiteGroup>, Vec<CallSiteGroup>) {
    let same = |a: &CallSiteGroup, b: &CallSiteGroup| {
        a.call_site == b.call_site && a.blocking_call == b.blocking_call
    };
    let added = after
        .iter()
        .filter(|a| !before.iter().any(|b| same(a, b)))
        .cloned()
        .collect();
    let fixed = before
        .iter()
        .filter(|b| !after.iter().any(|a| same(a, b)))
        .cloned()
        .collect();
    (added, fixed)
}

fn call_sites_section(out: &mut String, added: &[CallSiteGroup], fixed: &[CallSiteGroup]) {
    if added.is_empty() && fixed.is_empty() {
        out.push_str("\nblocking call sites: no change\n");
        return;
    }
    out.push_str("\nblocking call sites:\n");
    for (what, groups) in [("new", added), ("gone", fixed)] {
        for g in groups {
            let _ = writeln!(
                out,
                "  {what:<4} {} {}[{}] ({})",
                g.call_site,
                g.blocking_call
                    .as_deref()
                    .map(|c| format!("{c} "))
                    .unwrap_or_default(),
                g.causes.join(", "),
                plural(g.count, "stall")
            );
        }
    }
}

/// Checks `gate` on every site in both runs; writes the verdict; true when it failed.
fn check_gate(
    out: &mut String,
    gate: &Gate,
    both: &[(&SiteReport, &SiteReport)],
    min_polls: u64,
) -> bool {
    let mut checked = 0;
    let mut skipped = 0;
    let mut breaches = Vec::new();
    for (b, a) in both {
        if gate.metric.is_distribution() && (b.polls < min_polls || a.polls < min_polls) {
            skipped += 1;
            continue;
        }
        checked += 1;
        let (before, after) = (gate.metric.of(b), gate.metric.of(a));
        if let Some(breach) = gate.check(before, after) {
            breaches.push(format!(
                "      {}: {} {} -> {} ({})",
                a.label,
                gate.metric.name(),
                gate.metric.show(before),
                gate.metric.show(after),
                breach.change
            ));
        }
    }
    let skipped_note = if skipped > 0 {
        format!(", {skipped} with under {min_polls} polls skipped")
    } else {
        String::new()
    };
    if breaches.is_empty() {
        let _ = writeln!(out, "  {gate}: ok ({checked} sites checked{skipped_note})");
        false
    } else {
        let _ = writeln!(
            out,
            "  {gate}: FAILED for {} of {checked} sites{skipped_note}",
            breaches.len()
        );
        for line in breaches {
            out.push_str(&line);
            out.push('\n');
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Report {
        pollwatch_report::json::from_str(include_str!(
            "../../pollwatch-report/src/example-report.json"
        ))
        .unwrap()
    }

    #[test]
    fn stalls_of_an_ignored_cause_leave_every_count() {
        let mut report = example();
        // The example's one stall, at a site with one call site, as if the host was busy.
        report.sites[0].call_sites[0].cause = "descheduled".to_owned();
        report.stalls[0].cause = "descheduled".to_owned();
        let mut counted = report.clone();
        assert_eq!(leave_out(&mut counted, &["none".to_owned()]), 0);
        assert_eq!(counted.totals.stalls, 1);
        assert_eq!(leave_out(&mut report, &["descheduled".to_owned()]), 1);
        assert_eq!(report.totals.stalls, 0);
        assert_eq!(report.sites[0].stalls, 0);
        assert!(report.sites[0].call_sites.is_empty());
        assert!(report.stalls.is_empty());
        assert!(report.inconsistencies().is_empty());
    }

    #[test]
    fn stalls_of_other_causes_stay() {
        let mut report = example();
        assert_eq!(leave_out(&mut report, &["descheduled".to_owned()]), 0);
        assert_eq!((report.totals.stalls, report.sites[0].stalls), (1, 1));
        assert_eq!(report.stalls.len(), 1);
    }
}

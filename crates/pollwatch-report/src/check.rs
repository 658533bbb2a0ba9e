//! Consistency checks: figures in one report that cannot all be true.
//!
//! A report written by pollwatch satisfies these, so a report that fails one was written by a
//! pollwatch with a bug, or edited. Readers still accept such a report (old reports must open);
//! [`Report::inconsistencies`] says what is wrong with it, so a tool can warn.
//!
//! | check | why it holds |
//! | --- | --- |
//! | a site's percentiles are at most its `max_ns` | percentiles are capped at the longest poll |
//! | a site's percentiles do not decrease: `p50_ns` ≤ `p90_ns` ≤ `p99_ns` ≤ `p999_ns` | they come from one histogram |
//! | a site's `slow_polls` is at most its `polls`, and the same for `totals` | slow polls are polls |
//! | an ended stall's `duration_ns` is at most its site's `max_ns`, or its `drop_ns` for a drop, plus a slack (below) | the stalled poll is one of the site's polls (or drops) |
//! | an ended stall's `run_ns` + `runqueue_wait_ns` is at most its `duration_ns`, plus [`STALL_SLACK_NS`] | the figures are the scheduler's account of the stall's own time, read a few microseconds apart from the poll clock |
//! | no two stalls share a thread (`tid`) and a start (`started_at_ns`) | a poll (or a worker's call) stalls once, however often it is looked at |
//!
//! A stall's `duration_ns` is measured around the outermost poll on its thread, while a site's
//! `max_ns` is a poll's own time, without the polls of other tasks nested inside it (a
//! `LocalSet` inside `block_on`). So an ended stall may exceed its site's `max_ns` by a slack
//! ([`stall_slack_ns`]): [`STALL_SLACK_NS`] (1 ms) or [`STALL_SLACK_PERCENT`] (1%) of
//! `max_ns`, whichever is larger. Stalls still running, and stalls whose site is not in
//! `sites`, are not checked.

use crate::model::{Report, SiteReport};
use crate::units::format_duration_ns;

/// The least an ended stall may exceed its site's `max_ns` by, in nanoseconds (1 ms).
pub const STALL_SLACK_NS: u64 = 1_000_000;

/// The most an ended stall may exceed its site's `max_ns` by, as a percentage of `max_ns`, when
/// that is more than [`STALL_SLACK_NS`].
pub const STALL_SLACK_PERCENT: u64 = 1;

impl Report {
    /// What in this report cannot be true, one sentence per problem naming the site or stall
    /// and the figures; empty for a consistent report. The checks are listed in the
    /// [`check`](crate::check) module.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.totals.slow_polls > self.totals.polls {
            found.push(format!(
                "totals: slow_polls ({}) exceeds polls ({})",
                self.totals.slow_polls, self.totals.polls
            ));
        }
        for site in &self.sites {
            site_inconsistencies(site, &mut found);
        }
        let site_delay =
            (self.sites.iter()).fold(0u64, |sum, s| sum.saturating_add(s.delay_task_ns));
        if site_delay != self.totals.delay_task_ns {
            found.push(format!(
                "totals: delay_task_ns ({}) is not the sum of the sites' ({site_delay})",
                self.totals.delay_task_ns
            ));
        }
        for (n, stall) in self.stalls.iter().enumerate() {
            if let Some(m) = (self.stalls[..n].iter())
                .position(|s| s.tid == stall.tid && s.started_at_ns == stall.started_at_ns)
            {
                found.push(format!(
                    "stalls[{n}] (task {} at {}): the same stall as stalls[{m}] (thread {}, \
                     started at {} ns)",
                    stall.task_id, stall.site, stall.tid, stall.started_at_ns
                ));
            }
            if !stall.ended {
                continue;
            }
            let scheduled = stall
                .run_ns
                .unwrap_or(0)
                .saturating_add(stall.runqueue_wait_ns.unwrap_or(0));
            if scheduled > stall.duration_ns.saturating_add(STALL_SLACK_NS) {
                found.push(format!(
                    "stalls[{n}] (task {} at {}): run_ns + runqueue_wait_ns ({scheduled} ns) \
                     exceeds duration_ns ({} ns) by more than {}",
                    stall.task_id,
                    stall.site,
                    stall.duration_ns,
                    format_duration_ns(STALL_SLACK_NS),
                ));
            }
            let Some(site) = self.sites.iter().find(|s| s.label == stall.site) else {
                continue;
            };
            // A future's drop is counted in `drop_ns`, not in the poll times.
            let longest = site.max_ns.max(site.drop_ns);
            let slack = stall_slack_ns(longest);
            if stall.duration_ns > longest.saturating_add(slack) {
                found.push(format!(
                    "stalls[{n}] (task {} at {}): duration_ns ({} ns, {}) exceeds the site's \
                     longest poll or drop ({} ns, {}) by {}, more than the {} allowed",
                    stall.task_id,
                    site.label,
                    stall.duration_ns,
                    format_duration_ns(stall.duration_ns),
                    longest,
                    format_duration_ns(longest),
                    format_duration_ns(stall.duration_ns - longest),
                    format_duration_ns(slack),
                ));
            }
        }
        found
    }
}

/// How far an ended stall's `duration_ns` may exceed `max_ns`, its site's longest poll: the
/// larger of [`STALL_SLACK_NS`] and [`STALL_SLACK_PERCENT`] of `max_ns`.
pub fn stall_slack_ns(max_ns: u64) -> u64 {
    (max_ns / 100 * STALL_SLACK_PERCENT).max(STALL_SLACK_NS)
}

fn site_inconsistencies(site: &SiteReport, found: &mut Vec<String>) {
    let p = &site.percentiles;
    let named = [
        ("p50_ns", p.p50_ns),
        ("p90_ns", p.p90_ns),
        ("p99_ns", p.p99_ns),
        ("p999_ns", p.p999_ns),
    ];
    for (name, value) in named {
        if value > site.max_ns {
            found.push(format!(
                "site {}: {name} ({value} ns) exceeds max_ns ({} ns)",
                site.label, site.max_ns
            ));
        }
    }
    for pair in named.windows(2) {
        let ((lower, a), (higher, b)) = (pair[0], pair[1]);
        if a > b {
            found.push(format!(
                "site {}: {lower} ({a} ns) exceeds {higher} ({b} ns)",
                site.label
            ));
        }
    }
    if site.slow_polls > site.polls {
        found.push(format!(
            "site {}: slow_polls ({}) exceeds polls ({})",
            site.label, site.slow_polls, site.polls
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::{json, Report};

    /// The documented example: one site whose longest poll (312 ms) was a stall.
    fn example() -> Report {
        json::from_str(include_str!("example-report.json")).unwrap()
    }

    #[test]
    fn a_consistent_report_has_no_inconsistencies() {
        assert_eq!(example().inconsistencies(), Vec::<String>::new());
    }

    #[test]
    fn each_impossible_figure_is_named() {
        let mut report = example();
        let label = report.sites[0].label.clone();
        let site = &mut report.sites[0];
        site.max_ns = 300_000_000;
        site.percentiles.p50_ns = 200_000_000;
        site.percentiles.p90_ns = 100_000_000;
        site.slow_polls = site.polls + 1;
        report.totals.slow_polls = report.totals.polls + 2;
        report.stalls[0].duration_ns = 312_000_000;
        let found = report.inconsistencies();
        let expected = [
            "totals: slow_polls (7) exceeds polls (5)".to_owned(),
            format!("site {label}: p99_ns (312000000 ns) exceeds max_ns (300000000 ns)"),
            format!("site {label}: p999_ns (312000000 ns) exceeds max_ns (300000000 ns)"),
            format!("site {label}: p50_ns (200000000 ns) exceeds p90_ns (100000000 ns)"),
            format!("site {label}: slow_polls (6) exceeds polls (5)"),
            format!(
                "stalls[0] (task 7 at {label}): duration_ns (312000000 ns, 312ms) exceeds the \
                 site's longest poll or drop (300000000 ns, 300ms) by 12.0ms, more than the \
                 3.00ms allowed"
            ),
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn an_ended_stall_may_exceed_its_site_max_by_the_slack_only() {
        let mut report = example();
        report.sites[0].max_ns = 50_000_000;
        report.sites[0].percentiles.p90_ns = 50_000_000;
        report.sites[0].percentiles.p99_ns = 50_000_000;
        report.sites[0].percentiles.p999_ns = 50_000_000;
        // 1 ms is more than 1% of 50 ms (500 µs): 1 ms is allowed, 1 ms + 1 ns is not.
        report.stalls[0].duration_ns = 51_000_000;
        assert_eq!(report.inconsistencies(), Vec::<String>::new());
        report.stalls[0].duration_ns = 51_000_001;
        assert_eq!(report.inconsistencies().len(), 1);
        // A stall still running is not checked: its site's max does not include it yet.
        report.stalls[0].ended = false;
        assert_eq!(report.inconsistencies(), Vec::<String>::new());
        // Nor is a stall whose site is not in the report.
        report.stalls[0].ended = true;
        report.stalls[0].site = "src/elsewhere.rs:1:1".to_owned();
        assert_eq!(report.inconsistencies(), Vec::<String>::new());
    }

    #[test]
    fn a_stall_counted_twice_or_scheduled_past_its_length_is_named() {
        let mut report = example();
        let stall = &mut report.stalls[0];
        let (ms, slack) = (1_000_000, super::STALL_SLACK_NS);
        (stall.run_ns, stall.runqueue_wait_ns) = (Some(stall.duration_ns - ms), Some(ms + slack));
        assert_eq!(
            report.inconsistencies(),
            Vec::<String>::new(),
            "within the slack"
        );
        report.stalls[0].runqueue_wait_ns = Some(ms + slack + 1);
        let found = report.inconsistencies();
        assert!(
            found.len() == 1 && found[0].contains("run_ns + runqueue_wait_ns"),
            "{found:?}"
        );
        report.stalls[0].runqueue_wait_ns = Some(0);
        let again = report.stalls[0].clone();
        report.stalls.push(again);
        let found = report.inconsistencies();
        assert!(
            found.len() == 1 && found[0].starts_with("stalls[1]") && found[0].contains("stalls[0]"),
            "{found:?}"
        );
        report.stalls[1].started_at_ns += 1;
        assert_eq!(
            report.inconsistencies(),
            Vec::<String>::new(),
            "another poll"
        );
    }

    #[test]
    fn the_slack_is_one_percent_of_long_polls() {
        assert_eq!(super::stall_slack_ns(0), 1_000_000);
        assert_eq!(super::stall_slack_ns(100_000_000), 1_000_000);
        assert_eq!(super::stall_slack_ns(300_000_000), 3_000_000);
        assert_eq!(super::stall_slack_ns(u64::MAX), u64::MAX / 100);
    }
}

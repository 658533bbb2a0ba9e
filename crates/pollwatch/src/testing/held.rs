//! What fails a test: the polls a test's report shows held a thread past the threshold (the
//! stalls caught while they ran, and the slow polls that ended before the watchdog looked),
//! less the ones the allow-list accepts, and the failure message that lists them.

use std::fmt::{self, Write as _};
use std::time::Duration;

use pollwatch_report::units::format_duration_ns;
use pollwatch_report::{Report, Stall};

/// One place where a test's code held a thread past the threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Held {
    /// A poll the watchdog caught while it held its thread: the report's stall, with its call
    /// site, blocking API, cause, duration and fix.
    Stall(Box<Stall>),
    /// Polls of one site that held their thread past the threshold but ended before the
    /// watchdog looked at them (a short stall on a busy machine): their site and length are
    /// known, their call site is not.
    SlowPolls {
        /// The site's label, as in the report.
        site: String,
        /// How many polls.
        count: u64,
        /// The longest of them, as far as the report lists them.
        longest: Duration,
    },
}

impl Held {
    /// Whether an allow-list entry accepts this: the entry is part of the stall's call site
    /// (`file:line`, its absolute path or, without line tables, its function) or of the
    /// site's label.
    pub(crate) fn is_allowed_by(&self, entry: &str) -> bool {
        match self {
            Held::Stall(stall) => [
                stall.call_site.as_deref(),
                stall.call_site_path.as_deref(),
                stall.call_function.as_deref(),
                Some(stall.site.as_str()),
            ]
            .into_iter()
            .flatten()
            .any(|text| text.contains(entry)),
            Held::SlowPolls { site, .. } => site.contains(entry),
        }
    }
}

impl fmt::Display for Held {
    /// The lines the failure message shows for it: where, what, how long, the fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Held::Stall(stall) => {
                let api = stall
                    .blocking_call
                    .as_deref()
                    .unwrap_or("no blocking API named");
                let held = if stall.ended { "held" } else { "still held" };
                writeln!(
                    f,
                    "{}: {api} [{}] {held} its thread for {}",
                    call_site(stall),
                    stall.cause,
                    format_duration_ns(stall.duration_ns)
                )?;
                writeln!(f, "   fix: {}", stall.suggestion)?;
                let task = match stall.task_id {
                    0 => String::new(),
                    id => format!("task {id}, "),
                };
                write!(f, "   in: {} ({task}thread {:?})", stall.site, stall.thread)
            }
            Held::SlowPolls {
                site,
                count,
                longest,
            } => {
                let polls = if *count == 1 {
                    "1 poll".to_owned()
                } else {
                    format!("{count} polls, the longest")
                };
                writeln!(
                    f,
                    "{site}: {polls} held its thread for {}",
                    format_duration_ns(u64::try_from(longest.as_nanos()).unwrap_or(u64::MAX))
                )?;
                write!(
                    f,
                    "   ended before the watchdog looked: no call site, API or cause (the \
                     line is in this site's code)"
                )
            }
        }
    }
}

/// A stall's call site, or why it is unknown (the report format's `call_site_missing`).
fn call_site(stall: &Stall) -> String {
    if stall.call_site.is_some() {
        return stall.call_site_label();
    }
    let why = match stall.call_site_missing.as_deref() {
        Some("no_line_tables") => return stall.call_site_label(),
        Some("inlined") => "inlined into tokio's poll; build with line tables",
        Some("not_in_application") => "no frame of the application's code on the stack",
        Some("would_interrupt") => "not signalled, its call would be interrupted",
        _ => "no stack was captured",
    };
    format!("call site unknown ({why})")
}

/// The polls of `report` that held a thread past its threshold, split by `allow`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) failing: Vec<Held>,
    pub(crate) allowed: Vec<Held>,
    pub(crate) threshold_ns: u64,
}

/// Judges `report`: each stall, once, and each site's slow polls that no stall stands for. A
/// stall judged `descheduled` (the thread mostly waited for a CPU: the machine was short of
/// CPU, the code did nothing wrong) fails nothing; it is neither failing nor allowed.
pub(crate) fn judge(report: &Report, allow: &[String]) -> Verdict {
    let mut held: Vec<Held> = report
        .stalls
        .iter()
        .filter(|stall| stall.cause != "descheduled")
        .map(|stall| Held::Stall(Box::new(stall.clone())))
        .collect();
    held.extend(uncaught(report));
    let (allowed, failing) = held
        .into_iter()
        .partition(|h| allow.iter().any(|entry| h.is_allowed_by(entry)));
    Verdict {
        failing,
        allowed,
        threshold_ns: report.threshold_ns,
    }
}

/// Each site's slow polls that were not caught as stalls: a site's slow polls less its
/// stalls that ended (an ended stall's poll is one of its slow polls, of the same length) and
/// its polls caught inside `block_in_place` (which hold no worker, and are not listed).
fn uncaught(report: &Report) -> Vec<Held> {
    let mut out = Vec::new();
    for site in &report.sites {
        let stalls: Vec<&Stall> = report
            .stalls
            .iter()
            .filter(|s| s.site == site.label)
            .collect();
        let running = stalls.iter().filter(|s| !s.ended).count() as u64;
        let count = site
            .slow_polls
            .saturating_sub(site.stalls.saturating_sub(running))
            .saturating_sub(site.polls_in_place);
        if count == 0 {
            continue;
        }
        let mut caught: Vec<u64> = stalls.iter().map(|s| s.duration_ns).collect();
        let longest_listed = report
            .slow_polls
            .iter()
            .filter(|p| p.site == site.label)
            .filter(
                |p| match caught.iter().position(|&ns| ns == p.duration_ns) {
                    Some(at) => {
                        caught.swap_remove(at);
                        false
                    }
                    None => true,
                },
            )
            .map(|p| p.duration_ns)
            .max();
        let longest_ns = longest_listed.unwrap_or(site.max_ns);
        out.push(Held::SlowPolls {
            site: site.label.clone(),
            count,
            longest: Duration::from_nanos(longest_ns),
        });
    }
    out
}

impl Verdict {
    /// The failure message: each poll that fails the test, then the allowed ones, counted.
    pub(crate) fn message(&self) -> String {
        let mut out = String::new();
        let n = self.failing.len();
        let _ = writeln!(
            out,
            "pollwatch: {} held a thread past the {} threshold:",
            if n == 1 {
                "1 poll".to_owned()
            } else {
                format!("{n} polls")
            },
            format_duration_ns(self.threshold_ns)
        );
        for (i, held) in self.failing.iter().enumerate() {
            let _ = writeln!(out, "{}. {held}", i + 1);
        }
        if !self.allowed.is_empty() {
            let _ = writeln!(
                out,
                "(and {} allowed by the allow-list, not failing)",
                self.allowed.len()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report format's example, without its list of slow polls.
    fn example() -> Report {
        let mut report: Report = serde_json::from_str(include_str!(
            "../../../pollwatch-report/src/example-report.json"
        ))
        .unwrap();
        report.slow_polls.clear();
        report
    }

    fn the_site(report: &Report) -> String {
        report.stalls[0].site.clone()
    }

    #[test]
    fn a_caught_stall_is_listed_once_and_a_slow_poll_it_stands_for_not_at_all() {
        let mut report = example();
        report.stalls.truncate(1);
        let site = the_site(&report);
        report.stalls[0].ended = true;
        for s in &mut report.sites {
            let own = s.label == site;
            s.stalls = u64::from(own);
            s.slow_polls = u64::from(own);
        }
        let verdict = judge(&report, &[]);
        assert_eq!(verdict.failing.len(), 1, "{verdict:#?}");
        assert!(matches!(verdict.failing[0], Held::Stall(_)));
    }

    #[test]
    fn a_descheduled_stall_fails_nothing_and_its_slow_poll_neither() {
        let mut report = example();
        report.stalls.truncate(1);
        let site = the_site(&report);
        report.stalls[0].ended = true;
        report.stalls[0].cause = "descheduled".into();
        for s in &mut report.sites {
            let own = s.label == site;
            s.stalls = u64::from(own);
            s.slow_polls = u64::from(own);
        }
        let verdict = judge(&report, &[]);
        assert!(verdict.failing.is_empty(), "{verdict:#?}");
        assert!(verdict.allowed.is_empty(), "{verdict:#?}");
    }

    #[test]
    fn slow_polls_no_stall_stands_for_fail_by_site_and_length() {
        let mut report = example();
        report.stalls.clear();
        for s in &mut report.sites {
            s.stalls = 0;
            s.slow_polls = 0;
        }
        report.sites[0].slow_polls = 2;
        report.sites[0].max_ns = 23_000_000;
        let verdict = judge(&report, &[]);
        assert_eq!(
            verdict.failing,
            vec![Held::SlowPolls {
                site: report.sites[0].label.clone(),
                count: 2,
                longest: Duration::from_millis(23),
            }]
        );
        assert!(verdict
            .message()
            .contains("2 polls, the longest held its thread for 23.0ms"));
    }

    #[test]
    fn polls_inside_block_in_place_do_not_fail() {
        let mut report = example();
        report.stalls.clear();
        for s in &mut report.sites {
            s.stalls = 0;
            s.slow_polls = 1;
            s.polls_in_place = 1;
        }
        assert_eq!(
            judge(&report, &[]),
            Verdict {
                threshold_ns: report.threshold_ns,
                ..Verdict::default()
            }
        );
    }

    #[test]
    fn the_allow_list_matches_call_sites_and_sites() {
        let mut report = example();
        report.stalls.truncate(1);
        for s in &mut report.sites {
            s.slow_polls = 0;
        }
        let call_site = report.stalls[0].call_site.clone().unwrap();
        let file = call_site.split(':').next().unwrap().to_owned();
        let verdict = judge(&report, &[file]);
        assert!(verdict.failing.is_empty(), "{verdict:#?}");
        assert_eq!(verdict.allowed.len(), 1);
        let verdict = judge(&report, &["src/elsewhere.rs".to_owned()]);
        assert_eq!(verdict.failing.len(), 1);
    }
}

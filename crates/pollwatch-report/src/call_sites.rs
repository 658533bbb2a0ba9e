//! Stalls grouped by blocking call site, across spawn sites: the list a person fixes from.
//!
//! Counts come from each site's [`call_sites`](crate::SiteReport::call_sites), which count
//! every stall; the suggestion, the longest stall and an example of what the thread waited on
//! come from the recent stalls the report keeps ([`Report::stalls`]), when one of them was at
//! that call site.

use serde::{Deserialize, Serialize};

use crate::{Report, SiteReport};

/// Every stall at one blocking call site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSiteGroup {
    /// The innermost application frame (`file:line`), `unknown` when no stack was captured,
    /// `other` for call sites beyond a site's bound.
    pub call_site: String,
    /// The blocking API called there, when known (`std::fs::read_to_string`).
    pub blocking_call: Option<String>,
    /// Stalls at this call site.
    pub count: u64,
    /// The causes seen (`file_io`, `sleep`, `lock`, `cpu`, ...), most frequent first.
    pub causes: Vec<String>,
    /// The spawn sites whose tasks stalled here, with their counts, most first.
    pub sites: Vec<SiteCount>,
    /// What to change, from a recent stall at this call site.
    pub suggestion: Option<String>,
    /// The longest recent stall at this call site, in nanoseconds.
    pub longest_ns: Option<u64>,
    /// What a recent stall's thread was blocked on (a file, a socket peer, a lock).
    pub blocked_on: Option<String>,
    /// The scheduling delay the recent stalls at this call site (those the report lists)
    /// added to the tasks waiting behind them, in task-nanoseconds (see [`crate::Harm`]).
    pub recent_delay_task_ns: u64,
}

/// A spawn site and how many of its stalls were at one call site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCount {
    /// The site's label.
    pub site: String,
    /// Stalls.
    pub count: u64,
}

/// The report's stalls grouped by blocking call site, most stalls first, for the sites that
/// `keep` accepts. Stalls without a call site (`unknown`, `other`) are grouped by cause, so
/// each group has one fix.
pub fn group(report: &Report, keep: impl Fn(&SiteReport) -> bool) -> Vec<CallSiteGroup> {
    let mut groups: Vec<CallSiteGroup> = Vec::new();
    let mut causes: Vec<Vec<(String, u64)>> = Vec::new();
    for site in report.sites.iter().filter(|s| keep(s)) {
        for c in &site.call_sites {
            let unlocated = is_unlocated(&c.call_site);
            let at = match groups.iter().zip(&causes).position(|(g, seen)| {
                g.call_site == c.call_site
                    && g.blocking_call == c.blocking_call
                    && (!unlocated || seen.first().is_some_and(|(cause, _)| *cause == c.cause))
            }) {
                Some(at) => at,
                None => {
                    groups.push(CallSiteGroup {
                        call_site: c.call_site.clone(),
                        blocking_call: c.blocking_call.clone(),
                        count: 0,
                        causes: Vec::new(),
                        sites: Vec::new(),
                        suggestion: None,
                        longest_ns: None,
                        blocked_on: None,
                        recent_delay_task_ns: 0,
                    });
                    causes.push(Vec::new());
                    groups.len() - 1
                }
            };
            let group = &mut groups[at];
            group.count += c.count;
            match group.sites.iter_mut().find(|s| s.site == site.label) {
                Some(s) => s.count += c.count,
                None => group.sites.push(SiteCount {
                    site: site.label.clone(),
                    count: c.count,
                }),
            }
            match causes[at].iter_mut().find(|(cause, _)| *cause == c.cause) {
                Some((_, n)) => *n += c.count,
                None => causes[at].push((c.cause.clone(), c.count)),
            }
        }
    }
    for (group, mut seen) in groups.iter_mut().zip(causes) {
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        group.causes = seen.into_iter().map(|(cause, _)| cause).collect();
        group
            .sites
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.site.cmp(&b.site)));
        let unlocated = is_unlocated(&group.call_site);
        let recent = report.stalls.iter().filter(|s| {
            s.call_site_label() == group.call_site
                && s.blocking_call == group.blocking_call
                && (!unlocated || group.causes.first() == Some(&s.cause))
        });
        for stall in recent {
            if let Some(harm) = &stall.harm {
                group.recent_delay_task_ns = group
                    .recent_delay_task_ns
                    .saturating_add(harm.delay_task_ns);
            }
            if group.longest_ns.is_none_or(|n| stall.duration_ns > n) {
                group.longest_ns = Some(stall.duration_ns);
                if stall.blocked_on.is_some() {
                    group.blocked_on.clone_from(&stall.blocked_on);
                }
            }
            if group.suggestion.is_none() && !stall.suggestion.is_empty() {
                group.suggestion = Some(stall.suggestion.clone());
            }
            if group.blocked_on.is_none() {
                group.blocked_on.clone_from(&stall.blocked_on);
            }
        }
    }
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.call_site.cmp(&b.call_site))
    });
    groups
}

/// Whether a call site names no place in the code: no stack was captured (`unknown`), or it
/// is the count of call sites beyond a site's bound (`other`).
fn is_unlocated(call_site: &str) -> bool {
    call_site == "unknown" || call_site == "other"
}

//! The warning rate limit: at most N warnings a minute (default 5) per *blocking line*, the
//! pair a reader tells stalls apart by: the spawn site and the blocking call site (none for a
//! slow poll that ended before the watchdog looked, which has no call site). In a server
//! whose every connection task is spawned at one line, or in stable mode where every stall's
//! site is the worker's, each distinct blocking line still gets its own warnings.
//!
//! Suppressed warnings are counted per line and said: once a line's minute since its first
//! suppressed warning is over, [`RateLimit::due`] returns one [`Suppressed`] summary for it
//! ("12 more stalls at src/db.rs:41 in the last minute"), and [`RateLimit::take_all`] returns
//! the rest when pollwatch stops. Counts, histograms and the report's stall list never depend on
//! the limit.
//!
//! Memory is bounded: at most [`MAX_LINES`] lines are followed. A new line beyond them, once
//! the lines with nothing in their window and nothing to say are forgotten, shares the one
//! line [`OTHER_LINES`] of its site.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sites::SiteId;

/// The rate limit's window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The most blocking lines followed at once.
pub(crate) const MAX_LINES: usize = 4096;

/// The call site a line is counted under when [`MAX_LINES`] are followed already.
pub(crate) const OTHER_LINES: &str = "<other lines>";

/// What warnings are limited by: a spawn site and a blocking call site.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Line {
    pub(crate) site: SiteId,
    /// The call-site label (`file:line`, a function, or `unknown`); `None` for slow polls.
    pub(crate) call_site: Option<Box<str>>,
}

impl Line {
    /// The line of a stall caught at `call_site`.
    pub(crate) fn stall(site: SiteId, call_site: &str) -> Self {
        Self {
            site,
            call_site: Some(call_site.into()),
        }
    }

    /// The line of a slow poll, which has no call site.
    pub(crate) fn slow_poll(site: SiteId) -> Self {
        Self {
            site,
            call_site: None,
        }
    }
}

/// Warnings a line did not emit, to be said in one summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Suppressed {
    pub(crate) line: Line,
    pub(crate) count: u64,
    /// From the first suppressed warning to the summary.
    pub(crate) over: Duration,
}

/// One line's recent warnings and what it has not said yet.
#[derive(Debug, Default)]
struct Budget {
    sent: VecDeque<Instant>,
    suppressed: u64,
    /// When the first warning not yet summarized was suppressed.
    since: Option<Instant>,
}

impl Budget {
    /// Forgets the warnings sent a window or more before `now`.
    fn slide(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= WINDOW)
        {
            self.sent.pop_front();
        }
    }

    /// Whether it has nothing in its window and nothing to say.
    fn is_idle(&self) -> bool {
        self.sent.is_empty() && self.suppressed == 0
    }
}

#[derive(Debug)]
pub(crate) struct RateLimit {
    per_window: u32,
    lines: HashMap<Line, Budget>,
}

impl RateLimit {
    pub(crate) fn new(per_window: u32) -> Self {
        Self {
            per_window,
            lines: HashMap::new(),
        }
    }

    /// The warnings a line may emit per window.
    pub(crate) fn per_window(&self) -> u32 {
        self.per_window
    }

    /// Whether `line` may warn at `now`; if so, the warning is counted against it, if not,
    /// its suppression is.
    pub(crate) fn allow(&mut self, line: Line, now: Instant) -> bool {
        let line = self.bounded(line, now);
        let per_window = self.per_window as usize;
        let budget = self.lines.entry(line).or_default();
        budget.slide(now);
        if budget.sent.len() >= per_window {
            budget.suppressed += 1;
            budget.since.get_or_insert(now);
            return false;
        }
        budget.sent.push_back(now);
        true
    }

    /// `line`, or its site's [`OTHER_LINES`] when [`MAX_LINES`] other lines are followed.
    fn bounded(&mut self, line: Line, now: Instant) -> Line {
        if self.lines.len() < MAX_LINES || self.lines.contains_key(&line) {
            return line;
        }
        self.lines.retain(|_, budget| {
            budget.slide(now);
            !budget.is_idle()
        });
        if self.lines.len() < MAX_LINES {
            return line;
        }
        Line::stall(line.site, OTHER_LINES)
    }

    /// The summaries of the lines whose first unsaid suppression is a window old at `now`,
    /// oldest first; they start counting afresh.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Suppressed> {
        self.take(|since| now.saturating_duration_since(since) >= WINDOW, now)
    }

    /// Every summary not said yet (pollwatch is stopping), oldest first.
    pub(crate) fn take_all(&mut self, now: Instant) -> Vec<Suppressed> {
        self.take(|_| true, now)
    }

    fn take(&mut self, due: impl Fn(Instant) -> bool, now: Instant) -> Vec<Suppressed> {
        let mut said: Vec<(Instant, Suppressed)> = self
            .lines
            .iter_mut()
            .filter_map(|(line, budget)| {
                let since = budget.since.filter(|&since| due(since))?;
                let count = std::mem::take(&mut budget.suppressed);
                budget.since = None;
                let over = now.saturating_duration_since(since);
                Some((
                    since,
                    Suppressed {
                        line: line.clone(),
                        count,
                        over,
                    },
                ))
            })
            .collect();
        said.sort_by_key(|(since, _)| *since);
        said.into_iter().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(site: u32, call_site: &str) -> Line {
        Line::stall(SiteId::from_index(site), call_site)
    }

    #[test]
    fn a_line_gets_n_warnings_a_minute_and_others_are_unaffected() {
        let mut limit = RateLimit::new(5);
        let t0 = Instant::now();
        let allowed = (0..8).filter(|_| limit.allow(at(1, "a.rs:1"), t0)).count();
        assert_eq!(allowed, 5);
        assert!(
            limit.allow(at(1, "a.rs:2"), t0),
            "another line of the same site has its own budget"
        );
        assert!(limit.allow(at(2, "a.rs:1"), t0), "so has another site");
        assert!(limit.allow(Line::slow_poll(SiteId::from_index(1)), t0));
        assert!(!limit.allow(at(1, "a.rs:1"), t0 + Duration::from_secs(59)));
        assert!(
            limit.allow(at(1, "a.rs:1"), t0 + WINDOW),
            "the window slides"
        );
    }

    #[test]
    fn suppressions_are_summarized_once_a_minute_after_the_first() {
        let mut limit = RateLimit::new(5);
        let t0 = Instant::now();
        for i in 0..100 {
            limit.allow(at(1, "db.rs:41"), t0 + Duration::from_millis(i * 100));
        }
        assert_eq!(limit.due(t0 + Duration::from_secs(59)), vec![]);
        let said = limit.due(t0 + Duration::from_secs(61));
        assert_eq!(said.len(), 1);
        assert_eq!(said[0].count, 95);
        assert_eq!(said[0].line, at(1, "db.rs:41"));
        assert_eq!(
            limit.due(t0 + Duration::from_secs(200)),
            vec![],
            "said once"
        );
        limit.allow(at(1, "db.rs:41"), t0 + Duration::from_secs(60));
        assert_eq!(limit.take_all(t0 + Duration::from_secs(61)), vec![]);
    }

    #[test]
    fn the_lines_followed_are_bounded() {
        let mut limit = RateLimit::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_LINES {
            assert!(limit.allow(at(1, &format!("a.rs:{i}")), t0));
        }
        // Full, and every line has a warning in its window: a new one shares the site's
        // other lines.
        assert!(limit.allow(at(1, "new.rs:1"), t0));
        assert!(!limit.allow(at(1, "newer.rs:1"), t0));
        assert!(limit.lines.len() <= MAX_LINES + 1);
        assert_eq!(limit.take_all(t0)[0].line, at(1, OTHER_LINES));
        // A window later the old lines are idle and forgotten.
        assert!(limit.allow(at(1, "late.rs:1"), t0 + WINDOW));
        assert!(limit.lines.contains_key(&at(1, "late.rs:1")));
    }
}

//! The record of stalls: the recent ones for reports, per-site counts and blocking call
//! sites, the stalls still being followed, and the per-site warning rate limit.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use pollwatch_report::{CallSiteCount, Report, Stall};

use super::rate_limit::RateLimit;

/// The most stalls followed at once (one per polling thread is the norm); bounds memory
/// if end messages are lost.
const MAX_LIVE: usize = 1024;

/// Per-site stall figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct SiteStalls {
    pub(crate) stalls: u64,
    pub(crate) warnings_suppressed: u64,
    pub(crate) call_sites: Vec<CallSiteCount>,
    /// Stalls at call sites beyond [`MAX_CALL_SITES`], counted but not listed.
    pub(crate) other_call_sites: u64,
    /// Stalls by cause (`file_io`, `sleep`, ...: the bounded set of `classify::Cause`).
    pub(crate) causes: BTreeMap<String, u64>,
    /// How long the stalls that ended held their thread, in total.
    pub(crate) held_ns: u64,
}

/// The most distinct call sites listed per site.
pub(crate) const MAX_CALL_SITES: usize = 32;

/// A stall still being followed.
#[derive(Clone, Copy, Debug)]
struct Live {
    number: u64,
    site: u32,
    cpu_at_detection_ns: Option<u64>,
    warned: bool,
}

#[derive(Debug)]
pub(crate) struct Book {
    recent: VecDeque<(u64, (usize, u64), Stall)>,
    /// The recent stalls whose duration is the poll's own measurement, not the watchdog's
    /// estimate.
    exact: HashSet<(usize, u64)>,
    next_number: u64,
    live: HashMap<(usize, u64), Live>,
    per_site: HashMap<u32, SiteStalls>,
    limit: RateLimit,
    suppressed: u64,
}

/// What the reporter should do after the book took a stall in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Warn {
    /// Emit this stall as a warning.
    Yes(Box<Stall>),
    /// The site is over its rate limit (counted).
    Suppressed,
}

impl Book {
    pub(crate) fn new(warnings_per_minute: u32) -> Self {
        Self {
            recent: VecDeque::new(),
            exact: HashSet::new(),
            next_number: 0,
            live: HashMap::new(),
            per_site: HashMap::new(),
            limit: RateLimit::new(warnings_per_minute),
            suppressed: 0,
        }
    }

    /// A newly detected stall of poll `(slot, seq)` at `site`.
    pub(crate) fn detected(
        &mut self,
        key: (usize, u64),
        site: u32,
        stall: Stall,
        cpu_now_ns: Option<u64>,
        now: Instant,
    ) -> Warn {
        let number = self.next_number;
        self.next_number += 1;
        let figures = self.per_site.entry(site).or_default();
        figures.stalls += 1;
        *figures.causes.entry(stall.cause.clone()).or_default() += 1;
        let call_site = stall
            .call_site
            .clone()
            .unwrap_or_else(|| "unknown".to_owned());
        let listed = figures.call_sites.len();
        match figures.call_sites.iter_mut().find(|c| {
            c.call_site == call_site
                && c.blocking_call == stall.blocking_call
                && c.cause == stall.cause
        }) {
            Some(known) => known.count += 1,
            None if listed < MAX_CALL_SITES => figures.call_sites.push(CallSiteCount {
                call_site,
                blocking_call: stall.blocking_call.clone(),
                cause: stall.cause.clone(),
                count: 1,
            }),
            None => figures.other_call_sites += 1,
        }
        figures
            .call_sites
            .sort_by_key(|c| std::cmp::Reverse(c.count));
        let warned = self.limit.allow(site, now);
        if !warned {
            figures.warnings_suppressed += 1;
            self.suppressed += 1;
        }
        if self.live.len() >= MAX_LIVE {
            // An end message was lost (queue full): forget the oldest followed stall.
            if let Some(oldest) = self
                .live
                .iter()
                .min_by_key(|(_, l)| l.number)
                .map(|(k, _)| *k)
            {
                self.live.remove(&oldest);
            }
        }
        self.live.insert(
            key,
            Live {
                number,
                site,
                cpu_at_detection_ns: cpu_now_ns,
                warned,
            },
        );
        if self.recent.len() == Report::STALLS_KEPT {
            if let Some((_, key, _)) = self.recent.pop_front() {
                self.exact.remove(&key);
            }
        }
        let warn = if warned {
            Warn::Yes(Box::new(stall.clone()))
        } else {
            Warn::Suppressed
        };
        self.recent.push_back((number, key, stall));
        warn
    }

    /// Whether `site` may emit a slow-poll warning now (same per-site limit as stalls);
    /// counts the suppression if not.
    pub(crate) fn allow_warning(&mut self, site: u32, now: Instant) -> bool {
        if self.limit.allow(site, now) {
            return true;
        }
        self.per_site.entry(site).or_default().warnings_suppressed += 1;
        self.suppressed += 1;
        false
    }

    /// CPU time the stalled thread used since detection, given its CPU time now.
    pub(crate) fn cpu_since_detection(
        &self,
        key: (usize, u64),
        cpu_now_ns: Option<u64>,
    ) -> Option<u64> {
        let live = self.live.get(&key)?;
        Some(cpu_now_ns?.saturating_sub(live.cpu_at_detection_ns?))
    }

    /// The followed stall of poll `key`, to add a later look to.
    pub(crate) fn live_mut(&mut self, key: (usize, u64)) -> Option<&mut Stall> {
        let number = self.live.get(&key)?.number;
        self.recent
            .iter_mut()
            .find(|(n, _, _)| *n == number)
            .map(|(_, _, stall)| stall)
    }

    /// The stall of poll `key` ended after `total_ns`; adds that to its site's held time and
    /// returns the stall to report its end (when its first warning was emitted), with `update`
    /// applied.
    pub(crate) fn ended(
        &mut self,
        key: (usize, u64),
        total_ns: u64,
        update: impl FnOnce(&mut Stall),
    ) -> Option<Stall> {
        let live = self.live.remove(&key)?;
        let figures = self.per_site.entry(live.site).or_default();
        let Some(stall) = self
            .recent
            .iter_mut()
            .find(|(n, _, _)| *n == live.number)
            .map(|(_, _, stall)| stall)
        else {
            figures.held_ns = figures.held_ns.saturating_add(total_ns);
            return None;
        };
        update(stall);
        // The stall's final duration: exact when the poll's own measurement is known.
        figures.held_ns = figures.held_ns.saturating_add(stall.duration_ns);
        live.warned.then(|| stall.clone())
    }

    /// Sets the duration of the stall of poll `key` at site `site` (id `site_id`) to the
    /// poll's own measurement, and returns it (to update its message). A stall that already
    /// ended with the watchdog's estimate has its site's held time corrected.
    pub(crate) fn settle(
        &mut self,
        key: (usize, u64),
        site_id: u32,
        site: &str,
        ns: u64,
    ) -> Option<&mut Stall> {
        let still_live = self.live.contains_key(&key);
        let stall = self
            .recent
            .iter_mut()
            .find(|(_, k, s)| *k == key && s.site == site)
            .map(|(_, _, stall)| stall)?;
        let estimate = stall.duration_ns;
        stall.duration_ns = ns;
        self.exact.insert(key);
        if !still_live {
            if let Some(figures) = self.per_site.get_mut(&site_id) {
                figures.held_ns = figures.held_ns.saturating_sub(estimate).saturating_add(ns);
            }
        }
        Some(stall)
    }

    /// Whether the stall of poll `key` has its exact duration (see [`Book::settle`]).
    pub(crate) fn is_exact(&self, key: (usize, u64)) -> bool {
        self.exact.contains(&key)
    }

    /// Whether poll `key` was reported as a stall (so its slow-poll event is redundant).
    pub(crate) fn was_reported(&self, key: (usize, u64)) -> bool {
        self.live.contains_key(&key) || self.recent.iter().any(|(_, k, _)| *k == key)
    }

    pub(crate) fn recent(&self) -> Vec<Stall> {
        self.recent.iter().map(|(_, _, s)| s.clone()).collect()
    }

    pub(crate) fn site(&self, site: u32) -> Option<&SiteStalls> {
        self.per_site.get(&site)
    }

    pub(crate) fn total(&self) -> u64 {
        self.per_site.values().map(|s| s.stalls).sum()
    }

    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

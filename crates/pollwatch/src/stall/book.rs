//! The record of stalls: the recent ones for reports, per-site counts, causes and blocking
//! call sites, the stalls still being followed, and the per-site warning rate limit.
//!
//! Two views of a site's stalls are kept. [`SiteStalls`] counts a stall when it is detected
//! and moves it when a later reading changes its cause, as reports show it. [`EndedStalls`]
//! counts a stall once, when it ends, under its final cause and call site, and adds the time
//! it held its thread once that time is the poll's own measurement: figures that only grow,
//! which metrics export as counters.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use pollwatch_report::{CallSiteCount, Harm, Report, Stall};

use super::rate_limit::{Line, RateLimit, Suppressed};
use super::record::StallRecord;
use crate::poll::{PollKey, PollKind};
use crate::sites::{SiteId, Sites};
use pollwatch_judge::classify::Cause;

/// The most stalls followed at once (one per polling thread is the norm); bounds memory
/// if end messages are lost.
pub(crate) const MAX_LIVE: usize = 1024;

/// The most distinct call sites listed per site.
pub(crate) const MAX_CALL_SITES: usize = 32;

/// The most worker indexes counted one by one in [`EndedStalls::workers`].
pub(crate) const MAX_WORKERS: usize = 64;

/// The most slow polls remembered for a stall whose detection has not arrived yet.
const MAX_EARLY: usize = 256;

/// What a stall is counted under: its blocking call site's label, the blocking API and the
/// cause.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    call_site: String,
    api: Option<String>,
    cause: Cause,
    /// The worker that was held, if the thread polled as one.
    worker: Option<usize>,
}

impl Identity {
    fn of(stall: &StallRecord) -> Self {
        let look = &stall.look;
        Self {
            call_site: pollwatch_report::call_site_label(
                look.call_site.as_deref(),
                look.function.as_deref(),
            )
            .to_owned(),
            api: look.api.clone(),
            cause: stall.cause,
            worker: stall.worker_index,
        }
    }

    fn matches(&self, c: &CallSiteStalls) -> bool {
        c.call_site == self.call_site && c.blocking_call == self.api && c.cause == self.cause
    }
}

/// Adds one stall of `id` to a bounded call-site list (most stalls first), or to the count of
/// the ones beyond it.
fn count_call_site(list: &mut Vec<CallSiteStalls>, other: &mut u64, id: &Identity) {
    count_call_sites(list, other, id, 1);
}

/// Adds `n` stalls of `id` to a bounded call-site list (see [`count_call_site`]).
fn count_call_sites(list: &mut Vec<CallSiteStalls>, other: &mut u64, id: &Identity, n: u64) {
    let listed = list.len();
    match list.iter_mut().find(|c| id.matches(c)) {
        Some(known) => known.count += n,
        None if listed < MAX_CALL_SITES => list.push(CallSiteStalls {
            call_site: id.call_site.clone(),
            blocking_call: id.api.clone(),
            cause: id.cause,
            count: n,
        }),
        None => *other += n,
    }
    list.sort_by_key(|c| std::cmp::Reverse(c.count));
}

/// The call sites as reports and metrics write them, with the ones beyond the list's bound as
/// one `other` entry of cause `various`.
fn call_sites_report(list: &[CallSiteStalls], other: u64) -> Vec<CallSiteCount> {
    let mut report: Vec<CallSiteCount> = list
        .iter()
        .map(|c| CallSiteCount {
            call_site: c.call_site.clone(),
            blocking_call: c.blocking_call.clone(),
            cause: c.cause.as_str().to_owned(),
            count: c.count,
        })
        .collect();
    if other > 0 {
        report.push(CallSiteCount {
            call_site: "other".to_owned(),
            blocking_call: None,
            cause: "various".to_owned(),
            count: other,
        });
    }
    report
}

/// Stalls at one blocking call site of one site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallSiteStalls {
    /// The innermost application frame's `file:line`, its function without line tables, or
    /// `unknown` (see [`pollwatch_report::call_site_label`]).
    pub(crate) call_site: String,
    pub(crate) blocking_call: Option<String>,
    pub(crate) cause: Cause,
    pub(crate) count: u64,
}

/// Per-site stall figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct SiteStalls {
    pub(crate) stalls: u64,
    pub(crate) warnings_suppressed: u64,
    /// Most stalls first.
    pub(crate) call_sites: Vec<CallSiteStalls>,
    /// Stalls at call sites beyond [`MAX_CALL_SITES`], counted but not listed.
    pub(crate) other_call_sites: u64,
    pub(crate) causes: BTreeMap<Cause, u64>,
    /// Polls the watchdog caught past the threshold blocking inside
    /// `tokio::task::block_in_place`: allowed, not stalls.
    pub(crate) polls_in_place: u64,
    /// The same site's stalls counted when they end (the figures that only grow).
    pub(crate) ended: EndedStalls,
}

/// One site's stalls counted once each, when they end, under their final cause and call
/// site, with the time they held their thread: figures that never decrease.
///
/// A stall's held time is added once it is the poll's own measurement. A stall that ended
/// with only the watchdog's estimate waits for its poll's slow-poll record, and takes the
/// estimate when two drains of the slow-poll rings pass without it (the record was lost).
#[derive(Clone, Debug, Default)]
pub(crate) struct EndedStalls {
    /// Stalls by final cause.
    pub(crate) causes: BTreeMap<Cause, u64>,
    /// Most stalls first, at most [`MAX_CALL_SITES`].
    call_sites: Vec<CallSiteStalls>,
    other_call_sites: u64,
    /// How long the stalls that ended held their thread, in total.
    pub(crate) held_ns: u64,
    /// The scheduling delay the stalls that ended added to the tasks behind them, estimated
    /// in task-nanoseconds (see [`crate::stall::harm`]).
    pub(crate) delay_task_ns: u64,
    /// The stalls that ended whose harm is unknown (their thread runs a `LocalSet`).
    pub(crate) delay_unknown: u64,
    /// Stalls by the index of the worker they held (its runtime's `worker_index`), for the
    /// first [`MAX_WORKERS`] indexes; stalls of a thread that polled as no worker (a
    /// `block_on` caller) are not counted here.
    pub(crate) workers: BTreeMap<usize, u64>,
    /// Stalls of workers with an index of [`MAX_WORKERS`] or more.
    pub(crate) other_workers: u64,
}

impl EndedStalls {
    fn count(&mut self, id: &Identity) {
        *self.causes.entry(id.cause).or_default() += 1;
        match id.worker {
            Some(w) if w < MAX_WORKERS => *self.workers.entry(w).or_default() += 1,
            Some(_) => self.other_workers += 1,
            None => {}
        }
        count_call_site(&mut self.call_sites, &mut self.other_call_sites, id);
    }

    /// The call sites as metrics write them (see [`SiteStalls::call_sites_report`]).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn call_sites_report(&self) -> Vec<CallSiteCount> {
        call_sites_report(&self.call_sites, self.other_call_sites)
    }
}

impl SiteStalls {
    fn count(&mut self, stall: &StallRecord) {
        self.stalls += 1;
        *self.causes.entry(stall.cause).or_default() += 1;
        let id = Identity::of(stall);
        count_call_site(&mut self.call_sites, &mut self.other_call_sites, &id);
    }

    /// A counted stall's cause changed from `old` (see [`StallRecord::scheduled`]): its
    /// count moves to its new cause, in the causes and in its call site's entry.
    fn recount(&mut self, stall: &StallRecord, old: Cause) {
        if let Some(count) = self.causes.get_mut(&old) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.causes.remove(&old);
            }
        }
        *self.causes.entry(stall.cause).or_default() += 1;
        let id = Identity::of(stall);
        let before = Identity {
            cause: old,
            ..id.clone()
        };
        let Some(at) = self.call_sites.iter().position(|c| before.matches(c)) else {
            // Counted beyond the list's bound, or under a call site a later look replaced.
            return;
        };
        self.call_sites[at].count -= 1;
        if self.call_sites[at].count == 0 {
            self.call_sites.remove(at);
        }
        match self.call_sites.iter_mut().find(|c| id.matches(c)) {
            Some(known) => known.count += 1,
            None => self.call_sites.push(CallSiteStalls {
                call_site: id.call_site,
                blocking_call: id.api,
                cause: id.cause,
                count: 1,
            }),
        }
        self.call_sites.sort_by_key(|c| std::cmp::Reverse(c.count));
    }

    /// The call sites as reports write them, with the ones beyond the list's bound as one
    /// `other` entry of cause `various`.
    pub(crate) fn call_sites_report(&self) -> Vec<CallSiteCount> {
        call_sites_report(&self.call_sites, self.other_call_sites)
    }
}

/// A stall still being followed.
#[derive(Clone, Debug)]
struct Live {
    number: u64,
    site: SiteId,
    cpu_at_detection_ns: Option<u64>,
    warned: bool,
    /// What the stall is counted under and its length so far, once its record left the
    /// recent stalls.
    evicted: Option<(Identity, u64)>,
}

/// A stall that ended with the watchdog's estimate of its length, waiting for its poll's own
/// measurement (see [`EndedStalls`]).
#[derive(Clone, Copy, Debug)]
struct Unsettled {
    key: PollKey,
    site: SiteId,
    estimate_ns: u64,
    /// Drains of the slow-poll rings since it ended.
    drains: u8,
}

/// Drains after which an unsettled stall takes the watchdog's estimate: its slow-poll record
/// is in its thread's ring by the time the watchdog sees the poll end, so the next drain that
/// takes records that old brings it, unless it was lost (the ring was full).
const DRAINS_TO_SETTLE: u8 = 2;

#[derive(Debug)]
pub(crate) struct Book {
    /// The most recent stalls, numbered in detection order.
    recent: VecDeque<(u64, StallRecord)>,
    /// The recent stalls whose duration is the poll's own measurement, not the watchdog's
    /// estimate.
    exact: HashSet<PollKey>,
    next_number: u64,
    live: HashMap<PollKey, Live>,
    /// Slow polls that ended before any stall was reported for them, newest last: the
    /// watchdog's detection of a poll can reach the reporter after the poll's own slow-poll
    /// record (its look took long, or it waited for a CPU), and then takes its length here.
    early: VecDeque<(PollKey, SiteId, u64, PollKind)>,
    per_site: HashMap<SiteId, SiteStalls>,
    /// Polls found blocking in place whose slow-poll record has not been drained yet, oldest
    /// first (at most [`MAX_LIVE`]).
    in_place: VecDeque<(PollKey, SiteId)>,
    /// Stalls that ended with an estimated length, oldest first (at most [`MAX_LIVE`]).
    unsettled: VecDeque<Unsettled>,
    /// Stalls whose first look captured no stack, held back (with the thread's CPU time at
    /// detection) until a later look or their end says whether they block in place.
    held: HashMap<PollKey, (StallRecord, Option<u64>)>,
    limit: RateLimit,
    suppressed: u64,
}

/// What the reporter should do after the book took a stall in.
#[derive(Debug)]
pub(crate) enum Warn {
    /// Emit this stall as a warning.
    Yes(Box<StallRecord>),
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
            early: VecDeque::new(),
            per_site: HashMap::new(),
            in_place: VecDeque::new(),
            unsettled: VecDeque::new(),
            held: HashMap::new(),
            limit: RateLimit::new(warnings_per_minute),
            suppressed: 0,
        }
    }

    /// A newly detected stall. When its poll's slow-poll record came first, the stall takes
    /// the poll's own length from it.
    pub(crate) fn detected(
        &mut self,
        mut stall: StallRecord,
        cpu_now_ns: Option<u64>,
        now: Instant,
    ) -> Warn {
        if let Some(at) = self
            .early
            .iter()
            .position(|&(key, site, _, _)| key == stall.key && site == stall.site)
        {
            if let Some((_, _, ns, kind)) = self.early.remove(at) {
                stall.duration_ns = ns;
                if kind == PollKind::Drop {
                    stall.kind = PollKind::Drop;
                }
                self.exact.insert(stall.key);
            }
        }
        let number = self.next_number;
        self.next_number += 1;
        let (key, site) = (stall.key, stall.site);
        let figures = self.per_site.entry(site).or_default();
        figures.count(&stall);
        let line = Line::stall(site, &Identity::of(&stall).call_site);
        let warned = self.limit.allow(line, now);
        if !warned {
            figures.warnings_suppressed += 1;
            self.suppressed += 1;
        }
        if self.live.len() >= MAX_LIVE {
            // An end message was lost (queue full): forget the oldest followed stall, which
            // is over as far as pollwatch will ever know.
            if let Some(oldest) = self
                .live
                .iter()
                .min_by_key(|(_, l)| l.number)
                .map(|(k, _)| *k)
            {
                self.forget_live(oldest);
            }
        }
        self.live.insert(
            key,
            Live {
                number,
                site,
                cpu_at_detection_ns: cpu_now_ns,
                warned,
                evicted: None,
            },
        );
        if self.recent.len() == Report::STALLS_KEPT {
            if let Some((_, old)) = self.recent.pop_front() {
                self.exact.remove(&old.key);
                if let Some(live) = self.live.get_mut(&old.key) {
                    live.evicted = Some((Identity::of(&old), old.duration_ns));
                }
            }
        }
        let warn = if warned {
            Warn::Yes(Box::new(stall.clone()))
        } else {
            Warn::Suppressed
        };
        self.recent.push_back((number, stall));
        warn
    }

    /// `n` stalls of `site` that the watchdog detected but whose first look was lost (its
    /// queue to the reporter was full, see `dropped.stall_samples`): counted like every other
    /// stall, and as ended, under cause `unknown` and call site `unknown`, since nothing else
    /// is known of them (their held time is not added). Later looks at them find no stall to
    /// update and change nothing.
    pub(crate) fn detections_lost(&mut self, site: SiteId, n: u64) {
        let id = Identity {
            call_site: pollwatch_report::call_site_label(None, None),
            api: None,
            cause: Cause::Unknown,
            worker: None,
        };
        let figures = self.per_site.entry(site).or_default();
        figures.stalls += n;
        *figures.causes.entry(id.cause).or_default() += n;
        *figures.ended.causes.entry(id.cause).or_default() += n;
        for list in [
            (&mut figures.call_sites, &mut figures.other_call_sites),
            (
                &mut figures.ended.call_sites,
                &mut figures.ended.other_call_sites,
            ),
        ] {
            count_call_sites(list.0, list.1, &id, n);
        }
    }

    /// Poll `key` of `site`, caught past the threshold, blocks inside `block_in_place`: it
    /// holds no worker, so it is counted as allowed instead of as a stall, and its slow-poll
    /// record will be silent ([`Book::in_place_ended`]).
    pub(crate) fn in_place(&mut self, key: PollKey, site: SiteId) {
        if self.is_in_place(key) {
            return;
        }
        self.per_site.entry(site).or_default().polls_in_place += 1;
        // Its slow-poll record may have been drained already (the detection came late).
        let drained = self.early.len();
        self.early.retain(|&(k, _, _, _)| k != key);
        if self.early.len() < drained {
            return;
        }
        if self.in_place.len() == MAX_LIVE {
            self.in_place.pop_front();
        }
        self.in_place.push_back((key, site));
    }

    /// Whether poll `key` was found blocking in place and has not ended yet.
    pub(crate) fn is_in_place(&self, key: PollKey) -> bool {
        self.in_place.iter().any(|&(k, _)| k == key)
    }

    /// A later look found poll `key`, counted as blocking in place, blocking outside it:
    /// it is no longer counted as in place (it becomes a stall).
    pub(crate) fn left_in_place(&mut self, key: PollKey) {
        if let Some(at) = self.in_place.iter().position(|&(k, _)| k == key) {
            if let Some((_, site)) = self.in_place.remove(at) {
                if let Some(figures) = self.per_site.get_mut(&site) {
                    figures.polls_in_place = figures.polls_in_place.saturating_sub(1);
                }
            }
        }
    }

    /// The slow-poll record of poll `key` was drained: returns whether the poll was blocking
    /// in place (its record is then neither warned about nor kept).
    pub(crate) fn in_place_ended(&mut self, key: PollKey) -> bool {
        match self.in_place.iter().position(|&(k, _)| k == key) {
            Some(at) => {
                self.in_place.remove(at);
                true
            }
            None => false,
        }
    }

    /// Holds back a stall whose first look captured no stack: a later look may find it
    /// blocking in place. Its slow-poll record is silent meanwhile. Gives the stall back when
    /// too many are held.
    pub(crate) fn hold(
        &mut self,
        stall: StallRecord,
        cpu_now_ns: Option<u64>,
    ) -> Result<(), Box<StallRecord>> {
        if self.held.len() >= MAX_LIVE {
            return Err(Box::new(stall));
        }
        self.held.insert(stall.key, (stall, cpu_now_ns));
        Ok(())
    }

    /// The held stall of poll `key`, with the thread's CPU time at its detection.
    pub(crate) fn take_held(&mut self, key: PollKey) -> Option<(StallRecord, Option<u64>)> {
        self.held.remove(&key)
    }

    /// Every held stall (when stopping: no later look will come).
    pub(crate) fn take_all_held(&mut self) -> Vec<(StallRecord, Option<u64>)> {
        self.held.drain().map(|(_, held)| held).collect()
    }

    /// Polls counted as blocking in place, over every site.
    pub(crate) fn in_place_total(&self) -> u64 {
        self.per_site.values().map(|s| s.polls_in_place).sum()
    }

    /// Whether `site` may emit a slow-poll warning now (its slow polls, which have no call
    /// site, are one line of the rate limit); counts the suppression if not.
    pub(crate) fn allow_warning(&mut self, site: SiteId, now: Instant) -> bool {
        if self.limit.allow(Line::slow_poll(site), now) {
            return true;
        }
        self.per_site.entry(site).or_default().warnings_suppressed += 1;
        self.suppressed += 1;
        false
    }

    /// CPU time the stalled thread used since detection, given its CPU time now.
    pub(crate) fn cpu_since_detection(&self, key: PollKey, cpu_now_ns: Option<u64>) -> Option<u64> {
        let live = self.live.get(&key)?;
        Some(cpu_now_ns?.saturating_sub(live.cpu_at_detection_ns?))
    }

    fn numbered_mut(&mut self, number: u64) -> Option<&mut StallRecord> {
        self.recent
            .iter_mut()
            .find(|(n, _)| *n == number)
            .map(|(_, stall)| stall)
    }

    /// Takes a later reading of the scheduler accounting of followed stall `key`'s thread
    /// (see [`StallRecord::scheduled`]; `ended_after_ns` once the poll ended); a changed
    /// cause is recounted. Returns the stall when
    /// its cause changed.
    pub(crate) fn scheduled(
        &mut self,
        key: PollKey,
        reading: Option<&super::sched::SchedReading>,
        ended_after_ns: Option<u64>,
    ) -> Option<StallRecord> {
        let stall = self.live_mut(key)?;
        let old = stall.scheduled(reading, ended_after_ns)?;
        let stall = stall.clone();
        self.per_site
            .entry(stall.site)
            .or_default()
            .recount(&stall, old);
        Some(stall)
    }

    /// The followed stall of poll `key`, to add a later look to.
    pub(crate) fn live_mut(&mut self, key: PollKey) -> Option<&mut StallRecord> {
        let number = self.live.get(&key)?.number;
        self.numbered_mut(number)
    }

    /// Stops following stall `key` without its end: counts it as ended with its length so far.
    fn forget_live(&mut self, key: PollKey) {
        let Some(live) = self.live.remove(&key) else {
            return;
        };
        let known = match self.numbered_mut(live.number) {
            Some(stall) => Some((Identity::of(stall), stall.duration_ns)),
            None => live.evicted,
        };
        if let Some((id, duration_ns)) = known {
            self.count_ended(key, live.site, &id, duration_ns, true);
        }
    }

    /// The stall of poll `key` ended after `total_ns` (the poll's own measurement when
    /// `exact`, else the watchdog's estimate, which never replaces a settled length); with
    /// the thread's CPU time now and the stall's final harm. Counts the stall among its
    /// site's ended stalls and returns the stall to report its end when its first warning was
    /// emitted.
    pub(crate) fn ended(
        &mut self,
        key: PollKey,
        total_ns: u64,
        exact: bool,
        cpu_now_ns: Option<u64>,
        harm: Option<Harm>,
    ) -> Option<StallRecord> {
        let cpu = self.cpu_since_detection(key, cpu_now_ns);
        let settled = self.is_exact(key);
        let live = self.live.remove(&key)?;
        // Whether the stall's thread runs a `LocalSet`, whose waiting tasks are not counted.
        let local_set = self
            .numbered_mut(live.number)
            .is_some_and(|stall| stall.runs_a_local_set());
        let harm = harm.map(|mut harm| {
            harm.local_set |= local_set;
            harm
        });
        if let Some(harm) = &harm {
            let figures = &mut self.per_site.entry(live.site).or_default().ended;
            figures.delay_task_ns = figures.delay_task_ns.saturating_add(harm.delay_task_ns);
            if harm.local_set {
                figures.delay_unknown += 1;
            }
        }
        let Some(stall) = self.numbered_mut(live.number) else {
            if let Some((id, _)) = &live.evicted {
                self.count_ended(key, live.site, id, total_ns, exact);
            }
            return None;
        };
        stall.ended = true;
        if exact {
            stall.duration_ns = total_ns;
        } else if !settled {
            // The watchdog's estimate, until the poll's own measurement arrives.
            stall.duration_ns = stall.duration_ns.max(total_ns);
        }
        stall.cpu_ns = cpu.or(stall.cpu_ns);
        if harm.is_some() {
            stall.harm = harm;
        }
        let (id, held_ns) = (Identity::of(stall), stall.duration_ns);
        let stall = live.warned.then(|| stall.clone());
        self.count_ended(key, live.site, &id, held_ns, exact || settled);
        stall
    }

    /// Counts stall `key` of `site` as ended under `id`, with its length `held_ns` (the
    /// poll's own measurement when `exact`, else waiting for it: see [`EndedStalls`]).
    fn count_ended(
        &mut self,
        key: PollKey,
        site: SiteId,
        id: &Identity,
        held_ns: u64,
        exact: bool,
    ) {
        let figures = &mut self.per_site.entry(site).or_default().ended;
        figures.count(id);
        if exact {
            figures.held_ns = figures.held_ns.saturating_add(held_ns);
            return;
        }
        if self.unsettled.len() >= MAX_LIVE {
            if let Some(oldest) = self.unsettled.pop_front() {
                self.add_held(oldest.site, oldest.estimate_ns);
            }
        }
        self.unsettled.push_back(Unsettled {
            key,
            site,
            estimate_ns: held_ns,
            drains: 0,
        });
    }

    fn add_held(&mut self, site: SiteId, ns: u64) {
        let figures = &mut self.per_site.entry(site).or_default().ended;
        figures.held_ns = figures.held_ns.saturating_add(ns);
    }

    /// A drain of every thread's slow-poll ring is over (`last`: the final one, nothing
    /// remains in the rings). A stall still waiting for its poll's own length after
    /// [`DRAINS_TO_SETTLE`] drains, or after the last, takes the watchdog's estimate.
    pub(crate) fn drained(&mut self, last: bool) {
        for unsettled in &mut self.unsettled {
            unsettled.drains = unsettled.drains.saturating_add(1);
        }
        // Oldest first, so the drains counted only decrease along the queue.
        while let Some(&oldest) = self.unsettled.front() {
            if !last && oldest.drains < DRAINS_TO_SETTLE {
                break;
            }
            self.unsettled.pop_front();
            self.add_held(oldest.site, oldest.estimate_ns);
        }
    }

    /// A slow poll (or drop, `kind`) of `key` at `site` that held its thread `ns` ended.
    /// Returns whether it was reported as a stall (its slow-poll warning is then redundant);
    /// the stall takes `ns` as its length, and the kind, now or when its detection arrives.
    pub(crate) fn slow_poll_ended(
        &mut self,
        key: PollKey,
        site: SiteId,
        ns: u64,
        kind: PollKind,
    ) -> bool {
        if let Some(at) = self
            .unsettled
            .iter()
            .position(|u| u.key == key && u.site == site)
        {
            // An ended stall waiting for its length: its held time is exact now.
            self.unsettled.remove(at);
            self.add_held(site, ns);
        }
        if self.was_reported(key) {
            if let Some(stall) = self.settle(key, site, ns) {
                if kind == PollKind::Drop {
                    stall.kind = PollKind::Drop;
                }
            }
            return true;
        }
        if self.early.len() == MAX_EARLY {
            self.early.pop_front();
        }
        self.early.push_back((key, site, ns, kind));
        // A held stall will be reported, or counted in place, and takes its length then.
        self.held.contains_key(&key)
    }

    /// Sets the duration of the stall of poll `key` at `site` to the poll's own measurement
    /// (its slow-poll record). Returns the stall, if there is one.
    fn settle(&mut self, key: PollKey, site: SiteId, ns: u64) -> Option<&mut StallRecord> {
        let (_, stall) = self
            .recent
            .iter_mut()
            .find(|(_, s)| s.key == key && s.site == site)?;
        stall.duration_ns = ns;
        self.exact.insert(key);
        Some(stall)
    }

    /// Whether the stall of poll `key` has its exact duration (see [`Book::settle`]).
    pub(crate) fn is_exact(&self, key: PollKey) -> bool {
        self.exact.contains(&key)
    }

    /// Whether poll `key` was reported as a stall.
    fn was_reported(&self, key: PollKey) -> bool {
        self.live.contains_key(&key) || self.recent.iter().any(|(_, s)| s.key == key)
    }

    /// The recent stalls as report entries, oldest first.
    pub(crate) fn recent(&self, sites: &Sites) -> Vec<Stall> {
        self.recent
            .iter()
            .map(|(_, s)| s.to_report(sites))
            .collect()
    }

    pub(crate) fn site(&self, site: SiteId) -> Option<&SiteStalls> {
        self.per_site.get(&site)
    }

    pub(crate) fn total(&self) -> u64 {
        self.per_site.values().map(|s| s.stalls).sum()
    }

    /// The summaries of suppressed warnings that are due at `now` (every one when
    /// `stopping`): see [`RateLimit::due`].
    pub(crate) fn suppressed_summaries(
        &mut self,
        now: Instant,
        stopping: bool,
    ) -> (Vec<Suppressed>, u32) {
        let due = if stopping {
            self.limit.take_all(now)
        } else {
            self.limit.due(now)
        };
        (due, self.limit.per_window())
    }

    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::record;
    use super::*;

    #[test]
    fn call_sites_are_counted_by_line_api_and_cause() {
        let mut book = Book::new(100);
        let now = Instant::now();
        for seq in 0..3 {
            let mut stall = record();
            stall.key.seq = seq;
            if seq == 2 {
                stall.look.call_site = None;
                stall.look.function = None;
                stall.cause = Cause::Sleep;
                stall.looked = Cause::Sleep;
            }
            book.detected(stall, None, now);
        }
        let site = book.site(SiteId::from_index(0)).unwrap();
        assert_eq!(site.stalls, 3);
        assert_eq!(site.causes.get(&Cause::FileIo), Some(&2));
        let listed = site.call_sites_report();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (listed[0].call_site.as_str(), listed[0].count),
            ("src/store.rs:17", 2)
        );
        assert_eq!(
            (listed[1].call_site.as_str(), listed[1].cause.as_str()),
            ("unknown", "sleep")
        );
    }

    #[test]
    fn stalls_whose_first_look_was_lost_are_still_counted() {
        let mut book = Book::new(100);
        let stall = record();
        let site = stall.site;
        book.detected(stall, None, Instant::now());
        book.detections_lost(site, 3);
        assert_eq!(book.total(), 4);
        let figures = book.site(site).unwrap();
        assert_eq!(figures.stalls, 4);
        assert_eq!(figures.causes.get(&Cause::Unknown), Some(&3));
        assert_eq!(figures.ended.causes.get(&Cause::Unknown), Some(&3));
        let listed = figures.call_sites_report();
        assert_eq!(listed.iter().map(|c| c.count).sum::<u64>(), 4);
        assert!(listed.iter().any(
            |c| (c.call_site.as_str(), c.cause.as_str(), c.count) == ("unknown", "unknown", 3)
        ));
        assert_eq!(
            book.recent(&Sites::new(4)).len(),
            1,
            "nothing to list of them"
        );
    }

    #[test]
    fn a_settled_stall_takes_the_polls_own_length_and_only_then_adds_held_time() {
        let mut book = Book::new(100);
        let stall = record();
        let (key, site) = (stall.key, stall.site);
        book.detected(stall, None, Instant::now());
        assert!(
            book.site(site).unwrap().ended.causes.is_empty(),
            "not ended"
        );
        // Ended with the watchdog's estimate, then settled by the slow-poll record.
        let ended = book
            .ended(key, 40_000_000, false, None, None)
            .expect("warned, so reported");
        assert_eq!((ended.ended, ended.duration_ns), (true, 312_000_000));
        let figures = &book.site(site).unwrap().ended;
        assert_eq!(figures.causes.get(&Cause::FileIo), Some(&1));
        assert_eq!(
            figures.held_ns, 0,
            "the estimate waits for the poll's own length"
        );
        assert!(book.slow_poll_ended(key, site, 31_000_000, PollKind::Poll));
        assert!(book.is_exact(key));
        assert_eq!(book.recent(&Sites::new(4))[0].duration_ns, 31_000_000);
        assert_eq!(book.site(site).unwrap().ended.held_ns, 31_000_000);
        book.drained(true);
        assert_eq!(book.site(site).unwrap().ended.held_ns, 31_000_000, "once");
        assert!(
            book.settle(key, SiteId::from_index(3), 1).is_none(),
            "another site's poll"
        );
    }

    #[test]
    fn an_estimate_whose_record_never_comes_is_held_time_after_two_drains() {
        let mut book = Book::new(100);
        let stall = record();
        let (key, site) = (stall.key, stall.site);
        book.detected(stall, None, Instant::now());
        book.ended(key, 40_000_000, false, None, None);
        book.drained(false);
        assert_eq!(book.site(site).unwrap().ended.held_ns, 0);
        book.drained(false);
        assert_eq!(book.site(site).unwrap().ended.held_ns, 312_000_000);
        // A record arriving after all is not counted again.
        book.slow_poll_ended(key, site, 31_000_000, PollKind::Poll);
        assert_eq!(book.site(site).unwrap().ended.held_ns, 312_000_000);
    }

    #[test]
    fn an_ended_stall_is_counted_under_its_final_cause() {
        use super::super::sched::SchedReading;
        use pollwatch_capture::SchedTimes;
        let reading = |at_ms: u64, run_ms: u64, wait_ms: u64| SchedReading {
            at_ns: at_ms * 1_000_000,
            times: SchedTimes {
                run_ns: run_ms * 1_000_000,
                wait_ns: wait_ms * 1_000_000,
                timeslices: 0,
            },
            throttling: None,
        };
        let mut book = Book::new(100);
        let mut stall = record();
        stall.look.api = None;
        stall.cause = Cause::Cpu;
        stall.looked = Cause::Cpu;
        // First read 1 ms into the poll.
        stall.started_at_ns = 4_000_000;
        stall.sched_first = Some(reading(5, 100, 50));
        let (key, site) = (stall.key, stall.site);
        book.detected(stall, None, Instant::now());
        book.scheduled(key, Some(&reading(25, 104, 65)), None)
            .expect("reclassified");
        book.ended(key, 20_000_000, true, None, None);
        let ended = &book.site(site).unwrap().ended;
        assert_eq!(ended.causes.len(), 1);
        assert_eq!(ended.causes.get(&Cause::Descheduled), Some(&1));
        assert_eq!(ended.held_ns, 20_000_000);
        let calls = ended.call_sites_report();
        assert_eq!((calls.len(), calls[0].cause.as_str()), (1, "descheduled"));
    }

    #[test]
    fn a_stall_detected_after_its_slow_poll_record_takes_the_polls_own_length() {
        let mut book = Book::new(100);
        let mut stall = record();
        stall.ended = false;
        // The watchdog's look took long: it saw 84 ms, the poll itself held 20 ms, and its
        // slow-poll record reached the reporter first.
        stall.duration_ns = 84_000_000;
        let (key, site) = (stall.key, stall.site);
        assert!(
            !book.slow_poll_ended(key, site, 20_000_000, PollKind::Drop),
            "not reported yet"
        );
        book.detected(stall, None, Instant::now());
        assert!(book.is_exact(key));
        // The end arrives with the watchdog's estimate, which no longer wins.
        let ended = book
            .ended(key, 90_000_000, false, None, None)
            .expect("warned, so reported");
        assert_eq!((ended.ended, ended.duration_ns), (true, 20_000_000));
        assert_eq!(
            ended.kind,
            PollKind::Drop,
            "the poll path saw the future dropped"
        );
        assert_eq!(book.recent(&Sites::new(4))[0].duration_ns, 20_000_000);
        assert_eq!(book.site(site).unwrap().ended.held_ns, 20_000_000);
        // A slow poll of a stall already reported settles it and is not warned about.
        assert!(book.slow_poll_ended(key, site, 19_000_000, PollKind::Drop));
        assert_eq!(book.recent(&Sites::new(4))[0].duration_ns, 19_000_000);
    }

    #[test]
    fn a_poll_blocking_in_place_is_counted_apart_and_its_slow_poll_is_silent() {
        let mut book = Book::new(100);
        let stall = record();
        let (key, site) = (stall.key, stall.site);
        book.in_place(key, site);
        book.in_place(key, site);
        assert_eq!(book.site(site).unwrap().polls_in_place, 1, "once per poll");
        assert_eq!((book.total(), book.in_place_total()), (0, 1));
        assert!(book.in_place_ended(key), "its slow-poll record is silent");
        assert!(!book.in_place_ended(key), "once");
        assert!(!book.slow_poll_ended(key, site, 1, PollKind::Poll));

        // Another poll leaves `block_in_place` and blocks outside it: no longer in place.
        let mut other = record();
        other.key.seq += 1;
        book.in_place(other.key, site);
        book.left_in_place(other.key);
        assert!(!book.is_in_place(other.key));
        assert_eq!(book.in_place_total(), 1);
    }

    #[test]
    fn a_held_stall_silences_its_slow_poll_and_takes_its_length_when_reported() {
        let mut book = Book::new(100);
        let mut stall = record();
        stall.look.backtrace.clear();
        let (key, site) = (stall.key, stall.site);
        book.hold(stall, Some(5)).expect("room to hold it");
        assert!(
            book.slow_poll_ended(key, site, 20_000_000, PollKind::Poll),
            "its slow poll is silent while it is held"
        );
        assert_eq!(book.total(), 0, "not counted while held");
        let (held, cpu) = book.take_held(key).expect("held");
        assert_eq!(cpu, Some(5));
        assert!(book.take_held(key).is_none());
        book.detected(held, cpu, Instant::now());
        assert_eq!(book.total(), 1);
        assert_eq!(book.recent(&Sites::new(4))[0].duration_ns, 20_000_000);
    }

    #[test]
    fn a_held_poll_found_in_place_is_counted_in_place() {
        let mut book = Book::new(100);
        let stall = record();
        let (key, site) = (stall.key, stall.site);
        book.hold(stall, None).expect("room to hold it");
        assert!(book.slow_poll_ended(key, site, 20_000_000, PollKind::Poll));
        assert!(book.take_held(key).is_some());
        book.in_place(key, site);
        assert_eq!((book.total(), book.in_place_total()), (0, 1));
        assert!(
            !book.is_in_place(key),
            "its slow poll was drained already: nothing left to silence"
        );
    }

    #[test]
    fn a_stall_found_descheduled_is_recounted_under_its_new_cause() {
        use super::super::sched::SchedReading;
        use pollwatch_capture::SchedTimes;
        let reading = |at_ms: u64, run_ms: u64, wait_ms: u64| SchedReading {
            at_ns: at_ms * 1_000_000,
            times: SchedTimes {
                run_ns: run_ms * 1_000_000,
                wait_ns: wait_ms * 1_000_000,
                timeslices: 0,
            },
            throttling: None,
        };
        let mut book = Book::new(100);
        let now = Instant::now();
        for seq in 0..2 {
            let mut stall = record();
            stall.key.seq = seq;
            stall.look.api = None;
            stall.cause = Cause::Cpu;
            stall.looked = Cause::Cpu;
            // First read 1 ms into the poll.
            stall.started_at_ns = 4_000_000;
            // First read 1 ms into the poll.
            stall.started_at_ns = 4_000_000;
            stall.sched_first = Some(reading(5, 100, 50));
            book.detected(stall, None, now);
        }
        let start = record().key.start;
        let key = |seq| PollKey {
            slot: 0,
            seq,
            start,
        };
        // The first ran through; the second waited 15 of 20 ms for a CPU.
        assert!(book
            .scheduled(key(0), Some(&reading(25, 119, 51)), None)
            .is_none());
        let changed = book
            .scheduled(key(1), Some(&reading(25, 104, 65)), None)
            .expect("reclassified");
        assert_eq!(changed.cause, Cause::Descheduled);
        let site = book.site(SiteId::from_index(0)).unwrap();
        assert_eq!(site.stalls, 2);
        assert_eq!(site.causes.get(&Cause::Cpu), Some(&1));
        assert_eq!(site.causes.get(&Cause::Descheduled), Some(&1));
        let listed = site.call_sites_report();
        let causes: Vec<(&str, u64)> = listed.iter().map(|c| (c.cause.as_str(), c.count)).collect();
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert!(causes.contains(&("cpu", 1)) && causes.contains(&("descheduled", 1)));
        // A later reading that changes nothing recounts nothing.
        assert!(book
            .scheduled(key(1), Some(&reading(26, 104, 66)), None)
            .is_none());
        assert_eq!(book.recent(&Sites::new(4))[1].cause, "descheduled");
    }
}

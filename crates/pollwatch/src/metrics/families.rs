//! pollwatch's metrics read from a layer's live state, once per scrape or publication, as
//! plain metric families: each way out (the `prometheus_client` collector, the `metrics`
//! facade) writes these same families, with the same names, units and labels. Nothing is
//! added to the poll path; a reading costs what a [`crate::Handle::report`] costs without the
//! hdrhistograms (merging every thread's recorders per site, one short lock of the stall
//! book).
//!
//! **Counters never decrease.** Every counter (and the histogram's buckets, sum and count) is
//! read from figures that only grow:
//!
//! - the histogram and `pollwatch_slow_polls_total` count polls *and* drops: a task's last
//!   enter, first recorded as a poll, is relabelled a drop when its span closes, which moves
//!   it from the recorder's polls to its drops and leaves their sum as it was;
//! - the stall families count a stall when it ends, under its final cause and call site, and
//!   add its held time once that is the poll's own measurement
//!   ([`EndedStalls`](crate::stall::book::EndedStalls));
//! - the dropped-event counts only grow.
//!
//! A reading sees the recorders while their threads write, and may see a relabelling half
//! done (the poll taken away, the drop not yet added; never the reverse). So each [`Reader`]
//! keeps, per site, the histogram and slow-poll figures it last gave and gives the larger of
//! those and the new reading: the next reading sees the relabelling whole and the figures are
//! exact again. That memory is one small entry per site that polled.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use pollwatch_report::Dropped;

use crate::config::POLL_DURATION_BUCKETS;
use crate::poll::recorder::{fold_index, SiteTotals, FOLDED};
use crate::poll::thread::ThreadSlot;
use crate::poll::PollPath;
use crate::sites::SiteId;
use crate::snapshot;
use crate::stall::book::EndedStalls;
use crate::state::State;

const NS_PER_SECOND: f64 = 1e9;

/// The most spawn sites exported one by one; the others are summed into one series per
/// family with `site="<other>"`, so a scrape's size stays bounded however many sites a
/// service has.
pub(crate) const METRICS_MAX_SITES: usize = 100;

/// The `site` label of the series that sum the sites beyond [`METRICS_MAX_SITES`].
pub(crate) const OTHER_SITES_LABEL: &str = "<other>";

/// What a reader remembers between readings. A site is exported alone or summed into
/// `<other>` from its first scrape on, for good: moving a site out of `<other>` would lower
/// that series.
#[derive(Debug, Default)]
pub(crate) struct Floors {
    held: HashMap<SiteId, Held>,
    alone: HashSet<SiteId>,
    summed: HashSet<SiteId>,
}

/// How long one site's polls and drops held their thread: the histogram (cumulative counts
/// per bucket, `+Inf` last), its sum, and the slow ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) cumulative: [u64; FOLDED],
    pub(crate) sum_ns: u64,
    pub(crate) slow: u64,
}

impl Held {
    /// The polls and drops of `merged`.
    pub(crate) fn of(merged: &SiteTotals) -> Self {
        let mut counts = merged.drop_buckets;
        for (bucket, &count) in merged.buckets.iter().enumerate() {
            if count > 0 {
                counts[fold_index(bucket)] += count;
            }
        }
        let mut cumulative = [0; FOLDED];
        let mut sum = 0;
        for (into, count) in cumulative.iter_mut().zip(counts) {
            sum += count;
            *into = sum;
        }
        Self {
            cumulative,
            sum_ns: merged.busy_ns + merged.drop_ns,
            slow: merged.slow_polls + merged.slow_drops,
        }
    }

    /// Each figure the larger of `self`'s and `other`'s. Cumulative counts stay
    /// non-decreasing along the buckets, as both sides' are.
    pub(crate) fn max(self, other: Self) -> Self {
        let mut cumulative = self.cumulative;
        for (into, other) in cumulative.iter_mut().zip(other.cumulative) {
            *into = (*into).max(other);
        }
        Self {
            cumulative,
            sum_ns: self.sum_ns.max(other.sum_ns),
            slow: self.slow.max(other.slow),
        }
    }

    /// The time its polls and drops held their thread, in seconds.
    pub(crate) fn sum_seconds(&self) -> f64 {
        seconds(self.sum_ns)
    }

    pub(crate) fn count(&self) -> u64 {
        self.cumulative[FOLDED - 1]
    }

    /// The figures of `self` and `other` together.
    fn add(self, other: Self) -> Self {
        let mut cumulative = self.cumulative;
        for (into, other) in cumulative.iter_mut().zip(other.cumulative) {
            *into += other;
        }
        Self {
            cumulative,
            sum_ns: self.sum_ns + other.sum_ns,
            slow: self.slow + other.slow,
        }
    }

    /// The buckets as the encoder takes them: `(le, count in this bucket alone)`, `+Inf` last.
    pub(crate) fn buckets(&self) -> Vec<(f64, u64)> {
        let mut below = 0;
        POLL_DURATION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.cumulative)
            .map(|(le, cumulative)| {
                let alone = cumulative - below;
                below = cumulative;
                (le, alone)
            })
            .collect()
    }
}

/// What one site (or `<other>`) contributes to a scrape.
struct SiteRow {
    label: String,
    held: Held,
    ended: Option<EndedStalls>,
}

/// Everything one scrape reads from the state, read once.
pub(crate) struct Scrape {
    rows: Vec<SiteRow>,
    dropped: Dropped,
    sites: u64,
    polling_threads: u64,
    stalled_now: u64,
    longest_running_ns: u64,
    threshold_ns: u64,
}

impl Scrape {
    /// Reads `state`; each site's histogram and slow polls are raised to what `floors` says
    /// was exported before, and `floors` keeps what this scrape exports. Sites new to this
    /// collector are exported alone while fewer than [`METRICS_MAX_SITES`] are, those that
    /// held their threads longest first; the others are summed into `<other>`.
    pub(crate) fn read(state: &State, floors: &mut Floors) -> Self {
        let slots = state.poll.slot_list();
        let all_sites = state.sites.all();
        // The book's figures, copied out under its lock; the merging happens without it.
        let book = state.book.lock();
        let figures: Vec<Option<EndedStalls>> = all_sites
            .iter()
            .map(|(id, _)| book.site(*id).map(|s| s.ended.clone()))
            .collect();
        let dropped = snapshot::dropped(state, &slots, &book);
        drop(book);
        let mut rows: Vec<(SiteId, SiteRow)> = Vec::new();
        for ((id, site), ended) in all_sites.iter().zip(figures) {
            let merged = PollPath::merge_site(&slots, *id);
            let mut held = Held::of(&merged);
            if let Some(floor) = floors.held.get(id) {
                held = held.max(*floor);
            }
            if held.count() > 0 {
                floors.held.insert(*id, held);
            } else if ended.is_none() {
                continue;
            }
            let label = site.label.clone();
            rows.push((*id, SiteRow { label, held, ended }));
        }
        let rows = floors.place(rows);
        let (stalled_now, longest_running_ns) = running_now(state, &slots);
        Self {
            rows,
            dropped,
            sites: all_sites.len().saturating_sub(1) as u64,
            polling_threads: slots.iter().filter(|s| s.is_alive()).count() as u64,
            stalled_now,
            longest_running_ns,
            threshold_ns: state.threshold_ns(),
        }
    }

    fn polled(&self) -> impl Iterator<Item = &SiteRow> {
        self.rows.iter().filter(|r| r.held.count() > 0)
    }

    /// The sites' stalls that ended.
    fn ended(&self) -> impl Iterator<Item = (&str, &EndedStalls)> {
        self.rows
            .iter()
            .filter_map(|r| Some((r.label.as_str(), r.ended.as_ref()?)))
    }
}

impl Floors {
    /// The rows to export: each site alone, or summed into one `<other>` row (last).
    fn place(&mut self, mut rows: Vec<(SiteId, SiteRow)>) -> Vec<SiteRow> {
        let mut new: Vec<&(SiteId, SiteRow)> = rows
            .iter()
            .filter(|(id, _)| !self.alone.contains(id) && !self.summed.contains(id))
            .collect();
        new.sort_by_key(|(_, row)| std::cmp::Reverse(row.held.sum_ns));
        for (id, _) in new {
            if self.alone.len() < METRICS_MAX_SITES {
                self.alone.insert(*id);
            } else {
                self.summed.insert(*id);
            }
        }
        let mut other: Option<SiteRow> = None;
        rows.retain_mut(|(id, row)| {
            if self.alone.contains(id) {
                return true;
            }
            let sum = other.get_or_insert_with(|| SiteRow {
                label: OTHER_SITES_LABEL.to_owned(),
                held: Held::default(),
                ended: None,
            });
            sum.held = sum.held.add(row.held);
            if let Some(ended) = &row.ended {
                let into = sum.ended.get_or_insert_with(EndedStalls::default);
                for (cause, count) in &ended.causes {
                    *into.causes.entry(*cause).or_default() += count;
                }
                into.held_ns += ended.held_ns;
                into.delay_task_ns = into.delay_task_ns.saturating_add(ended.delay_task_ns);
            }
            false
        });
        rows.into_iter().map(|(_, row)| row).chain(other).collect()
    }
}

/// Threads whose innermost poll has held them past the threshold by itself right now, and
/// the longest such own time (ns).
fn running_now(state: &State, slots: &[Arc<ThreadSlot>]) -> (u64, u64) {
    let clock = &state.poll.clock;
    let mut stalled = 0;
    let mut longest = 0;
    for slot in slots.iter().filter(|s| s.is_alive()) {
        let Some(poll) = slot.innermost() else {
            continue;
        };
        let running = poll.own_ns(clock);
        if running > state.threshold_ns() {
            stalled += 1;
        }
        longest = longest.max(running);
    }
    (stalled, longest)
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / NS_PER_SECOND
}

/// What a metric family counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family: its name without unit or `_total` (as `prometheus_client` takes it),
/// its help, whether it is in seconds, what it counts, and its series.
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) seconds: bool,
    pub(crate) kind: Kind,
    pub(crate) series: Vec<Series>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, seconds: bool, kind: Kind) -> Self {
        Self {
            name,
            help,
            seconds,
            kind,
            series: Vec::new(),
        }
    }

    /// Its name as exported: with `_seconds` for a family in seconds, and `_total` for a
    /// counter (`pollwatch_stall_held_seconds_total`).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn full_name(&self) -> String {
        let unit = if self.seconds { "_seconds" } else { "" };
        let total = if self.kind == Kind::Counter {
            "_total"
        } else {
            ""
        };
        format!("{}{unit}{total}", self.name)
    }

    fn push(&mut self, labels: &[(&'static str, &str)], value: Value) {
        self.series.push(Series {
            labels: labels.iter().map(|&(k, v)| (k, v.to_owned())).collect(),
            value,
        });
    }
}

/// One series of a family: its labels and value.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) labels: Vec<(&'static str, String)>,
    pub(crate) value: Value,
}

/// A series' value.
#[derive(Debug)]
pub(crate) enum Value {
    /// A count.
    Int(u64),
    /// Seconds, or a gauge's reading.
    Float(f64),
    /// A poll-time histogram.
    Histogram(Held),
}

/// Reads a layer's state as metric families, keeping what it gave before (see the module's
/// docs): one per way out.
#[derive(Debug)]
pub(crate) struct Reader {
    state: Arc<State>,
    floors: Mutex<Floors>,
}

impl Reader {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self {
            state,
            floors: Mutex::new(Floors::default()),
        }
    }

    /// Every family, read now.
    pub(crate) fn read(&self) -> Vec<Family> {
        // Held across the read, so that concurrent readings raise the floors one at a time.
        let mut floors = self.floors.lock();
        let scrape = Scrape::read(&self.state, &mut floors);
        drop(floors);
        let mut families = vec![poll_durations(&scrape), slow_polls(&scrape)];
        families.extend(stalls(&scrape));
        families.push(call_sites(&scrape));
        families.push(workers(&scrape));
        families.push(dropped(&scrape.dropped));
        families.extend(gauges(&scrape));
        families
    }
}

fn poll_durations(scrape: &Scrape) -> Family {
    let mut family = Family::new(
        "pollwatch_poll_duration",
        "How long each task poll, or the drop of a task's future, held its thread, by spawn \
         site (bucket bounds are exact to within 1/32 of a value)",
        true,
        Kind::Histogram,
    );
    for row in scrape.polled() {
        family.push(&[("site", row.label.as_str())], Value::Histogram(row.held));
    }
    family
}

fn slow_polls(scrape: &Scrape) -> Family {
    let mut family = Family::new(
        "pollwatch_slow_polls",
        "Polls (and drops of a task's future) that held their thread longer than the \
         threshold, by spawn site",
        false,
        Kind::Counter,
    );
    for row in scrape.polled() {
        family.push(&[("site", row.label.as_str())], Value::Int(row.held.slow));
    }
    family
}

fn stalls(scrape: &Scrape) -> [Family; 4] {
    let mut stalls = Family::new(
        "pollwatch_stalls",
        "Polls the watchdog caught holding their thread past the threshold, counted when \
         they end, by spawn site and final cause",
        false,
        Kind::Counter,
    );
    let mut held = Family::new(
        "pollwatch_stall_held",
        "Total time the stalls that ended held their thread (added once it is the poll's own \
         measurement), by spawn site",
        true,
        Kind::Counter,
    );
    let mut delay = Family::new(
        "pollwatch_stall_delay_task",
        "Scheduling delay the stalls that ended added to the tasks ready to run behind them, \
         estimated in task-seconds (a task held up for one second is one), by spawn site",
        true,
        Kind::Counter,
    );
    let mut unknown = Family::new(
        "pollwatch_stall_delay_unknown",
        "Stalls that ended whose delay to other tasks pollwatch cannot measure (their thread \
         runs a LocalSet, whose queue it cannot read): unknown, not zero, and not in \
         pollwatch_stall_delay_task_seconds_total, by spawn site",
        false,
        Kind::Counter,
    );
    for (site, ended) in scrape.ended() {
        for (cause, &count) in &ended.causes {
            stalls.push(
                &[("site", site), ("cause", cause.as_str())],
                Value::Int(count),
            );
        }
    }
    for (site, ended) in scrape.ended() {
        if !ended.causes.is_empty() {
            let site = &[("site", site)];
            held.push(site, Value::Float(seconds(ended.held_ns)));
            delay.push(site, Value::Float(seconds(ended.delay_task_ns)));
            unknown.push(site, Value::Int(ended.delay_unknown));
        }
    }
    [stalls, held, delay, unknown]
}

fn workers(scrape: &Scrape) -> Family {
    let mut family = Family::new(
        "pollwatch_worker_stalls",
        "Stalls that ended, by the index of the runtime worker they held (tokio's \
         worker_index; the first 64, the rest as worker=\"other\"); stalls of threads that \
         are no worker (block_on callers) are not counted here",
        false,
        Kind::Counter,
    );
    let mut workers: BTreeMap<usize, u64> = BTreeMap::new();
    let mut other = 0;
    for (_, ended) in scrape.ended() {
        for (&worker, &count) in &ended.workers {
            *workers.entry(worker).or_default() += count;
        }
        other += ended.other_workers;
    }
    for (worker, count) in workers {
        family.push(
            &[("worker", worker.to_string().as_str())],
            Value::Int(count),
        );
    }
    if other > 0 {
        family.push(&[("worker", "other")], Value::Int(other));
    }
    family
}

fn call_sites(scrape: &Scrape) -> Family {
    let mut family = Family::new(
        "pollwatch_call_site_stalls",
        "Stalls that ended, by blocking call site in the application's code (at most 32 \
         per spawn site; the rest as call_site=\"other\")",
        false,
        Kind::Counter,
    );
    for (site, ended) in scrape.ended() {
        for call in ended.call_sites_report() {
            family.push(
                &[
                    ("site", site),
                    ("call_site", call.call_site.as_str()),
                    ("blocking_call", call.blocking_call.as_deref().unwrap_or("")),
                    ("cause", call.cause.as_str()),
                ],
                Value::Int(call.count),
            );
        }
    }
    family
}

fn dropped(dropped: &Dropped) -> Family {
    let mut family = Family::new(
        "pollwatch_dropped_events",
        "Measurements pollwatch lost or left out, by kind",
        false,
        Kind::Counter,
    );
    for (kind, count) in [
        ("tasks_in_overflow_site", dropped.tasks_in_overflow_site),
        ("slow_poll_events", dropped.slow_poll_events),
        ("polls_nested_too_deep", dropped.polls_nested_too_deep),
        ("values_clamped", dropped.values_clamped),
        (
            "stall_warnings_suppressed",
            dropped.stall_warnings_suppressed,
        ),
        ("stall_samples", dropped.stall_samples),
        ("report_writes_failed", dropped.report_writes_failed),
        ("host_panics", dropped.host_panics),
    ] {
        family.push(&[("kind", kind)], Value::Int(count));
    }
    family
}

fn gauges(scrape: &Scrape) -> Vec<Family> {
    [
        (
            "pollwatch_workers_stalled",
            "Threads whose current poll has held them longer than the threshold, now",
            false,
            scrape.stalled_now as f64,
        ),
        (
            "pollwatch_longest_running_poll",
            "How long the longest poll running now has held its thread (0 when none runs)",
            true,
            seconds(scrape.longest_running_ns),
        ),
        (
            "pollwatch_polling_threads",
            "Threads that have polled a task (workers, block_on callers) and still run",
            false,
            scrape.polling_threads as f64,
        ),
        (
            "pollwatch_sites",
            "Distinct spawn sites in the site table (not counting the overflow site)",
            false,
            scrape.sites as f64,
        ),
        (
            "pollwatch_threshold",
            "The slow-poll threshold in force",
            true,
            seconds(scrape.threshold_ns),
        ),
    ]
    .into_iter()
    .map(|(name, help, in_seconds, value)| {
        let mut family = Family::new(name, help, in_seconds, Kind::Gauge);
        family.push(&[], Value::Float(value));
        family
    })
    .collect()
}

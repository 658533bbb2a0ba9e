//! The collector: reads pollwatch's live state at scrape time and encodes it as Prometheus
//! metric families. Nothing is added to the poll path; a scrape costs what a
//! [`crate::Handle::report`] costs without the hdrhistograms (merging every thread's recorders
//! per site, one short lock of the stall book).
//!
//! **Counters never decrease.** Every counter (and the histogram's buckets, `_sum` and
//! `_count`) is read from figures that only grow:
//!
//! - the histogram and `pollwatch_slow_polls_total` count polls *and* drops: a task's last
//!   enter, first recorded as a poll, is relabelled a drop when its span closes, which moves
//!   it from the recorder's polls to its drops and leaves their sum as it was;
//! - the stall families count a stall when it ends, under its final cause and call site, and
//!   add its held time once that is the poll's own measurement
//!   ([`EndedStalls`](crate::stall::book::EndedStalls));
//! - the dropped-event counts only grow.
//!
//! A scrape reads the recorders while their threads write, and may see a relabelling half
//! done (the poll taken away, the drop not yet added; never the reverse). So each collector
//! keeps, per site, the histogram and slow-poll figures it last exported and exports the
//! larger of those and the new reading: the next scrape sees the relabelling whole and the
//! figures are exact again. That memory is one small entry per site that polled.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

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

/// pollwatch's metrics, computed from a layer's state on every scrape.
#[derive(Debug)]
pub(crate) struct PollWatchCollector {
    state: Arc<State>,
    /// What was last exported per site, so no reading lower than it is exported, and which
    /// sites are exported one by one.
    floors: Mutex<Floors>,
}

/// What a collector remembers between scrapes. A site is exported alone or summed into
/// `<other>` from its first scrape on, for good: moving a site out of `<other>` would lower
/// that series.
#[derive(Debug, Default)]
struct Floors {
    held: HashMap<SiteId, Held>,
    alone: HashSet<SiteId>,
    summed: HashSet<SiteId>,
}

impl PollWatchCollector {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self {
            state,
            floors: Mutex::new(Floors::default()),
        }
    }
}

/// How long one site's polls and drops held their thread: the histogram (cumulative counts
/// per bucket, `+Inf` last), its sum, and the slow ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    cumulative: [u64; FOLDED],
    sum_ns: u64,
    slow: u64,
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
    fn max(self, other: Self) -> Self {
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

    fn count(&self) -> u64 {
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
struct Scrape {
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
    fn read(state: &State, floors: &mut Floors) -> Self {
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

fn counter(value: u64) -> ConstCounter<u64> {
    ConstCounter::new(value)
}

impl Collector for PollWatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // Held across the read, so that concurrent scrapes raise the floors one at a time.
        let mut floors = self.floors.lock();
        let scrape = Scrape::read(&self.state, &mut floors);
        drop(floors);
        encode_poll_durations(&mut encoder, &scrape)?;
        encode_slow_polls(&mut encoder, &scrape)?;
        encode_stalls(&mut encoder, &scrape)?;
        encode_call_sites(&mut encoder, &scrape)?;
        encode_workers(&mut encoder, &scrape)?;
        encode_dropped(&mut encoder, &scrape.dropped)?;
        encode_gauges(&mut encoder, &scrape)
    }
}

fn encode_poll_durations(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_poll_duration",
        "How long each task poll, or the drop of a task's future, held its thread, by spawn \
         site (bucket bounds are exact to within 1/32 of a value)",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for row in scrape.polled() {
        metric
            .encode_family(&[("site", row.label.as_str())])?
            .encode_histogram::<NoLabelSet>(
                seconds(row.held.sum_ns),
                row.held.count(),
                &row.held.buckets(),
                None,
            )?;
    }
    Ok(())
}

fn encode_slow_polls(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_slow_polls",
        "Polls (and drops of a task's future) that held their thread longer than the \
         threshold, by spawn site",
        None,
        MetricType::Counter,
    )?;
    for row in scrape.polled() {
        counter(row.held.slow).encode(metric.encode_family(&[("site", row.label.as_str())])?)?;
    }
    Ok(())
}

fn encode_stalls(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_stalls",
        "Polls the watchdog caught holding their thread past the threshold, counted when \
         they end, by spawn site and final cause",
        None,
        MetricType::Counter,
    )?;
    for (site, ended) in scrape.ended() {
        for (cause, &count) in &ended.causes {
            counter(count)
                .encode(metric.encode_family(&[("site", site), ("cause", cause.as_str())])?)?;
        }
    }
    let mut metric = encoder.encode_descriptor(
        "pollwatch_stall_held",
        "Total time the stalls that ended held their thread (added once it is the poll's own \
         measurement), by spawn site",
        Some(&Unit::Seconds),
        MetricType::Counter,
    )?;
    for (site, ended) in scrape.ended() {
        if !ended.causes.is_empty() {
            ConstCounter::new(seconds(ended.held_ns))
                .encode(metric.encode_family(&[("site", site)])?)?;
        }
    }
    let mut metric = encoder.encode_descriptor(
        "pollwatch_stall_delay_task",
        "Scheduling delay the stalls that ended added to the tasks ready to run behind them, \
         estimated in task-seconds (a task held up for one second is one), by spawn site",
        Some(&Unit::Seconds),
        MetricType::Counter,
    )?;
    for (site, ended) in scrape.ended() {
        if !ended.causes.is_empty() {
            ConstCounter::new(seconds(ended.delay_task_ns))
                .encode(metric.encode_family(&[("site", site)])?)?;
        }
    }
    let mut metric = encoder.encode_descriptor(
        "pollwatch_stall_delay_unknown",
        "Stalls that ended whose delay to other tasks pollwatch cannot measure (their thread \
         runs a LocalSet, whose queue it cannot read): unknown, not zero, and not in \
         pollwatch_stall_delay_task_seconds_total, by spawn site",
        None,
        MetricType::Counter,
    )?;
    for (site, ended) in scrape.ended() {
        if !ended.causes.is_empty() {
            counter(ended.delay_unknown).encode(metric.encode_family(&[("site", site)])?)?;
        }
    }
    Ok(())
}

fn encode_workers(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_worker_stalls",
        "Stalls that ended, by the index of the runtime worker they held (tokio's \
         worker_index; the first 64, the rest as worker=\"other\"); stalls of threads that \
         are no worker (block_on callers) are not counted here",
        None,
        MetricType::Counter,
    )?;
    let mut workers: BTreeMap<usize, u64> = BTreeMap::new();
    let mut other = 0;
    for (_, ended) in scrape.ended() {
        for (&worker, &count) in &ended.workers {
            *workers.entry(worker).or_default() += count;
        }
        other += ended.other_workers;
    }
    for (worker, count) in workers {
        counter(count).encode(metric.encode_family(&[("worker", worker.to_string().as_str())])?)?;
    }
    if other > 0 {
        counter(other).encode(metric.encode_family(&[("worker", "other")])?)?;
    }
    Ok(())
}

fn encode_call_sites(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_call_site_stalls",
        "Stalls that ended, by blocking call site in the application's code (at most 32 \
         per spawn site; the rest as call_site=\"other\")",
        None,
        MetricType::Counter,
    )?;
    for (site, ended) in scrape.ended() {
        for call in ended.call_sites_report() {
            counter(call.count).encode(metric.encode_family(&[
                ("site", site),
                ("call_site", call.call_site.as_str()),
                ("blocking_call", call.blocking_call.as_deref().unwrap_or("")),
                ("cause", call.cause.as_str()),
            ])?)?;
        }
    }
    Ok(())
}

fn encode_dropped(encoder: &mut DescriptorEncoder, dropped: &Dropped) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_dropped_events",
        "Measurements pollwatch lost or left out, by kind",
        None,
        MetricType::Counter,
    )?;
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
        counter(count).encode(metric.encode_family(&[("kind", kind)])?)?;
    }
    Ok(())
}

fn encode_gauges(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    for (name, help, unit, value) in [
        (
            "pollwatch_workers_stalled",
            "Threads whose current poll has held them longer than the threshold, now",
            None,
            scrape.stalled_now as f64,
        ),
        (
            "pollwatch_longest_running_poll",
            "How long the longest poll running now has held its thread (0 when none runs)",
            Some(Unit::Seconds),
            seconds(scrape.longest_running_ns),
        ),
        (
            "pollwatch_polling_threads",
            "Threads that have polled a task (workers, block_on callers) and still run",
            None,
            scrape.polling_threads as f64,
        ),
        (
            "pollwatch_sites",
            "Distinct spawn sites in the site table (not counting the overflow site)",
            None,
            scrape.sites as f64,
        ),
        (
            "pollwatch_threshold",
            "The slow-poll threshold in force",
            Some(Unit::Seconds),
            seconds(scrape.threshold_ns),
        ),
    ] {
        let gauge = ConstGauge::new(value);
        gauge.encode(encoder.encode_descriptor(
            name,
            help,
            unit.as_ref(),
            gauge.metric_type(),
        )?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant, SystemTime};

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::poll::recorder::{bucket_index, FOLD_BOUNDS_NS};
    use crate::poll::tests::{path, task};
    use crate::poll::PollKind;
    use crate::setup_check::SetupCheck;
    use crate::sites::Sites;
    use crate::stall::book::Book;
    use crate::stall::record::tests::record;
    use crate::stall::sched::SchedReading;
    use crate::state::{Lost, Subscriber};
    use crate::task::TaskFields;
    use pollwatch_judge::classify::Cause;

    /// A layer's state on a mock clock (threshold 10 ms) with one site, the one
    /// [`record`]'s stalls are at, and a registry with its collector.
    fn state() -> (Arc<State>, Arc<quanta::Mock>, Registry) {
        let (poll, mock) = path();
        let sites = Sites::new(3);
        sites.intern(&TaskFields {
            name: "worker".into(),
            file: "src/worker.rs".into(),
            line: 3,
            col: 5,
            ..TaskFields::default()
        });
        let state = Arc::new(State {
            started_at: SystemTime::now(),
            report_dir: "unused".into(),
            tick: Duration::from_millis(10),
            poll,
            sites,
            setup: SetupCheck::new(Duration::from_secs(60)),
            recent: Default::default(),
            diagnostics: Default::default(),
            subscriber: Subscriber::default(),
            book: Mutex::new(Book::new(100)),
            lost: Lost::default(),
            layer_counts_spawns: Default::default(),
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PollWatchCollector::new(state.clone())));
        (state, mock, registry)
    }

    /// Scrapes `registry` and asserts that no counter series (histogram buckets, sums and
    /// counts included) went below its value in `last`, nor vanished; keeps the new values.
    struct Scraper {
        last: BTreeMap<String, f64>,
    }

    impl Scraper {
        fn scrape(&mut self, registry: &Registry, step: &str) -> &BTreeMap<String, f64> {
            let mut text = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut text, registry).unwrap();
            let now: BTreeMap<String, f64> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    let name = &series[..series.find('{').unwrap_or(series.len())];
                    ["_total", "_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.ends_with(s))
                        .then(|| (series.to_owned(), value.parse().unwrap()))
                })
                .collect();
            for (series, before) in &self.last {
                let after = now.get(series).copied();
                assert!(
                    after.is_some_and(|a| a >= *before),
                    "{step}: {series} went from {before} to {after:?}\n{text}"
                );
            }
            self.last = now;
            &self.last
        }
    }

    fn value(scraped: &BTreeMap<String, f64>, prefix: &str) -> Option<f64> {
        scraped
            .iter()
            .find(|(series, _)| series.starts_with(prefix))
            .map(|(_, v)| *v)
    }

    #[test]
    fn no_counter_decreases_when_a_slow_poll_turns_out_to_be_a_drop() {
        let (state, mock, registry) = state();
        let mut scraper = Scraper {
            last: BTreeMap::new(),
        };
        let poll = &state.poll;
        poll.enter(1, task(7, 0));
        mock.increment(100u64);
        poll.exit(1);
        // Its last enter holds the thread 30 ms: a slow poll, as far as anyone knows yet.
        poll.enter(1, task(7, 0));
        mock.increment(30_000_000u64);
        poll.exit(1);
        let before = scraper.scrape(&registry, "slow poll").clone();
        assert_eq!(value(&before, "pollwatch_slow_polls_total"), Some(1.0));
        assert_eq!(
            value(&before, "pollwatch_poll_duration_seconds_count"),
            Some(2.0)
        );
        // The span closes: that enter was the future's drop.
        poll.close(1, task(7, 0));
        let site = PollPath::merge_site(&poll.slot_list(), SiteId::from_index(0));
        assert_eq!((site.polls(), site.drops, site.slow_polls), (1, 1, 0));
        let after = scraper.scrape(&registry, "relabelled as a drop");
        assert_eq!(after, &before, "a drop holds the thread as the poll did");
        // Later polls count on from there.
        poll.enter(2, task(8, 0));
        mock.increment(20_000_000u64);
        poll.exit(2);
        let later = scraper.scrape(&registry, "another slow poll");
        assert_eq!(value(later, "pollwatch_slow_polls_total"), Some(2.0));
        assert_eq!(
            value(later, "pollwatch_poll_duration_seconds_count"),
            Some(3.0)
        );
        assert_eq!(
            value(later, "pollwatch_poll_duration_seconds_sum"),
            Some(0.0500001)
        );
    }

    #[test]
    fn no_counter_decreases_when_a_stall_is_settled_lower_or_reclassified() {
        let (state, _mock, registry) = state();
        let mut scraper = Scraper {
            last: BTreeMap::new(),
        };
        let stall = record();
        let (key, site) = (stall.key, stall.site);
        state.book.lock().detected(stall, None, Instant::now());
        let live = scraper.scrape(&registry, "detected");
        assert_eq!(
            value(live, "pollwatch_stalls_total"),
            None,
            "counted when it ends"
        );
        // The watchdog could not read its length from the slot: it ends with an estimate.
        state.book.lock().ended(key, 40_000_000, false, None, None);
        let ended = scraper.scrape(&registry, "ended with an estimate");
        let series =
            "pollwatch_stalls_total{site=\"src/worker.rs:3:5 \\\"worker\\\"\",cause=\"file_io\"}";
        assert_eq!(ended.get(series), Some(&1.0), "{ended:#?}");
        assert_eq!(
            value(ended, "pollwatch_stall_held_seconds_total"),
            Some(0.0)
        );
        assert_eq!(value(ended, "pollwatch_call_site_stalls_total"), Some(1.0));
        // Its poll's own length, lower than the estimate (312 ms), arrives and is the one
        // added.
        state
            .book
            .lock()
            .slow_poll_ended(key, site, 31_000_000, PollKind::Poll);
        let settled = scraper.scrape(&registry, "settled lower");
        assert_eq!(
            value(settled, "pollwatch_stall_held_seconds_total"),
            Some(0.031)
        );
        state.book.lock().drained(true);
        let drained = scraper.scrape(&registry, "drained");
        assert_eq!(
            value(drained, "pollwatch_stall_held_seconds_total"),
            Some(0.031)
        );

        // A stall classified `cpu` is found descheduled while it runs: counted once, at its
        // end, under `descheduled`; `cpu` never appears and so never decreases.
        let reading = |at_ms: u64, run_ms: u64, wait_ms: u64| SchedReading {
            at_ns: at_ms * 1_000_000,
            times: pollwatch_capture::SchedTimes {
                run_ns: run_ms * 1_000_000,
                wait_ns: wait_ms * 1_000_000,
                timeslices: 0,
            },
            throttling: None,
        };
        let mut stall = record();
        stall.key.seq = 2;
        stall.look.api = None;
        stall.cause = Cause::Cpu;
        stall.looked = Cause::Cpu;
        // First read 1 ms into the poll.
        stall.started_at_ns = 4_000_000;
        stall.sched_first = Some(reading(5, 100, 50));
        let key = stall.key;
        state.book.lock().detected(stall, None, Instant::now());
        scraper.scrape(&registry, "a second stall");
        let changed = state
            .book
            .lock()
            .scheduled(key, Some(&reading(25, 104, 65)), None);
        assert_eq!(changed.map(|s| s.cause), Some(Cause::Descheduled));
        scraper.scrape(&registry, "reclassified");
        state.book.lock().ended(key, 20_000_000, true, None, None);
        let last = scraper.scrape(&registry, "ended exactly");
        let stalls: Vec<_> = last
            .iter()
            .filter(|(s, _)| s.starts_with("pollwatch_stalls_total"))
            .collect();
        assert_eq!(stalls.len(), 2, "{stalls:?}");
        assert!(stalls
            .iter()
            .all(|(s, v)| !s.contains("\"cpu\"") && **v == 1.0));
        assert_eq!(
            value(last, "pollwatch_stall_held_seconds_total"),
            Some(0.051)
        );
    }

    #[test]
    fn a_reading_of_a_half_done_relabelling_exports_the_figures_exported_before() {
        // A poll of 30 ms, read whole; then read with the poll taken away but its drop not
        // yet added, as a scrape racing the relabelling can see it.
        let mut whole = SiteTotals::default();
        whole.buckets[bucket_index(100)] += 1;
        whole.buckets[bucket_index(30_000_000)] += 1;
        whole.busy_ns = 30_000_100;
        whole.slow_polls = 1;
        let mut half = whole.clone();
        half.buckets[bucket_index(30_000_000)] -= 1;
        half.busy_ns -= 30_000_000;
        half.slow_polls = 0;
        let exported = Held::of(&whole);
        assert!(Held::of(&half).count() < exported.count());
        assert_eq!(Held::of(&half).max(exported), exported);
        // And the reading after it, whole again, is exactly what was exported.
        let mut done = half.clone();
        done.drop_buckets[fold_index(bucket_index(30_000_000))] += 1;
        done.drops = 1;
        done.drop_ns = 30_000_000;
        done.slow_drops = 1;
        assert_eq!(Held::of(&done), exported);
    }

    #[test]
    fn the_two_bound_tables_agree() {
        for (s, ns) in POLL_DURATION_BUCKETS.iter().zip(FOLD_BOUNDS_NS) {
            assert_eq!((s * NS_PER_SECOND).round() as u64, ns);
        }
    }

    fn fold_buckets(merged: &SiteTotals) -> Vec<(f64, u64)> {
        Held::of(merged).buckets()
    }

    #[test]
    fn polls_land_in_the_bucket_of_their_duration() {
        let mut merged = SiteTotals::default();
        for ns in [10_000, 40_000, 3_000_000, 20_000_000_000] {
            merged.buckets[bucket_index(ns)] += 1;
        }
        let folded = fold_buckets(&merged);
        assert_eq!(folded.len(), 18);
        assert_eq!(folded[0], (0.000_05, 2));
        assert_eq!(folded[6], (0.005, 1));
        assert_eq!(folded[17], (f64::INFINITY, 1));
        assert_eq!(folded.iter().map(|b| b.1).sum::<u64>(), 4);
    }

    #[test]
    fn values_near_a_bound_are_off_by_at_most_one_recorder_bucket() {
        for le in FOLD_BOUNDS_NS {
            let mut merged = SiteTotals::default();
            merged.buckets[bucket_index(le * 97 / 100)] += 1;
            merged.buckets[bucket_index(le * 103 / 100)] += 1;
            let folded = fold_buckets(&merged);
            let at = FOLD_BOUNDS_NS.iter().position(|&b| b == le).unwrap();
            assert_eq!(folded[at].1, 1, "le {le}");
        }
    }
}

//! The `prometheus_client` collector: pollwatch's metric families ([`super::families`]),
//! read at each scrape and encoded as Prometheus families.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::families::{Family, Kind, Reader, Value};
use crate::state::State;

/// pollwatch's metrics, computed from a layer's state on every scrape.
#[derive(Debug)]
pub(crate) struct PollWatchCollector {
    reader: Reader,
}

impl PollWatchCollector {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self {
            reader: Reader::new(state),
        }
    }
}

impl Collector for PollWatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for family in self.reader.read() {
            encode(&mut encoder, &family)?;
        }
        Ok(())
    }
}

fn encode(encoder: &mut DescriptorEncoder, family: &Family) -> fmt::Result {
    let unit = family.seconds.then_some(Unit::Seconds);
    let kind = match family.kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Histogram => MetricType::Histogram,
    };
    let mut metric = encoder.encode_descriptor(family.name, family.help, unit.as_ref(), kind)?;
    if let [series] = family.series.as_slice() {
        if series.labels.is_empty() {
            // A family of one unlabelled series (a gauge): written without braces.
            return value(family.kind, &series.value, metric);
        }
    }
    for series in &family.series {
        let labels: Vec<(&str, &str)> = series
            .labels
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        value(family.kind, &series.value, metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one series' value as its family's kind.
fn value(kind: Kind, value: &Value, encoder: MetricEncoder) -> fmt::Result {
    match (kind, value) {
        (Kind::Counter, Value::Int(count)) => ConstCounter::new(*count).encode(encoder),
        (Kind::Counter, Value::Float(value)) => ConstCounter::new(*value).encode(encoder),
        (Kind::Gauge, Value::Float(value)) => ConstGauge::new(*value).encode(encoder),
        (Kind::Histogram, Value::Histogram(held)) => {
            let mut encoder = encoder;
            encoder.encode_histogram::<NoLabelSet>(
                held.sum_seconds(),
                held.count(),
                &held.buckets(),
                None,
            )
        }
        // Each family holds values of its own kind.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant, SystemTime};

    use prometheus_client::registry::Registry;

    use parking_lot::Mutex;

    use super::*;
    use crate::config::POLL_DURATION_BUCKETS;
    use crate::metrics::families::*;
    use crate::poll::recorder::{bucket_index, FOLD_BOUNDS_NS};
    use crate::poll::recorder::{fold_index, SiteTotals};
    use crate::poll::tests::{path, task};
    use crate::poll::PollKind;
    use crate::poll::PollPath;
    use crate::setup_check::SetupCheck;
    use crate::sites::SiteId;
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
            assert_eq!((s * 1e9).round() as u64, ns);
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

//! The collector: reads pollwatch's live state at scrape time and encodes it as Prometheus
//! metric families. Nothing is added to the poll path; a scrape costs what a
//! [`crate::Handle::report`] costs without the hdrhistograms (merging every thread's recorders
//! per site, one short lock of the stall book).

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use pollwatch_report::Dropped;

use crate::poll::recorder::{bucket_value, SiteTotals};
use crate::poll::thread::ThreadSlot;
use crate::poll::PollPath;
use crate::snapshot;
use crate::stall::book::SiteStalls;
use crate::state::State;

/// The upper bounds (`le`) of the poll-duration histogram's buckets, in seconds; `+Inf` follows.
pub const POLL_DURATION_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// The same bounds in nanoseconds.
const BUCKETS_NS: [u64; 17] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

const NS_PER_SECOND: f64 = 1e9;

/// pollwatch's metrics, computed from a layer's state on every scrape.
#[derive(Debug)]
pub(crate) struct PollWatchCollector {
    state: Arc<State>,
}

impl PollWatchCollector {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

/// What one site contributes to a scrape.
struct SiteRow {
    label: String,
    merged: SiteTotals,
    stalls: Option<SiteStalls>,
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
    fn read(state: &State) -> Self {
        let slots = state.poll.slot_list();
        let all_sites = state.sites.all();
        // The book's figures, copied out under its lock; the merging happens without it.
        let book = state.book.lock();
        let figures: Vec<Option<SiteStalls>> = all_sites
            .iter()
            .map(|(id, _)| book.site(*id).cloned())
            .collect();
        let dropped = snapshot::dropped(state, &slots, &book);
        drop(book);
        let mut rows = Vec::new();
        for ((id, site), stalls) in all_sites.iter().zip(figures) {
            let merged = PollPath::merge_site(&slots, *id);
            if merged.polls() == 0 && stalls.is_none() {
                continue;
            }
            rows.push(SiteRow {
                label: site.label.clone(),
                merged,
                stalls,
            });
        }
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
        self.rows.iter().filter(|r| r.merged.polls() > 0)
    }
}

/// A merged site's buckets folded into the Prometheus buckets (not cumulative; the encoder
/// sums them), `+Inf` last. A recorder bucket is counted where its midpoint falls: it is at
/// most 1/32 of its value wide, so a poll within ~3% of a bound may land on the other side.
pub(crate) fn fold_buckets(merged: &SiteTotals) -> Vec<(f64, u64)> {
    let mut counts = [0u64; BUCKETS_NS.len() + 1];
    for (bucket, &count) in merged.buckets.iter().enumerate() {
        if count > 0 {
            let value = bucket_value(bucket);
            counts[BUCKETS_NS.partition_point(|&le| le < value)] += count;
        }
    }
    POLL_DURATION_BUCKETS
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .zip(counts)
        .collect()
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
        let scrape = Scrape::read(&self.state);
        encode_poll_durations(&mut encoder, &scrape)?;
        encode_slow_polls(&mut encoder, &scrape)?;
        encode_stalls(&mut encoder, &scrape)?;
        encode_call_sites(&mut encoder, &scrape)?;
        encode_dropped(&mut encoder, &scrape.dropped)?;
        encode_gauges(&mut encoder, &scrape)
    }
}

fn encode_poll_durations(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_poll_duration",
        "How long each task poll held its thread, by spawn site (bucket bounds are exact \
         to within 1/32 of a value)",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for row in scrape.polled() {
        metric
            .encode_family(&[("site", row.label.as_str())])?
            .encode_histogram::<NoLabelSet>(
                seconds(row.merged.busy_ns),
                row.merged.polls(),
                &fold_buckets(&row.merged),
                None,
            )?;
    }
    Ok(())
}

fn encode_slow_polls(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_slow_polls",
        "Polls that held their thread longer than the threshold, by spawn site",
        None,
        MetricType::Counter,
    )?;
    for row in scrape.polled() {
        counter(row.merged.slow_polls)
            .encode(metric.encode_family(&[("site", row.label.as_str())])?)?;
    }
    Ok(())
}

fn encode_stalls(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_stalls",
        "Polls the watchdog caught holding their thread past the threshold, by spawn site \
         and cause",
        None,
        MetricType::Counter,
    )?;
    for row in &scrape.rows {
        for (cause, &count) in row.stalls.iter().flat_map(|s| &s.causes) {
            counter(count).encode(
                metric.encode_family(&[("site", row.label.as_str()), ("cause", cause.as_str())])?,
            )?;
        }
    }
    let mut metric = encoder.encode_descriptor(
        "pollwatch_stall_held",
        "Total time the stalls that ended held their thread, by spawn site",
        Some(&Unit::Seconds),
        MetricType::Counter,
    )?;
    for row in &scrape.rows {
        if let Some(stalls) = &row.stalls {
            ConstCounter::new(seconds(stalls.held_ns))
                .encode(metric.encode_family(&[("site", row.label.as_str())])?)?;
        }
    }
    Ok(())
}

fn encode_call_sites(encoder: &mut DescriptorEncoder, scrape: &Scrape) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        "pollwatch_call_site_stalls",
        "Stalls by blocking call site in the application's code (at most 32 per spawn \
         site; the rest as call_site=\"other\")",
        None,
        MetricType::Counter,
    )?;
    for row in &scrape.rows {
        for call in row.stalls.iter().flat_map(SiteStalls::call_sites_report) {
            counter(call.count).encode(metric.encode_family(&[
                ("site", row.label.as_str()),
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
    use super::*;
    use crate::poll::recorder::bucket_index;

    #[test]
    fn the_two_bound_tables_agree() {
        for (s, ns) in POLL_DURATION_BUCKETS.iter().zip(BUCKETS_NS) {
            assert_eq!((s * NS_PER_SECOND).round() as u64, ns);
        }
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
        for le in BUCKETS_NS {
            let mut merged = SiteTotals::default();
            merged.buckets[bucket_index(le * 97 / 100)] += 1;
            merged.buckets[bucket_index(le * 103 / 100)] += 1;
            let folded = fold_buckets(&merged);
            let at = BUCKETS_NS.iter().position(|&b| b == le).unwrap();
            assert_eq!(folded[at].1, 1, "le {le}");
        }
    }
}

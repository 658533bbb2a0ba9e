//! pollwatch's metrics through the `metrics` facade (feature `metrics`): whatever recorder the
//! service installed (`metrics-exporter-prometheus`, an OpenTelemetry or StatsD bridge, ...)
//! receives the families `/metrics` serves, under the same names, every second from a
//! pollwatch thread the [`crate::Guard`] keeps.
//!
//! The facade has integer counters, gauges and histograms that take one value at a time:
//!
//! - a counter of events is a counter, set to pollwatch's count (`Counter::absolute`);
//! - a counter of seconds (`pollwatch_stall_held_seconds_total`) is a gauge of the same name
//!   (the facade's counters count whole units); `rate()` reads it as it reads a counter;
//! - a gauge is a gauge;
//! - the poll-time histogram is fed, at each publication, the polls each bucket gained since
//!   the last one (`Histogram::record_many`), at a value inside that bucket chosen so that
//!   their sum is the time they took. A recorder given the same bucket bounds
//!   ([`POLL_DURATION_BUCKETS`](crate::config::POLL_DURATION_BUCKETS)) then holds the same
//!   buckets, count and sum as `/metrics` (the sum as well while no poll is beyond the last
//!   bound).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::families::{Family, Held, Kind, Reader, Value};
use crate::background::{self, Joiner, Stopper};
use crate::guarded;
use crate::state::State;

/// How often pollwatch's thread publishes.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The publishing thread a [`crate::Guard`] keeps, stopped when it is dropped.
#[derive(Debug)]
pub(crate) struct Facade {
    state: Arc<State>,
    publisher: Arc<Mutex<Publisher>>,
    stopper: Arc<Stopper>,
    thread: Joiner,
}

impl Facade {
    /// Starts publishing `state`'s metrics every [`PUBLISH_EVERY`].
    pub(crate) fn start(state: &Arc<State>) -> Self {
        let publisher = Arc::new(Mutex::new(Publisher::new(state.clone())));
        let stopper = Arc::new(Stopper::default());
        let thread = background::spawn("pollwatch-metrics-facade", {
            let (state, publisher, stopper) = (state.clone(), publisher.clone(), stopper.clone());
            move || {
                while !stopper.wait(PUBLISH_EVERY) {
                    publish(&state, &publisher);
                }
            }
        });
        Self {
            state: state.clone(),
            publisher,
            stopper,
            thread: Joiner::new(thread),
        }
    }

    /// Publishes now.
    pub(crate) fn publish_now(&self) {
        publish(&self.state, &self.publisher);
    }

    /// Stops the thread, then publishes the last figures.
    pub(crate) fn stop(&self) {
        self.stopper.stop();
        self.thread.join();
        self.publish_now();
    }
}

fn publish(state: &State, publisher: &Mutex<Publisher>) {
    guarded::run(
        state,
        "publishing the metrics through the metrics facade",
        || {
            publisher.lock().publish();
        },
    );
}

/// Publishes the families into the installed recorder, remembering what each histogram
/// series had at the last publication.
#[derive(Debug)]
struct Publisher {
    reader: Reader,
    described: bool,
    histograms: HashMap<SeriesKey, Held>,
}

/// A series: its family's name and its labels.
type SeriesKey = (String, Vec<(&'static str, String)>);

impl Publisher {
    fn new(state: Arc<State>) -> Self {
        Self {
            reader: Reader::new(state),
            described: false,
            histograms: HashMap::new(),
        }
    }

    fn publish(&mut self) {
        let families = self.reader.read();
        if !self.described {
            self.described = true;
            families.iter().for_each(describe);
        }
        for family in &families {
            let name = family.full_name();
            for series in &family.series {
                let labels: Vec<metrics::Label> = series
                    .labels
                    .iter()
                    .map(|(key, value)| metrics::Label::new(*key, value.clone()))
                    .collect();
                match (family.kind, &series.value) {
                    (Kind::Counter, Value::Int(count)) => {
                        metrics::counter!(name.clone(), labels).absolute(*count);
                    }
                    (_, Value::Float(value)) => metrics::gauge!(name.clone(), labels).set(*value),
                    (Kind::Histogram, Value::Histogram(held)) => {
                        let key = (name.clone(), series.labels.clone());
                        let before = self.histograms.get(&key).copied().unwrap_or_default();
                        let histogram = metrics::histogram!(name.clone(), labels);
                        for (value, count) in gained(&before, held) {
                            histogram.record_many(value, count);
                        }
                        self.histograms.insert(key, *held);
                    }
                    // Each family holds values of its own kind.
                    _ => {}
                }
            }
        }
    }
}

/// Describes a family to the recorder: its help, and its unit.
fn describe(family: &Family) {
    let name = family.full_name();
    let unit = if family.seconds {
        metrics::Unit::Seconds
    } else {
        metrics::Unit::Count
    };
    match family.kind {
        Kind::Counter if !family.seconds => metrics::describe_counter!(name, unit, family.help),
        Kind::Histogram => metrics::describe_histogram!(name, unit, family.help),
        _ => metrics::describe_gauge!(name, unit, family.help),
    }
}

/// What a histogram gained from `before` to `now`, as `(seconds, polls)` to record: the polls
/// each bucket gained, at one value inside it (above its lower bound, at most its upper one),
/// the same fraction of the way through every bucket, so that they sum to the time gained.
/// Beyond the last bound, a bucket is taken to reach twice it.
fn gained(before: &Held, now: &Held) -> Vec<(f64, usize)> {
    let mut lower = 0.0;
    let buckets: Vec<(f64, f64, u64)> = now
        .buckets()
        .into_iter()
        .zip(before.buckets())
        .map(|((le, now), (_, before))| {
            let from = lower;
            let to = if le.is_finite() { le } else { from * 2.0 };
            lower = le;
            (from, to, now.saturating_sub(before))
        })
        .filter(|&(_, _, count)| count > 0)
        .collect();
    let sum = now.sum_seconds() - before.sum_seconds();
    let floor: f64 = buckets.iter().map(|&(from, _, n)| from * n as f64).sum();
    let width: f64 = buckets
        .iter()
        .map(|&(from, to, n)| (to - from) * n as f64)
        .sum();
    let through = if width > 0.0 {
        ((sum - floor) / width).clamp(0.0, 1.0)
    } else {
        1.0
    };
    buckets
        .into_iter()
        .map(|(from, to, count)| {
            let mut value = from + through * (to - from);
            if value <= from {
                value = from + (to - from) * 1e-6;
            }
            (value.min(to), usize::try_from(count).unwrap_or(usize::MAX))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::POLL_DURATION_BUCKETS;

    /// A histogram with `counts` polls in the buckets at those indexes, summing `sum` seconds.
    fn held(counts: &[(usize, u64)], sum: f64) -> Held {
        let mut held = Held::default();
        for &(at, count) in counts {
            for cumulative in &mut held.cumulative[at..] {
                *cumulative += count;
            }
        }
        held.sum_ns = (sum * 1e9) as u64;
        held
    }

    #[test]
    fn what_a_histogram_gained_lands_in_its_buckets_with_its_sum() {
        let (a, b) = (POLL_DURATION_BUCKETS[3], POLL_DURATION_BUCKETS[4]);
        let before = held(&[(4, 2)], 2.0 * b);
        // Three more polls in bucket 4, one in bucket 0: their time between the bounds.
        let gained_sum = 3.0 * (a + b) / 2.0 + POLL_DURATION_BUCKETS[0] / 2.0;
        let now = held(&[(0, 1), (4, 5)], 2.0 * b + gained_sum);
        let replay = gained(&before, &now);
        assert_eq!(replay.len(), 2, "{replay:?}");
        let (first, second) = (replay[0], replay[1]);
        assert_eq!(first.1, 1);
        assert!(
            first.0 > 0.0 && first.0 <= POLL_DURATION_BUCKETS[0],
            "{first:?}"
        );
        assert_eq!(second.1, 3);
        assert!(second.0 > a && second.0 <= b, "{second:?}");
        let sum: f64 = replay.iter().map(|&(v, n)| v * n as f64).sum();
        assert!(
            (sum - gained_sum).abs() < 1e-8,
            "{sum} against {gained_sum}"
        );
    }

    #[test]
    fn nothing_gained_records_nothing() {
        let now = held(&[(2, 7)], 1.0);
        assert_eq!(gained(&now, &now), Vec::new());
    }
}

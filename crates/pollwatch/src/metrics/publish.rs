//! Publishing pollwatch's families from a pollwatch thread the [`crate::Guard`] keeps, every
//! second and once more when it is dropped, into the sinks the features chose: the `metrics`
//! facade's recorder (feature `metrics`, [`super::facade`]) and OpenTelemetry's global meter
//! provider (feature `opentelemetry`, [`super::otel`]). Each reading is made once and given
//! to every sink.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::families::{Family, Held, Reader};
use crate::background::{self, Joiner, Stopper};
use crate::guarded;
use crate::state::State;

/// How often pollwatch's thread publishes.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// A series: its family's name and its labels.
pub(crate) type SeriesKey = (String, Vec<(&'static str, String)>);

/// Where published families go.
pub(crate) trait Sink: Send + std::fmt::Debug {
    fn publish(&mut self, families: &[Family]);
}

/// The publishing thread a [`crate::Guard`] keeps, stopped when it is dropped.
#[derive(Debug)]
pub(crate) struct Publishing {
    state: Arc<State>,
    sinks: Arc<Mutex<Sinks>>,
    stopper: Arc<Stopper>,
    thread: Joiner,
}

/// The reading, and where it goes.
#[derive(Debug)]
struct Sinks {
    reader: Reader,
    sinks: Vec<Box<dyn Sink>>,
}

impl Publishing {
    /// Starts publishing `state`'s metrics every [`PUBLISH_EVERY`] into the features' sinks.
    pub(crate) fn start(state: &Arc<State>) -> Self {
        let sinks: Vec<Box<dyn Sink>> = vec![
            #[cfg(feature = "metrics")]
            Box::<super::facade::MetricsFacade>::default(),
            #[cfg(feature = "opentelemetry")]
            Box::new(super::otel::OpenTelemetry::new()),
        ];
        let sinks = Arc::new(Mutex::new(Sinks {
            reader: Reader::new(state.clone()),
            sinks,
        }));
        let stopper = Arc::new(Stopper::default());
        let thread = background::spawn("pollwatch-publish", {
            let (state, sinks, stopper) = (state.clone(), sinks.clone(), stopper.clone());
            move || {
                while !stopper.wait(PUBLISH_EVERY) {
                    publish(&state, &sinks);
                }
            }
        });
        Self {
            state: state.clone(),
            sinks,
            stopper,
            thread: Joiner::new(thread),
        }
    }

    /// Publishes now.
    pub(crate) fn publish_now(&self) {
        publish(&self.state, &self.sinks);
    }

    /// Stops the thread, then publishes the last figures.
    pub(crate) fn stop(&self) {
        self.stopper.stop();
        self.thread.join();
        self.publish_now();
    }
}

fn publish(state: &State, sinks: &Mutex<Sinks>) {
    guarded::run(state, "publishing the metrics", || {
        let mut sinks = sinks.lock();
        let families = sinks.reader.read();
        for sink in &mut sinks.sinks {
            sink.publish(&families);
        }
    });
}

/// What a histogram gained from `before` to `now`, as `(seconds, polls)` to record: the polls
/// each bucket gained, at one value inside it (above its lower bound, at most its upper one),
/// the same fraction of the way through every bucket, so that they sum to the time gained.
/// Beyond the last bound, a bucket is taken to reach twice it.
pub(crate) fn gained(before: &Held, now: &Held) -> Vec<(f64, usize)> {
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
    use crate::metrics::families::Held;

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

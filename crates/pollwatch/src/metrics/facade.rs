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

use super::families::{Family, Held, Kind, Value};
use super::publish::{gained, SeriesKey, Sink};

/// Publishes the families into the installed `metrics` recorder, remembering what each
/// histogram series had at the last publication.
#[derive(Debug, Default)]
pub(crate) struct MetricsFacade {
    described: bool,
    histograms: HashMap<SeriesKey, Held>,
}

impl Sink for MetricsFacade {
    fn publish(&mut self, families: &[Family]) {
        if !self.described {
            self.described = true;
            families.iter().for_each(describe);
        }
        for family in families {
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

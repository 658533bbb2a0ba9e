//! pollwatch's metrics into OpenTelemetry (feature `opentelemetry`): the meter `pollwatch` of
//! the global meter provider the service set (`opentelemetry::global::set_meter_provider`)
//! receives the families `/metrics` serves, every second. Each family is the instrument of
//! its kind with the family's base name and unit (`s` for seconds, `1` for counts), which an
//! exporter to Prometheus suffixes back to the names `/metrics` serves
//! (`pollwatch_poll_duration` in `s` as `pollwatch_poll_duration_seconds`, the counter
//! `pollwatch_stalls` as `pollwatch_stalls_total`):
//!
//! - a counter is a counter (`u64`, or `f64` in seconds) that adds what pollwatch's count
//!   gained since the last publication;
//! - a gauge is a gauge (`f64`);
//! - the poll-time histogram is a histogram with the bounds
//!   [`POLL_DURATION_BUCKETS`](crate::config::POLL_DURATION_BUCKETS), fed each poll gained
//!   since the last publication as one value inside its bucket (the values chosen so that
//!   they sum to the time the polls took): its buckets, count and sum are those `/metrics`
//!   serves. OpenTelemetry's histograms take one value at a time, so this costs one call per
//!   poll on pollwatch's thread.

use std::collections::HashMap;

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use opentelemetry::KeyValue;

use super::families::{Family, Held, Kind, Value};
use super::publish::{gained, SeriesKey, Sink};
use crate::config::POLL_DURATION_BUCKETS;

/// One family's instrument.
#[derive(Debug)]
enum Instrument {
    Count(Counter<u64>),
    Seconds(Counter<f64>),
    Gauge(Gauge<f64>),
    Histogram(Histogram<f64>),
}

/// Publishes the families into the global meter provider's `pollwatch` meter, remembering
/// what each series had at the last publication.
#[derive(Debug)]
pub(crate) struct OpenTelemetry {
    meter: Meter,
    instruments: HashMap<&'static str, Instrument>,
    counts: HashMap<SeriesKey, u64>,
    seconds: HashMap<SeriesKey, f64>,
    histograms: HashMap<SeriesKey, Held>,
}

impl OpenTelemetry {
    pub(crate) fn new() -> Self {
        Self {
            meter: opentelemetry::global::meter("pollwatch"),
            instruments: HashMap::new(),
            counts: HashMap::new(),
            seconds: HashMap::new(),
            histograms: HashMap::new(),
        }
    }

    /// The family's instrument, built at its first publication.
    fn instrument(&mut self, family: &Family) -> &Instrument {
        let meter = &self.meter;
        self.instruments.entry(family.name).or_insert_with(|| {
            let unit = if family.seconds { "s" } else { "1" };
            match (family.kind, family.seconds) {
                (Kind::Counter, false) => Instrument::Count(
                    meter
                        .u64_counter(family.name)
                        .with_unit(unit)
                        .with_description(family.help)
                        .build(),
                ),
                (Kind::Counter, true) => Instrument::Seconds(
                    meter
                        .f64_counter(family.name)
                        .with_unit(unit)
                        .with_description(family.help)
                        .build(),
                ),
                (Kind::Gauge, _) => Instrument::Gauge(
                    meter
                        .f64_gauge(family.name)
                        .with_unit(unit)
                        .with_description(family.help)
                        .build(),
                ),
                (Kind::Histogram, _) => Instrument::Histogram(
                    meter
                        .f64_histogram(family.name)
                        .with_unit(unit)
                        .with_description(family.help)
                        .with_boundaries(POLL_DURATION_BUCKETS.to_vec())
                        .build(),
                ),
            }
        })
    }
}

impl Sink for OpenTelemetry {
    fn publish(&mut self, families: &[Family]) {
        for family in families {
            for series in &family.series {
                let key: SeriesKey = (family.name.to_owned(), series.labels.clone());
                let attributes: Vec<KeyValue> = series
                    .labels
                    .iter()
                    .map(|(name, value)| KeyValue::new(*name, value.clone()))
                    .collect();
                let before_count = self.counts.get(&key).copied().unwrap_or(0);
                let before_seconds = self.seconds.get(&key).copied().unwrap_or(0.0);
                let before_held = self.histograms.get(&key).copied().unwrap_or_default();
                match (self.instrument(family), &series.value) {
                    (Instrument::Count(counter), Value::Int(count)) => {
                        counter.add(count.saturating_sub(before_count), &attributes);
                        self.counts.insert(key, *count);
                    }
                    (Instrument::Seconds(counter), Value::Float(seconds)) => {
                        counter.add((seconds - before_seconds).max(0.0), &attributes);
                        self.seconds.insert(key, *seconds);
                    }
                    (Instrument::Gauge(gauge), Value::Float(value)) => {
                        gauge.record(*value, &attributes);
                    }
                    (Instrument::Histogram(histogram), Value::Histogram(held)) => {
                        for (value, count) in gained(&before_held, held) {
                            for _ in 0..count {
                                histogram.record(value, &attributes);
                            }
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

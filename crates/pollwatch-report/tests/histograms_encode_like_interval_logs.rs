//! Site histograms are stored as the base64 text of an HdrHistogram interval log line.

use std::time::Duration;

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::V2DeflateSerializer;
use pollwatch_report::histogram::{self, HIGHEST_NS, LOWEST_NS};
use pollwatch_report::{Percentiles, ReadError};

fn recorded(values: &[u64]) -> histogram::Histogram<u64> {
    let mut h = histogram::new_histogram();
    for &v in values {
        h.record(v).unwrap();
    }
    h
}

#[test]
fn encoding_is_the_text_of_an_interval_log_line() {
    let h = recorded(&[1_500, 20_000, 20_000, 3_000_000, 4_000_000_000]);
    let mut log = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .begin_log_with(&mut log, &mut serializer)
        .unwrap()
        .write_histogram(&h, Duration::ZERO, Duration::from_secs(1), None)
        .unwrap();
    let from_log = IntervalLogIterator::new(&log)
        .find_map(|entry| match entry.unwrap() {
            LogEntry::Interval(h) => Some(h.encoded_histogram().to_owned()),
            _ => None,
        })
        .unwrap();
    assert_eq!(histogram::encode(&h), from_log);
}

#[test]
fn empty_histogram_encodes_as_empty_string_and_back() {
    let h = histogram::new_histogram();
    assert_eq!(histogram::encode(&h), "");
    let back = histogram::decode("").unwrap();
    assert_eq!(back.len(), 0);
    assert_eq!(back.high(), HIGHEST_NS);
    assert_eq!(histogram::percentiles(&back), Percentiles::default());
}

#[test]
fn values_below_one_microsecond_are_recordable() {
    let h = recorded(&[1, 500, 999]);
    assert_eq!(h.len(), 3);
    // Resolution at the bottom is the power of two below LOWEST_NS (512 ns).
    assert!(h.max() < 2 * LOWEST_NS, "{}", h.max());
    assert_eq!(h.count_between(0, 511), 2);
    let back = histogram::decode(&histogram::encode(&h)).unwrap();
    assert_eq!(back.len(), 3);
}

#[test]
fn percentiles_come_from_the_histogram() {
    let values: Vec<u64> = (1..=1_000).map(|i| i * 1_000_000).collect();
    let p = histogram::percentiles(&recorded(&values));
    // Three significant digits: each within 0.1% of the exact percentile.
    let near = |got: u64, want: u64| got.abs_diff(want) * 1_000 <= want;
    assert!(near(p.p50_ns, 500_000_000), "{p:?}");
    assert!(near(p.p90_ns, 900_000_000), "{p:?}");
    assert!(near(p.p99_ns, 990_000_000), "{p:?}");
    assert!(near(p.p999_ns, 999_000_000), "{p:?}");
}

#[test]
fn decode_rejects_text_that_is_not_base64() {
    let err = histogram::decode("not base64 at all!").unwrap_err();
    match err {
        ReadError::BadHistogram { site, reason } => {
            assert!(site.is_empty());
            assert!(reason.contains("base64"), "{reason}");
        }
        other => panic!("expected BadHistogram, got {other:?}"),
    }
}

#[test]
fn decode_rejects_every_truncation_of_a_valid_encoding() {
    let text = histogram::encode(&recorded(&[1_500, 20_000, 3_000_000, 4_000_000_000]));
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &text).unwrap();
    for cut in 1..bytes.len() {
        let short =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes[..cut]);
        assert!(
            histogram::decode(&short).is_err(),
            "cut at byte {cut} decoded"
        );
    }
}

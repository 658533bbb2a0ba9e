//! Whatever text or bytes they are given, every report reader returns `Ok` or `Err`, never
//! panics, and never allocates far more than its input: `json::from_str` and `json::read`
//! (`report.json`, a file or a report directory), `hlog::from_str` and `hlog::read`
//! (`report.hlog`), `hlog::decode_tag` and `histogram::decode`. Inputs are random text and
//! bytes, and valid files mutated knowing their structure: cut short, bytes overwritten, lines
//! dropped, duplicated (so keys repeat), swapped and joined, fields given extreme numbers or
//! values of the wrong type, arrays grown, JSON nested deeply, histogram headers claiming
//! extreme ranges. What reads is then used as the `pollwatch` command uses it (rendered,
//! checked, percentiles taken), which must not panic either.
//!
//! Each test runs proptest's default number of cases (256), or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test --release -p pollwatch-report --test parsers_never_panic`.

mod support;

#[path = "parsers_never_panic/mutate.rs"]
mod mutate;

use std::path::Path;

use mutate::{base64, compressed, v2};
use pollwatch_report::{call_sites, histogram, hlog, json, text, Report};
use proptest::prelude::*;

fn valid_report_text() -> String {
    json::to_string(&support::two_site_report())
}

const VALID_LOG: &str = include_str!("../../pollwatch-cli/tests/data/after/report.hlog");
const VALID_REPORT: &str = include_str!("../../pollwatch-cli/tests/data/after/report.json");

/// What the `pollwatch` command does with a report it has read.
fn use_report(report: &Report) {
    let _ = text::render(report, 20);
    let _ = report.inconsistencies();
    let _ = call_sites::group(report, |_| true);
    for site in &report.sites {
        if let Ok(h) = histogram::decode(&site.histogram) {
            use_histogram(&h);
        }
    }
}

/// What the `pollwatch` command does with a histogram it has read.
fn use_histogram(h: &histogram::Histogram<u64>) {
    let _ = histogram::percentiles(h);
    if !h.is_empty() {
        let _ = (h.min(), h.max(), h.mean(), h.value_at_quantile(0.999));
    }
    let _ = h.iter_recorded().count();
}

/// What the `pollwatch intervals` command does with a log it has read.
fn use_log(log: &hlog::Log) {
    let _ = log.sites();
    for i in &log.intervals {
        use_histogram(&i.histogram);
    }
}

fn parse_report(text: &str) {
    if let Ok(report) = json::from_str(text) {
        use_report(&report);
    }
}

fn parse_log(text: &str) {
    if let Ok(log) = hlog::from_str(text) {
        use_log(&log);
    }
}

/// Writes `bytes` as `report.json` and `report.hlog` in `dir`, and reads them both as files
/// and through the directory, as the command does with the path it is given.
fn read_files(dir: &Path, bytes: &[u8]) {
    for file in [json::FILE, hlog::FILE] {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    for path in [dir.to_path_buf(), dir.join(json::FILE)] {
        if let Ok(report) = json::read(&path) {
            use_report(&report);
        }
    }
    for path in [dir.to_path_buf(), dir.join(hlog::FILE)] {
        if let Ok(log) = hlog::read(&path) {
            use_log(&log);
        }
    }
}

/// The interval lines of the valid log.
fn interval_lines() -> Vec<&'static str> {
    VALID_LOG
        .lines()
        .filter(|l| !l.starts_with(['#', '"']))
        .collect()
}

// report.json

proptest! {
    #[test]
    fn report_parser_survives_random_text(text in any::<String>()) {
        parse_report(&text);
    }

    #[test]
    fn report_parser_rejects_every_truncation(cut in 0usize..10_000) {
        let text = valid_report_text();
        let cut = cut % (text.len() - 2);
        if text.is_char_boundary(cut) {
            prop_assert!(json::from_str(&text[..cut]).is_err());
        }
    }

    #[test]
    fn report_parser_survives_a_corrupted_byte(at in 0usize..10_000, byte in any::<u8>()) {
        let mut bytes = valid_report_text().into_bytes();
        let at = at % bytes.len();
        bytes[at] = byte;
        parse_report(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn report_parser_survives_odd_values_anywhere(
        real in any::<bool>(),
        edits in proptest::collection::vec(mutate::json_edit(), 1..4),
    ) {
        let text = if real { VALID_REPORT.to_owned() } else { valid_report_text() };
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        for edit in &edits {
            mutate::apply(&mut value, edit);
        }
        parse_report(&serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn report_parser_survives_extreme_numbers(at in any::<usize>(), number in mutate::extreme_number()) {
        // Overwrite one number of the report's text with another, keeping everything else.
        let text = VALID_REPORT;
        let starts: Vec<usize> = text
            .char_indices()
            .filter(|&(i, c)| c.is_ascii_digit() && !text[..i].ends_with(|p: char| p.is_ascii_digit()))
            .map(|(i, _)| i)
            .collect();
        let start = starts[at % starts.len()];
        let end = text[start..].find(|c: char| !c.is_ascii_digit()).map_or(text.len(), |n| start + n);
        parse_report(&format!("{}{number}{}", &text[..start], &text[end..]));
    }

    #[test]
    fn report_parser_survives_spliced_lines(edits in proptest::collection::vec(mutate::line_edit(), 1..6)) {
        // Duplicated lines repeat keys; dropped ones leave keys missing.
        parse_report(&mutate::splice_lines(VALID_REPORT, &edits));
    }

    #[test]
    fn report_parser_survives_deep_nesting(depth in 1usize..20_000, open in "[\\[{]", closed in any::<bool>()) {
        let (open, close) = if open == "[" { ("[", "]") } else { ("{\"a\":", "}") };
        let mut text = format!("{{\"format\":\"pollwatch-report\",\"version\":1,\"x\":{}", open.repeat(depth));
        if closed {
            text.push_str(&format!("0{}}}", close.repeat(depth)));
        }
        prop_assert!(json::from_str(&text).is_err());
    }

    #[test]
    fn report_files_and_directories_survive_any_bytes(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| {
                let mut v = VALID_REPORT.as_bytes().to_vec();
                let at = at % v.len();
                v[at] = b;
                v
            }),
        ],
    ) {
        let dir = support::fresh_dir("fuzz-report-files");
        read_files(&dir, &bytes);
    }
}

// report.hlog

proptest! {
    #[test]
    fn log_parser_survives_random_text(text in any::<String>()) {
        parse_log(&text);
    }

    #[test]
    fn log_parser_survives_log_like_text(text in "([#\"]|Tag=|[0-9]{0,3}\\.[0-9]{0,3},|HISTFAAAA|[%,.\n ])*") {
        parse_log(&text);
    }

    #[test]
    fn log_parser_survives_truncation_and_corruption(
        cut in 0usize..100_000,
        corruptions in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = VALID_LOG.as_bytes().to_vec();
        bytes.truncate(cut % (bytes.len() + 1));
        for (at, byte) in corruptions {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
        }
        parse_log(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn log_parser_survives_spliced_lines(edits in proptest::collection::vec(mutate::line_edit(), 1..6)) {
        parse_log(&mutate::splice_lines(VALID_LOG, &edits));
    }

    #[test]
    fn log_parser_survives_extreme_fields(
        line in any::<usize>(),
        start in mutate::extreme_timestamp(),
        length in mutate::extreme_timestamp(),
        max in mutate::extreme_number(),
        tag in prop_oneof![Just(None), any::<String>().prop_map(Some), "(%[0-9A-Fa-fG]{0,2}|[a-z])*".prop_map(Some)],
    ) {
        let lines = interval_lines();
        let fields: Vec<&str> = lines[line % lines.len()].rsplitn(2, ',').collect();
        let histogram = fields[0];
        let tag = tag.map(|t| format!("Tag={t},")).unwrap_or_default();
        let text = format!("{}{tag}{start},{length},{max},{histogram}\n", &VALID_LOG[..VALID_LOG.find("Tag=").unwrap()]);
        parse_log(&text);
    }

    #[test]
    fn log_parser_survives_any_histogram_field(encoded in histogram_text()) {
        parse_log(&format!("#[StartTime: 1.000 (seconds since epoch)]\n0.000,1.000,0.001,{encoded}\nTag=a,0.000,1.000,0.001,{encoded}\n"));
    }

    #[test]
    fn tag_decoder_survives_random_text(tag in prop_oneof![any::<String>(), "(%[0-9A-Fa-f]{0,2}|.)*"]) {
        if let Ok(label) = hlog::decode_tag(&tag) {
            prop_assert_eq!(hlog::decode_tag(&hlog::encode_tag(&label)), Ok(label));
        }
    }
}

// Histograms (base64 V2)

/// A header's fields: significant digits, lowest, highest, integer-to-double ratio,
/// normalizing offset.
type Header = (u32, u64, u64, f64, u32);

fn header() -> impl Strategy<Value = Header> {
    (
        prop_oneof![0u32..8, any::<u32>()],
        mutate::extreme_u64(),
        mutate::extreme_u64(),
        prop_oneof![Just(1.0), any::<f64>()],
        prop_oneof![Just(0u32), any::<u32>()],
    )
}

/// Encoded histograms as a log line or a report holds them: random, real ones corrupted, and
/// headers with any fields, compressed or not.
fn histogram_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..256).prop_map(|b| base64(&b)),
        (
            header(),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<bool>()
        )
            .prop_map(
                |((digits, lowest, highest, ratio, offset), payload, compress)| {
                    let raw = v2(digits, lowest, highest, ratio, offset, &payload);
                    base64(&if compress { compressed(&raw) } else { raw })
                }
            ),
    ]
}

proptest! {
    #[test]
    fn histogram_decoder_survives_random_text(text in any::<String>()) {
        if let Ok(h) = histogram::decode(&text) {
            use_histogram(&h);
        }
    }

    #[test]
    fn histogram_decoder_survives_random_base64(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(h) = histogram::decode(&base64(&bytes)) {
            use_histogram(&h);
        }
    }

    #[test]
    fn histogram_decoder_survives_truncation_and_corruption(
        cut in 0usize..10_000,
        at in 0usize..10_000,
        byte in any::<u8>(),
    ) {
        let report = support::two_site_report();
        let encoded = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &report.sites[0].histogram,
        ).unwrap();
        let mut bytes = encoded[..cut % encoded.len()].to_vec();
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let _ = histogram::decode(&base64(&bytes));
        let text = &report.sites[0].histogram[..cut % report.sites[0].histogram.len()];
        let _ = histogram::decode(text);
    }

    #[test]
    fn histogram_decoder_survives_corrupt_uncompressed_counts(
        values in proptest::collection::vec(0u64..=histogram::HIGHEST_NS, 1..50),
        corruptions in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        use hdrhistogram::serialization::{Serializer as _, V2Serializer};
        let mut h = histogram::new_histogram();
        for &v in &values {
            h.record(v).unwrap();
        }
        let mut bytes = Vec::new();
        V2Serializer::new().serialize(&h, &mut bytes).unwrap();
        for (at, byte) in corruptions {
            // Leave the cookie alone so the corruption reaches the header and counts.
            let at = 4 + at % (bytes.len() - 4);
            bytes[at] = byte;
        }
        if let Ok(h) = histogram::decode(&base64(&bytes)) {
            use_histogram(&h);
        }
    }

    #[test]
    fn histogram_decoder_bounds_what_any_header_claims(
        (digits, lowest, highest, ratio, offset) in header(),
        counts in proptest::collection::vec(any::<u8>(), 0..64),
        compress in any::<bool>(),
    ) {
        let raw = v2(digits, lowest, highest, ratio, offset, &counts);
        let text = base64(&if compress { compressed(&raw) } else { raw });
        if let Ok(h) = histogram::decode(&text) {
            // What a decoded histogram holds is bounded, whatever the header says.
            prop_assert!(h.distinct_values() <= histogram::MAX_COUNTS, "{}", h.distinct_values());
            use_histogram(&h);
        }
    }

    #[test]
    fn histograms_round_trip(values in proptest::collection::vec(0u64..=histogram::HIGHEST_NS, 1..200)) {
        let mut h = histogram::new_histogram();
        for &v in &values {
            h.record(v).unwrap();
        }
        let back = histogram::decode(&histogram::encode(&h)).unwrap();
        prop_assert_eq!(back, h);
    }
}

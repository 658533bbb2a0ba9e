//! The interval log: written by `hlog::Writer`, read back by `hlog::from_str` and by
//! hdrhistogram's own iterator, with site labels surviving the tag encoding.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use pollwatch_report::histogram::{self, Histogram};
use pollwatch_report::{hlog, ReadError};
use proptest::prelude::*;

fn recorded(values: &[u64]) -> Histogram<u64> {
    let mut h = histogram::new_histogram();
    for &v in values {
        h.saturating_record(v);
    }
    h
}

const SITE_A: &str = "src/main.rs:42:5 \"fetch, then parse\"";
const SITE_B: &str = "/home/me/.cargo/registry/src/index/axum-0.8.4/src/serve.rs:101:17";

fn two_interval_log() -> String {
    let base = UNIX_EPOCH + Duration::from_millis(1_764_322_003_412);
    let mut w = hlog::Writer::start(Vec::new(), base).unwrap();
    let a = recorded(&[2_000, 3_000, 50_000_000]);
    let b = recorded(&[1_000, 1_000]);
    let mut all = a.clone();
    all.add(&b).unwrap();
    w.interval(
        Duration::ZERO,
        Duration::from_secs(1),
        [(SITE_A, &a), (SITE_B, &b)],
        &all,
    )
    .unwrap();
    let empty = histogram::new_histogram();
    w.interval(
        Duration::from_secs(1),
        Duration::from_secs(1),
        [(SITE_A, &empty)],
        &empty,
    )
    .unwrap();
    String::from_utf8(w.get_ref().clone()).unwrap()
}

#[test]
fn intervals_read_back_with_their_sites_and_counts() {
    let text = two_interval_log();
    let log = hlog::from_str(&text).unwrap();
    assert!(!log.truncated_tail);
    assert_eq!(log.start_time_unix_s, Some(1_764_322_003.412));
    assert_eq!(log.sites(), vec![SITE_A, SITE_B]);
    let a: Vec<_> = log.series(Some(SITE_A)).collect();
    assert_eq!(a.len(), 1, "an empty site histogram is not written");
    assert_eq!(a[0].histogram.len(), 3);
    assert_eq!(a[0].histogram.max(), recorded(&[50_000_000]).max());
    let all: Vec<_> = log.series(None).collect();
    assert_eq!(all.len(), 2, "every interval has its untagged histogram");
    assert_eq!(all[0].histogram.len(), 5);
    assert_eq!(all[1].histogram.len(), 0);
    assert_eq!(all[1].start_s, 1.0);
    assert_eq!(all[1].length_s, 1.0);
}

#[test]
fn the_log_is_standard_for_other_readers() {
    let text = two_interval_log();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], hlog::HEADER);
    assert!(lines.contains(&"#[BaseTime: 1764322003.412 (seconds since epoch)]"));
    let tagged = lines.iter().find(|l| l.starts_with("Tag=")).unwrap();
    let tag = &tagged["Tag=".len()..tagged.find(',').unwrap()];
    assert!(!tag.contains([',', ' ', ':']), "{tag}");
    // Interval_Max is in milliseconds, as the Java writer puts it.
    assert!(tagged.contains(",0.000,1.000,50."), "{tagged}");
    let mut tags = Vec::new();
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        if let LogEntry::Interval(i) = entry.unwrap() {
            tags.push(i.tag().map(|t| t.as_str().to_owned()));
            assert!(i.encoded_histogram().starts_with("HISTF"));
        }
    }
    assert_eq!(tags.len(), 4);
    assert_eq!(
        tags[0].as_deref().map(hlog::decode_tag),
        Some(Ok(SITE_A.to_owned()))
    );
    assert_eq!(tags[2], None);
}

#[test]
fn a_line_cut_short_by_a_crash_is_left_out_and_noted() {
    let text = two_interval_log();
    let cut = &text[..text.len() - 10];
    let log = hlog::from_str(cut).unwrap();
    assert!(log.truncated_tail);
    assert_eq!(log.series(None).count(), 1);
}

#[test]
fn a_bad_line_is_an_error_naming_the_line() {
    let mut text = two_interval_log();
    text.push_str("0.000,1.000,garbage\n");
    let err = hlog::from_str(&text).unwrap_err();
    let ReadError::BadLog { line, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*line, text.lines().count());
    assert!(
        err.to_string()
            .starts_with(&format!("report: line {line}: ")),
        "{err}"
    );

    let bad_tag = two_interval_log().replacen("Tag=src", "Tag=%zzsrc", 1);
    let err = hlog::from_str(&bad_tag).unwrap_err().to_string();
    assert!(err.contains("line 6") && err.contains("hex"), "{err}");

    let bad_histogram = two_interval_log().replacen(",HISTF", ",HISTFxx", 1);
    let err = hlog::from_str(&bad_histogram).unwrap_err().to_string();
    assert!(err.contains("line 6") && err.contains("histogram"), "{err}");
}

#[test]
fn each_line_is_read_on_its_own() {
    // A tag cut by a newline is a bad line, not a site label that runs on into the next line.
    let interval = two_interval_log().lines().nth(5).unwrap().to_owned();
    let (_, rest) = interval.split_once(',').unwrap();
    let text = format!("Tag=src/main.rs\nmore,{rest}\n");
    let err = hlog::from_str(&text).unwrap_err().to_string();
    assert!(err.starts_with("report: line 1: "), "{err}");

    // Many comment lines read in one pass (given the whole file, HdrHistogram's parser would
    // scan the rest of it for a `.` at each one).
    let log = hlog::from_str(&"#\n".repeat(200_000)).unwrap();
    assert!(log.intervals.is_empty() && !log.truncated_tail);
}

/// Reading the interval log takes time linear in its size: 8 times the lines take well under
/// the 64 times a parser that rescans the rest of the file at each line would (the fastest of
/// three reads each, so a busy machine's pauses do not count).
#[test]
fn reading_takes_time_linear_in_the_size() {
    let interval = two_interval_log().lines().nth(5).unwrap().to_owned();
    let lines = |n: usize| -> String {
        (0..n)
            .map(|i| if i % 2 == 0 { "#\n" } else { "#a comment\n" })
            .chain([interval.as_str(), "\n"])
            .collect()
    };
    let fastest = |text: &str| {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                let log = hlog::from_str(text).unwrap();
                assert_eq!(log.intervals.len(), 1);
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let (small, large) = (lines(25_000), lines(200_000));
    let (one, eight) = (fastest(&small), fastest(&large));
    let ratio = eight.as_secs_f64() / one.as_secs_f64();
    assert!(
        ratio < 24.0,
        "8x the lines took {ratio:.1}x the time ({one:?} -> {eight:?})"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("pollwatch-hlog-missing-{}", std::process::id()));
    let err = hlog::read(&dir.join("nope.hlog")).unwrap_err().to_string();
    assert!(
        err.contains("nope.hlog") && err.contains("could not read"),
        "{err}"
    );
}

#[test]
fn start_time_is_the_base_time() {
    let base = SystemTime::now();
    let w = hlog::Writer::start(Vec::new(), base).unwrap();
    let log = hlog::from_str(std::str::from_utf8(w.get_ref()).unwrap()).unwrap();
    let want = base.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((log.start_time_unix_s.unwrap() - want).abs() < 0.001);
}

proptest! {
    #[test]
    fn tags_decode_to_the_label_they_encode(label in any::<String>()) {
        let tag = hlog::encode_tag(&label);
        prop_assert!(!tag.contains([',', ' ', ':', '\n', '\r']));
        prop_assert_eq!(hlog::decode_tag(&tag), Ok(label));
    }

    #[test]
    fn any_site_and_values_round_trip(
        label in any::<String>(),
        values in proptest::collection::vec(1_000u64..100_000_000_000, 1..200),
    ) {
        let h = recorded(&values);
        let mut w = hlog::Writer::start(Vec::new(), UNIX_EPOCH).unwrap();
        w.interval(Duration::from_millis(2500), Duration::from_secs(1), [(label.as_str(), &h)], &h).unwrap();
        let log = hlog::from_str(std::str::from_utf8(w.get_ref()).unwrap()).unwrap();
        let site: Vec<_> = log.series(Some(&label)).collect();
        prop_assert_eq!(site.len(), 1);
        prop_assert_eq!(&site[0].histogram, &h);
        prop_assert_eq!(site[0].start_s, 2.5);
    }

}

//! A report written as JSON reads back equal, histograms included.

mod support;

use pollwatch_report::{histogram, json, write, ReadError};

#[test]
fn report_with_two_sites_reads_back_equal() {
    let report = support::two_site_report();
    let text = json::to_string(&report);
    let back = json::from_str(&text).unwrap();
    assert_eq!(back, report);
}

#[test]
fn decoded_histograms_keep_their_counts_and_percentiles() {
    let report = support::two_site_report();
    let back = json::from_str(&json::to_string(&report)).unwrap();
    for (written, read) in report.sites.iter().zip(&back.sites) {
        assert!(
            !read.histogram.is_empty(),
            "site {} has no histogram",
            read.label
        );
        let h = histogram::decode(&read.histogram).unwrap();
        assert_eq!(h.len(), written.polls);
        assert_eq!(histogram::percentiles(&h), written.percentiles);
        assert_eq!(h.max(), written.max_ns);
        assert_eq!(h.low(), histogram::LOWEST_NS);
        assert_eq!(h.high(), histogram::HIGHEST_NS);
        assert_eq!(h.sigfig(), histogram::SIGNIFICANT_DIGITS);
    }
}

#[test]
fn json_has_format_and_version_first_and_units_in_names() {
    let text = json::to_string(&support::two_site_report());
    let format_at = text.find("\"format\": \"pollwatch-report\"").unwrap();
    let version_at = text.find("\"version\": 1").unwrap();
    let sites_at = text.find("\"sites\"").unwrap();
    assert!(format_at < version_at && version_at < sites_at, "{text}");
    assert!(text.contains("\"p999_ns\""));
    assert!(text.ends_with("}\n"));
}

#[test]
fn unknown_fields_are_ignored() {
    let report = support::two_site_report();
    let mut value: serde_json::Value = serde_json::from_str(&json::to_string(&report)).unwrap();
    value["added_in_a_later_release"] = serde_json::json!({"x": 1});
    value["sites"][0]["another_new_field"] = serde_json::json!([1, 2]);
    let back = json::from_str(&value.to_string()).unwrap();
    assert_eq!(back, report);
}

#[test]
fn missing_diagnostics_read_as_none() {
    let report = support::two_site_report();
    let mut value: serde_json::Value = serde_json::from_str(&json::to_string(&report)).unwrap();
    value.as_object_mut().unwrap().remove("diagnostics");
    let back = json::from_str(&value.to_string()).unwrap();
    assert!(back.diagnostics.is_empty());
}

#[test]
fn read_accepts_the_file_or_its_directory() {
    let report = support::two_site_report();
    let dir = support::fresh_dir("read");
    let written = write::write_dir(&dir, &report, 10).unwrap();
    assert_eq!(json::read(&written.json).unwrap(), report);
    assert_eq!(json::read(&dir).unwrap(), report);
}

#[test]
fn read_rejects_a_site_whose_histogram_does_not_decode() {
    let mut report = support::two_site_report();
    report.sites[1].histogram = "HISTFAAAAB14nJNpmSzMwMDAwQABTFCaEUzOmQ".to_owned();
    let dir = support::fresh_dir("bad-histogram");
    let written = write::write_dir(&dir, &report, 10).unwrap();
    match json::read(&written.json) {
        Err(ReadError::BadHistogram { site, reason }) => {
            assert_eq!(site, "src/tick.rs:80:9");
            assert!(!reason.is_empty());
        }
        other => panic!("expected BadHistogram, got {other:?}"),
    }
}

#[test]
fn read_of_a_missing_file_names_it() {
    let dir = support::fresh_dir("missing");
    let err = json::read(&dir.join("nope.json")).unwrap_err();
    assert!(matches!(err, ReadError::Io { .. }), "{err:?}");
    let line = err.to_string();
    assert!(line.contains("nope.json"), "{line}");
    assert!(!line.contains('\n'));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn read_of_an_empty_directory_names_report_json() {
    let dir = support::fresh_dir("empty");
    let err = json::read(&dir).unwrap_err();
    assert_eq!(err.path(), Some(dir.join(json::FILE).as_path()));
}

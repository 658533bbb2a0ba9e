//! Reading anything but a complete report of this schema version gives an error that says why,
//! and never panics.

mod support;

use pollwatch_report::{json, ReadError, VERSION};

fn report_value() -> serde_json::Value {
    serde_json::from_str(&json::to_string(&support::two_site_report())).unwrap()
}

#[test]
fn json_with_another_format_is_not_a_report() {
    let mut value = report_value();
    value["format"] = "something-else".into();
    let err = json::from_str(&value.to_string()).unwrap_err();
    assert!(matches!(err, ReadError::NotAReport { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "report: not a pollwatch report (no \"format\": \"pollwatch-report\")"
    );
}

#[test]
fn json_without_format_is_not_a_report() {
    for text in [r#"{"version": 1}"#, "[1, 2, 3]", "42", r#"{"format": 1}"#] {
        let err = json::from_str(text).unwrap_err();
        assert!(
            matches!(err, ReadError::NotAReport { .. }),
            "{text}: {err:?}"
        );
    }
}

#[test]
fn a_report_without_version_is_not_a_report() {
    let mut value = report_value();
    value.as_object_mut().unwrap().remove("version");
    let err = json::from_str(&value.to_string()).unwrap_err();
    assert!(matches!(err, ReadError::NotAReport { .. }), "{err:?}");
}

#[test]
fn a_newer_schema_version_is_unsupported_and_named() {
    let mut value = report_value();
    value["version"] = 7.into();
    // A later version may change anything else too; the version check must come first.
    value.as_object_mut().unwrap().remove("sites");
    let err = json::from_str(&value.to_string()).unwrap_err();
    match &err {
        ReadError::UnsupportedVersion {
            found, supported, ..
        } => {
            assert_eq!(*found, 7);
            assert_eq!(*supported, VERSION);
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "report: schema version 7, this pollwatch reads version 1; upgrade pollwatch"
    );
}

#[test]
fn an_unsupported_version_read_from_a_file_names_the_file() {
    let mut value = report_value();
    value["version"] = 7.into();
    let dir = support::fresh_dir("version");
    let path = dir.join("report.json");
    std::fs::write(&path, value.to_string()).unwrap();
    let err = json::read(&path).unwrap_err();
    assert!(
        matches!(err, ReadError::UnsupportedVersion { found: 7, .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("{}: schema version 7", path.display())));
}

#[test]
fn truncated_reports_always_give_an_error() {
    let text = json::to_string(&support::two_site_report());
    let mut checked = 0;
    for cut in (0..text.len() - 2).step_by(97) {
        if !text.is_char_boundary(cut) {
            continue;
        }
        match json::from_str(&text[..cut]) {
            Err(ReadError::NotJson { source, .. }) => {
                assert!(source.is_eof(), "cut {cut}: {source}")
            }
            other => panic!("cut at byte {cut}: expected NotJson, got {other:?}"),
        }
        checked += 1;
    }
    assert!(checked > 10, "only {checked} truncations checked");
}

#[test]
fn truncated_report_error_is_one_line_with_line_and_column() {
    let text = json::to_string(&support::two_site_report());
    let err = json::from_str(&text[..text.len() / 2]).unwrap_err();
    let line = err.to_string();
    assert!(
        line.starts_with("report: truncated or invalid JSON at line "),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn garbage_bytes_give_an_error() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let text = String::from_utf8_lossy(&garbage);
    let err = json::from_str(&text).unwrap_err();
    assert!(matches!(err, ReadError::NotJson { .. }), "{err:?}");

    let dir = support::fresh_dir("garbage");
    let path = dir.join("report.json");
    std::fs::write(&path, &garbage).unwrap();
    let err = json::read(&path).unwrap_err();
    assert_eq!(err.path(), Some(path.as_path()));
}

#[test]
fn a_field_of_the_wrong_type_is_reported_with_its_position() {
    let mut value = report_value();
    value["uptime_ns"] = "a minute".into();
    let err = json::from_str(&serde_json::to_string_pretty(&value).unwrap()).unwrap_err();
    let line = err.to_string();
    assert!(matches!(err, ReadError::NotJson { .. }), "{err:?}");
    assert!(line.contains("does not match the report schema"), "{line}");
    assert!(line.contains("at line"), "{line}");
}

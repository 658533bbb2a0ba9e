//! The saved demo runs are consistent reports, and `pollwatch show` warns about a report whose
//! figures cannot all be true, naming each problem, while still showing it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every `report.json` under `dir`, except in `bad/` (files that are meant not to read).
fn valid_reports(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bad") {
                valid_reports(&path, found);
            }
        } else if path.file_name().is_some_and(|n| n == "report.json") {
            found.push(path);
        }
    }
}

#[test]
fn every_saved_report_is_consistent() {
    let mut reports = Vec::new();
    valid_reports(&data(), &mut reports);
    reports.sort();
    assert!(reports.len() >= 3, "{reports:?}");
    for path in reports {
        let report = pollwatch_report::json::read(&path).unwrap();
        assert_eq!(
            report.inconsistencies(),
            Vec::<String>::new(),
            "{}",
            path.display()
        );
    }
}

fn show(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pollwatch"))
        .arg("show")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn show_warns_about_each_inconsistency_and_still_shows_the_report() {
    let text = std::fs::read_to_string(data().join("before/report.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let site = &mut json["sites"][0];
    let label = site["label"].as_str().unwrap().to_owned();
    let max_ns = site["max_ns"].as_u64().unwrap();
    site["percentiles"]["p99_ns"] = (max_ns + 1).into();
    site["slow_polls"] = (site["polls"].as_u64().unwrap() + 1).into();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pollwatch-cli-inconsistent");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.json");
    std::fs::write(&file, serde_json::to_string(&json).unwrap()).unwrap();
    let file = file.to_str().unwrap();

    let warnings = [
        format!(
            "warning: inconsistent report: site {label}: p99_ns ({} ns) exceeds max_ns ({max_ns} ns)",
            max_ns + 1
        ),
        format!(
            "warning: inconsistent report: site {label}: p99_ns ({} ns) exceeds p999_ns ({} ns)",
            max_ns + 1,
            json["sites"][0]["percentiles"]["p999_ns"]
        ),
        format!(
            "warning: inconsistent report: site {label}: slow_polls ({}) exceeds polls ({})",
            json["sites"][0]["slow_polls"], json["sites"][0]["polls"]
        ),
    ];
    let out = show(&[file, "--top", "1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1..4], warnings, "{out}");
    assert!(out.contains("top sites by time held (1 of "), "{out}");
    // `--site` narrows the sites shown, not the warnings, which are about the whole file.
    let out = show(&[file, "--site", "no such site"]);
    assert!(out.contains(&warnings[0]), "{out}");

    let shown: serde_json::Value = serde_json::from_str(&show(&[file, "--json"])).unwrap();
    let listed: Vec<&str> = shown["inconsistencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let expected: Vec<&str> = warnings
        .iter()
        .map(|w| w.trim_start_matches("warning: inconsistent report: "))
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn a_consistent_report_shows_no_warning() {
    let before = data().join("before");
    let before = before.to_str().unwrap();
    let out = show(&[before]);
    assert!(!out.lines().any(|l| l.starts_with("warning")), "{out}");
    let shown: serde_json::Value = serde_json::from_str(&show(&[before, "--json"])).unwrap();
    assert!(shown.get("inconsistencies").is_none(), "{shown}");
}

//! `write_dir` writes `report.json` and `report.txt`, replaces them on the next write, and
//! never leaves a temporary file behind.

mod support;

use std::path::Path;

use pollwatch_report::{json, text, write};

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn writes_both_files_and_no_temporary_ones() {
    let dir = support::fresh_dir("write").join("nested").join("reports");
    let report = support::two_site_report();
    let written = write::write_dir(&dir, &report, 5).unwrap();
    assert_eq!(written.json, dir.join(json::FILE));
    assert_eq!(written.text, dir.join(text::FILE));
    assert_eq!(names_in(&dir), ["report.json", "report.txt"]);
    assert_eq!(json::read(&written.json).unwrap(), report);
    let text = std::fs::read_to_string(&written.text).unwrap();
    assert!(text.starts_with("pollwatch 0.1.0"), "{text}");
}

#[test]
fn writing_twice_replaces_the_reports() {
    let dir = support::fresh_dir("twice");
    let mut report = support::two_site_report();
    write::write_dir(&dir, &report, 5).unwrap();
    report.uptime_ns *= 2;
    report.diagnostics.push("second write".to_owned());
    let written = write::write_dir(&dir, &report, 5).unwrap();
    assert_eq!(json::read(&written.json).unwrap(), report);
    assert!(std::fs::read_to_string(&written.text)
        .unwrap()
        .contains("second write"));
    assert_eq!(names_in(&dir), ["report.json", "report.txt"]);
}

#[test]
fn write_atomic_replaces_a_file_whole() {
    let dir = support::fresh_dir("atomic");
    let path = dir.join("data");
    write::write_atomic(&path, b"a long first version of the file").unwrap();
    write::write_atomic(&path, b"short").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"short");
    assert_eq!(names_in(&dir), ["data"]);
}

#[test]
fn a_failed_write_names_the_file_and_leaves_nothing_behind() {
    let dir = support::fresh_dir("fail");
    // A directory where the file should go: the rename over it fails.
    let target = dir.join("report.json");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let err = write::write_atomic(&target, b"{}").unwrap_err();
    assert_eq!(err.path(), target.as_path());
    assert!(err
        .to_string()
        .starts_with(&format!("could not write {}: ", target.display())));
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(names_in(&dir), ["report.json"]);
}

#[test]
fn a_directory_that_cannot_be_created_is_named() {
    let dir = support::fresh_dir("blocked");
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = write::write_dir(&file.join("reports"), &support::two_site_report(), 5).unwrap_err();
    assert_eq!(err.path(), file.join("reports").as_path());
}

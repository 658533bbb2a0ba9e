//! Whatever is in the files, the command answers with a result or one line naming the file and
//! exit status 2, never a panic: real reports and interval logs cut at many points and with
//! bytes overwritten.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pollwatch-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `pollwatch args`; checks it did not panic, and that a failure is one line naming
/// `file`. Returns the exit status.
fn run(args: &[&str], file: &Path) -> i32 {
    let out = Command::new(env!("CARGO_BIN_EXE_pollwatch"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    if code != 0 {
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&file.display().to_string()),
            "{args:?}: {stderr}"
        );
    }
    code
}

/// `len` cut points spread over the file, plus the first bytes.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    (0..8).chain((1..60).map(move |i| i * len / 60))
}

#[test]
fn truncated_reports_are_errors_naming_the_file() {
    let dir = scratch("truncated-report");
    let file = dir.join("report.json");
    let whole = data("before/report.json");
    for cut in cuts(whole.len() - 2) {
        std::fs::write(&file, &whole[..cut]).unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(run(&["show", path], &file), 2, "cut at {cut}");
        assert_eq!(run(&["diff", path, path], &file), 2, "cut at {cut}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupted_reports_never_panic() {
    let dir = scratch("corrupted-report");
    let file = dir.join("report.json");
    let whole = data("after/report.json");
    for (n, at) in cuts(whole.len()).enumerate() {
        let mut bytes = whole.clone();
        bytes[at] = [b'x', b'"', b'9', 0xff, b'{', b'-'][n % 6];
        std::fs::write(&file, &bytes).unwrap();
        run(&["show", file.to_str().unwrap()], &file);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncated_and_corrupted_interval_logs_never_panic() {
    let dir = scratch("bad-log");
    std::fs::write(dir.join("report.json"), data("after/report.json")).unwrap();
    let log = dir.join("report.hlog");
    let whole = data("after/report.hlog");
    let html = dir.join("page.html");
    let (dir_arg, html_arg) = (dir.to_str().unwrap(), html.to_str().unwrap());
    let mut read_fine = 0;
    for (n, at) in cuts(whole.len()).enumerate() {
        // A log cut short is what a crash leaves: its last line is left out, with a note.
        std::fs::write(&log, &whole[..at]).unwrap();
        if run(&["intervals", dir_arg], &log) == 0 {
            read_fine += 1;
        }
        run(&["html", dir_arg, "-o", html_arg], &log);
        let mut bytes = whole.clone();
        bytes[at] = [b',', b'%', b'#', 0xff, b'\n', b'Z'][n % 6];
        std::fs::write(&log, &bytes).unwrap();
        run(&["intervals", dir_arg], &log);
        run(&["html", dir_arg, "-o", html_arg], &log);
    }
    assert!(
        read_fine > 30,
        "a log cut after any whole line reads ({read_fine})"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

//! `pollwatch lint --output FILE` keeps what is there: an existing file is replaced only with
//! `--force`, never by the report it reads, and a bad report writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pollwatch(args: &[&str], output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pollwatch"))
        .args(args)
        .arg("--output")
        .arg(output)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pollwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_existing_file_is_replaced_only_with_force() {
    let dir = temp_dir("lint-force");
    let file = dir.join("clippy.toml");
    std::fs::write(&file, "msrv = \"1.85\"\n").unwrap();

    let refused = pollwatch(&["lint", "tests/data/before"], &file);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        stderr(&refused),
        format!(
            "pollwatch: {}: already exists; pass --force to replace it\n",
            file.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "msrv = \"1.85\"\n");

    let forced = pollwatch(&["lint", "tests/data/before", "--force"], &file);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let rules = std::fs::read_to_string(&file).unwrap();
    assert!(rules.contains("{ path = \"std::thread::sleep\""), "{rules}");
    // The file has the rules alone; the call sites go to stdout.
    assert!(!rules.contains("Suggested changes"), "{rules}");
    let stdout = String::from_utf8_lossy(&forced.stdout);
    // What was left out depends on the run; the four APIs and the one commented out do not.
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "# wrote {} (4 rules, 1 commented out, ",
            file.display()
        )) && first.ends_with(" left out)"),
        "{stdout}"
    );
    assert!(stdout.contains("# Suggested changes"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_report_writes_nothing() {
    let dir = temp_dir("lint-bad");
    let file = dir.join("clippy.toml");
    let out = pollwatch(&["lint", "tests/data/bad/truncated.json"], &file);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("truncated or invalid JSON"),
        "{}",
        stderr(&out)
    );
    assert!(!file.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_report_itself_is_never_the_output() {
    let dir = temp_dir("lint-self");
    let report = dir.join("report.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/before/report.json"),
        &report,
    )
    .unwrap();
    let before = std::fs::read(&report).unwrap();
    let out = pollwatch(&["lint", dir.to_str().unwrap(), "--force"], &report);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is the report being read"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&report).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

//! A dependency's code is known by its place, not by `~/.cargo`: a service built with
//! `CARGO_HOME` elsewhere (the official Docker image's `/usr/local/cargo`), and the same service
//! built from `cargo vendor`'s sources, both name the application's line as the call site and
//! the dependency as what it called.
//!
//! The fixture is a small service generated here: it reads a FIFO through `fs_err::read` (a
//! crates.io wrapper of `std::fs`) inside a task, under `pollwatch::runtime`, and writes its
//! report on exit. It is built twice in release (`debug = "line-tables-only"`) with a fresh
//! `CARGO_HOME`, so it downloads from crates.io and takes minutes: ignored by the README's test
//! command, run by `.ci/run` (`--ignored`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture's one blocking line, in `src/main.rs` below.
const BLOCKING_LINE: u32 = 9;

const MAIN_RS: &str = r#"use std::time::Duration;

const BLOCK: Duration = Duration::from_millis(200);

/// Reads the configuration, which is a FIFO a thread writes to after `BLOCK`.
#[inline(never)]
fn read_config(path: &std::path::Path) -> usize {
    let before = std::hint::black_box(0);
    let bytes = fs_err::read(path).unwrap();
    before + bytes.len()
}

fn main() {
    let fifo = std::env::temp_dir().join(format!("fixture-fifo-{}", std::process::id()));
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(BLOCK);
            std::fs::write(&fifo, b"config").unwrap();
        })
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let guard = pollwatch::runtime(&mut builder);
    let runtime = builder.build().unwrap();
    let read = runtime.block_on(async move {
        pollwatch::spawn(async move { read_config(&fifo) }).await.unwrap()
    });
    assert_eq!(read, 6);
    writer.join().unwrap();
    drop(runtime);
    drop(guard);
}
"#;

#[test]
#[ignore = "builds a fixture service twice from crates.io (minutes); .ci/run runs it"]
fn the_call_site_is_the_applications_line_wherever_cargo_put_the_dependency() {
    assert_eq!(
        MAIN_RS
            .lines()
            .nth(BLOCKING_LINE as usize - 1)
            .map(str::trim),
        Some("let bytes = fs_err::read(path).unwrap();")
    );
    let work = std::env::temp_dir().join(format!("pollwatch-cargo-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let cargo_home = work.join("cargo-home");

    // CARGO_HOME elsewhere: the registry's sources are under `<work>/cargo-home`, no `.cargo`.
    let service = fixture(&work.join("service"));
    build(&service, &cargo_home, &work.join("target"));
    let stall = blocking_stall(&run(&work.join("target"), &work.join("report")));
    assert_named_at_the_application(&stall, "cargo-home/registry/src/");

    // The same service from vendored sources (`vendor/` inside its workspace).
    let vendored = fixture(&work.join("vendored"));
    let config = cargo(&vendored, &cargo_home)
        .args(["vendor", "vendor"])
        .output()
        .unwrap();
    assert!(
        config.status.success(),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    std::fs::create_dir_all(vendored.join(".cargo")).unwrap();
    std::fs::write(vendored.join(".cargo/config.toml"), &config.stdout).unwrap();
    build(&vendored, &cargo_home, &work.join("target-vendored"));
    let stall = blocking_stall(&run(
        &work.join("target-vendored"),
        &work.join("report-vendored"),
    ));
    assert_named_at_the_application(&stall, "/vendored/vendor/fs-err/");

    std::fs::remove_dir_all(&work).unwrap();
}

/// Checks that `stall` names the fixture's line and `fs_err` as the dependency it called, and
/// that the dependency's frame really was at `dependency_path` (so the test tried that place).
fn assert_named_at_the_application(stall: &serde_json::Value, dependency_path: &str) {
    let call_site = stall["call_site"].as_str().unwrap_or("none");
    assert_eq!(
        call_site,
        format!("src/main.rs:{BLOCKING_LINE}"),
        "{}",
        serde_json::to_string_pretty(stall).unwrap()
    );
    let dependency = stall["dependency_call"].as_str().unwrap_or("none");
    assert!(dependency.starts_with("fs_err::"), "{dependency}");
    // Reading a FIFO waits in its open (`std::fs::File::open` inside `fs_err::read`).
    let api = stall["blocking_call"].as_str().unwrap_or("none");
    assert!(api.starts_with("std::fs::"), "{api}");
    let frames = stall["backtrace"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .filter_map(|f| f["file"].as_str())
            .any(|f| f.contains(dependency_path)),
        "no frame under {dependency_path}: {stall}"
    );
}

/// Writes the fixture's crate into `dir`.
fn fixture(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let pollwatch = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = pollwatch.join("../../Cargo.lock");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "fixture"
version = "0.1.0"
edition = "2021"

[dependencies]
pollwatch = {{ path = "{}" }}
tokio = {{ version = "1.54", features = ["full"] }}
fs-err = "3"

[profile.release]
debug = "line-tables-only"

[workspace]
"#,
            pollwatch.display()
        ),
    )
    .unwrap();
    // pollwatch's own lock file, so the fixture builds the versions pollwatch is tested with.
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
    dir.to_owned()
}

fn cargo(dir: &Path, cargo_home: &Path) -> Command {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(dir)
        .env("CARGO_HOME", cargo_home)
        // The fixture builds as a user's service would: with its own flags, not the test's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cargo
}

fn build(dir: &Path, cargo_home: &Path, target: &Path) {
    let out = cargo(dir, cargo_home)
        .args(["build", "--release", "--quiet", "--target-dir"])
        .arg(target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the fixture in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the fixture built in `target`, writing its report into `report`.
fn run(target: &Path, report: &Path) -> serde_json::Value {
    let out = Command::new(target.join("release/fixture"))
        .env("POLLWATCH_REPORT_DIR", report)
        .env("POLLWATCH_THRESHOLD", "20ms")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(report.join("report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The report's stall in the file read (the one stall of its run).
fn blocking_stall(report: &serde_json::Value) -> serde_json::Value {
    let stalls = report["stalls"].as_array().unwrap();
    stalls
        .iter()
        .find(|s| s["cause"] == "file_io")
        .unwrap_or_else(|| panic!("no file_io stall: {report}"))
        .clone()
}

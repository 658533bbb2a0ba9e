//! pollwatch names the blocking code in the builds people run: with line tables the exact
//! line, without them the function (and says the line is unknown, and why), and never
//! nothing without saying why. Run in three builds: `cargo test` (debug info), `cargo test
//! --release` (the workspace's release profile: line tables only) and `cargo test --profile
//! release-no-line-tables` (none). Whether this build has line tables is read from the test
//! binary's own ELF sections (`.debug_line`), independently of pollwatch.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use pollwatch::Builder;
use support::{binary_has_line_tables, Captured, Watched};

const THRESHOLD: Duration = Duration::from_millis(20);
const BLOCK: Duration = Duration::from_millis(150);

/// Sleeps, from a function that is not inlined, so every build keeps its name.
#[inline(never)]
fn block_in_a_named_function() -> u32 {
    std::thread::sleep(BLOCK);
    line!() - 1
}

/// A value whose `Drop` blocks.
struct FlushOnDrop;

impl Drop for FlushOnDrop {
    #[inline(never)]
    fn drop(&mut self) {
        std::thread::sleep(BLOCK);
        // Work after the call, so the sleep is not a tail call that leaves no frame of `drop`.
        std::hint::black_box(self);
    }
}

fn watched(output: &Captured) -> Watched {
    Watched::with_output(Builder::new().threshold(THRESHOLD), output)
}

/// The one stall of tasks spawned in this file.
fn only_stall(report: &pollwatch::Report) -> &pollwatch_report::Stall {
    support::only_stall(report, "names_the_blocking_code_in_every_build.rs")
}

#[test]
fn the_setup_check_says_when_the_build_has_no_line_tables() {
    let output = Captured::default();
    let watched = watched(&output);
    let rt = watched.runtime(1);
    watched.scope(|| rt.block_on(async { tokio::spawn(async {}).await.unwrap() }));
    drop(rt);
    let report = watched.final_report();
    let said: Vec<&String> = report
        .diagnostics
        .iter()
        .filter(|d| d.contains("no line tables"))
        .collect();
    if binary_has_line_tables() {
        assert!(said.is_empty(), "{said:?}");
        assert!(!output.text().contains("no line tables"));
    } else {
        assert_eq!(said.len(), 1, "{:?}", report.diagnostics);
        assert!(
            said[0].contains("[profile.release]\n  debug = \"line-tables-only\""),
            "{}",
            said[0]
        );
        let text = output.text();
        let events = text
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("no line tables"))
            .count();
        assert_eq!(events, 1, "one WARN event: {text}");
    }
}

#[test]
fn a_blocking_call_is_named_at_its_line_or_by_its_function() {
    let output = Captured::default();
    let watched = watched(&output);
    let rt = watched.runtime(2);
    let line = watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async { block_in_a_named_function() })
                .await
                .unwrap()
        })
    });
    drop(rt);
    let report = watched.final_report();
    let stall = only_stall(&report);
    assert_eq!(stall.blocking_call.as_deref(), Some("std::thread::sleep"));
    assert_eq!(stall.cause, "sleep");
    if binary_has_line_tables() {
        let at = format!("crates/pollwatch/tests/names_the_blocking_code_in_every_build.rs:{line}");
        assert_eq!(stall.call_site.as_deref(), Some(at.as_str()), "{stall:#?}");
        let path = stall.call_site_path.as_deref().unwrap_or_default();
        assert!(path.starts_with('/') && path.ends_with(&at), "{path}");
        assert_eq!(stall.call_site_missing, None);
    } else {
        assert_eq!(stall.call_site, None);
        assert_eq!(
            stall.call_function.as_deref(),
            Some("names_the_blocking_code_in_every_build::block_in_a_named_function"),
            "{stall:#?}"
        );
        assert_eq!(stall.call_site_missing.as_deref(), Some("no_line_tables"));
        assert!(
            stall.message.contains(
                "in names_the_blocking_code_in_every_build::block_in_a_named_function \
                 (line unknown: the build has no line tables)"
            ),
            "{}",
            stall.message
        );
    }
}

#[test]
fn a_blocking_call_in_an_async_block_is_never_left_unexplained() {
    let output = Captured::default();
    let watched = watched(&output);
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            tokio::spawn(async { std::thread::sleep(BLOCK) })
                .await
                .unwrap()
        })
    });
    drop(rt);
    let report = watched.final_report();
    let stall = only_stall(&report);
    assert_eq!(stall.blocking_call.as_deref(), Some("std::thread::sleep"));
    if binary_has_line_tables() {
        let call_site = stall.call_site.as_deref().unwrap_or_default();
        assert!(
            call_site
                .starts_with("crates/pollwatch/tests/names_the_blocking_code_in_every_build.rs:"),
            "{stall:#?}"
        );
    } else {
        // The async block is either kept as a function, or inlined into tokio's poll: either
        // is said.
        eprintln!(
            "call site named: {:?} {:?}",
            stall.call_site_missing, stall.call_function
        );
        match stall.call_site_missing.as_deref() {
            Some("no_line_tables") => assert!(stall.call_function.is_some()),
            Some("inlined") => assert!(
                stall
                    .message
                    .contains("inlined into tokio's poll; build with line tables"),
                "{}",
                stall.message
            ),
            other => panic!("unexplained call site {other:?}: {stall:#?}"),
        }
    }
}

#[test]
fn a_blocking_drop_is_labelled_a_drop_live_with_a_fix_a_drop_can_use() {
    let output = Captured::default();
    let watched = watched(&output);
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            let value = FlushOnDrop;
            let task = tokio::spawn(async move {
                let _value = value;
                std::future::pending::<()>().await;
            });
            tokio::task::yield_now().await;
            task.abort();
            let _ = task.await;
        })
    });
    drop(rt);
    let report = watched.final_report();
    let stall = only_stall(&report);
    assert_eq!(stall.kind, "drop", "{stall:#?}");
    assert_eq!(
        stall.dropping.as_deref(),
        Some("names_the_blocking_code_in_every_build::FlushOnDrop"),
        "{stall:#?}"
    );
    assert!(
        stall.suggestion.starts_with("Drop cannot .await"),
        "{}",
        stall.suggestion
    );
    assert!(!stall.suggestion.contains("tokio::time::sleep"));
    let text = output.text();
    let live = text
        .lines()
        .filter(|l| {
            l.contains("so far while dropping names_the_blocking_code_in_every_build::FlushOnDrop")
        })
        .count();
    assert_eq!(live, 1, "the live event says it: {text}");
    if binary_has_line_tables() {
        assert!(stall.call_site.is_some(), "{stall:#?}");
    } else {
        assert!(stall.call_function.is_some(), "{stall:#?}");
    }
}

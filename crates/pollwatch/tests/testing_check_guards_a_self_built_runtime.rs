//! `Check::new()` guards a test that builds its own runtime: attached to the
//! runtime's builder, it lists what blocked a thread past the threshold, asserts on it, and
//! asserts when dropped unasserted. Every test here runs in both builds.

use std::time::Duration;

use pollwatch::testing::{Check, Held};

const FILE: &str = "testing_check_guards_a_self_built_runtime.rs";
const BLOCK: Duration = Duration::from_millis(150);

/// A two-worker runtime checked by `check`.
fn runtime(check: &Check) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    check.runtime(&mut builder).build().unwrap()
}

/// Runs a task that sleeps for `BLOCK` on a runtime `check` checks; returns the line.
fn block_in_a_task(check: &Check) -> u32 {
    let rt = runtime(check);
    let line = check.block_on(&rt, async {
        tokio::spawn(async {
            std::thread::sleep(BLOCK);
            line!() - 1
        })
        .await
        .unwrap()
    });
    drop(rt);
    line
}

/// The message `f` panicked with.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .expect_err("it should have panicked");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap()
}

#[test]
fn a_runtime_that_never_blocks_has_no_stalls() {
    let check = Check::new();
    let rt = runtime(&check);
    check.block_on(&rt, async {
        let tasks: Vec<_> = (0..8)
            .map(|_| tokio::spawn(async { tokio::time::sleep(Duration::from_millis(2)).await }))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(rt);
    assert_eq!(check.stalls(), vec![]);
    check.assert_no_stalls();
}

#[test]
fn a_task_that_blocks_is_listed_with_its_call_site_api_cause_and_fix() {
    let check = Check::new();
    let line = block_in_a_task(&check);
    let stalls = check.stalls();
    assert_eq!(stalls.len(), 1, "{stalls:#?}");
    let Held::Stall(stall) = &stalls[0] else {
        panic!("caught while it ran: {stalls:#?}");
    };
    assert_eq!(
        stall.call_site.as_deref(),
        Some(format!("crates/pollwatch/tests/{FILE}:{line}").as_str())
    );
    assert_eq!(stall.blocking_call.as_deref(), Some("std::thread::sleep"));
    assert_eq!(stall.cause, "sleep");
    let message = panic_message(move || check.assert_no_stalls());
    // What a failing test prints (the README shows it).
    println!("{message}");
    for part in [
        "pollwatch: 1 poll held a thread past the 10.0ms threshold:\n1. ",
        &format!("{FILE}:{line}: std::thread::sleep [sleep] held its thread for "),
        "   fix: Use tokio::time::sleep(..).await.\n",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
}

#[test]
fn an_allowed_stall_is_counted_not_failed() {
    let check = Check::new().allow(FILE);
    block_in_a_task(&check);
    assert_eq!(check.stalls(), vec![]);
    check.assert_no_stalls();
}

#[test]
fn a_raised_threshold_lets_the_same_task_pass() {
    let check = Check::new().threshold(Duration::from_secs(1));
    block_in_a_task(&check);
    check.assert_no_stalls();
}

#[test]
fn a_check_dropped_unasserted_asserts() {
    let message = panic_message(|| {
        let check = Check::new();
        block_in_a_task(&check);
    });
    assert!(message.contains("std::thread::sleep [sleep]"), "{message}");
}

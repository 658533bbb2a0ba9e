//! A thread in `std::thread::sleep` is seen sleeping in `clock_nanosleep` (a `Sleep` target),
//! and its captured stack names the sleep and the function that called it.
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pollwatch_capture::{RunState, Target};
use support::{capture, function_names, thread_with_tid, wait_for_state};

#[inline(never)]
fn sleeps_in_a_loop(stop: Arc<AtomicBool>) {
    while !stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_sleeping_thread_is_in_clock_nanosleep_and_its_stack_names_the_sleep() {
    let inspector = pollwatch_capture::inspector(true);
    assert!(inspector.can_capture());
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || sleeps_in_a_loop(flag));

    let (state, seen) = wait_for_state(&*inspector, tid, |s| {
        s.run == RunState::Sleeping
            && s.syscall
                .as_ref()
                .is_some_and(|c| matches!(c.name, Some("clock_nanosleep" | "nanosleep")))
    });
    let before = std::time::Instant::now();
    let stack = capture(&*inspector, tid);
    let after = std::time::Instant::now();
    stop.store(true, SeqCst);
    handle.join().unwrap();

    assert!(seen, "never seen in a sleep syscall: {state:?}");
    let state = state.unwrap();
    assert_eq!(state.syscall.unwrap().target, Some(Target::Sleep));
    assert_eq!(Target::Sleep.to_string(), "a sleep");

    let stack = stack.expect("capture");
    assert!(stack.took < support::TIMEOUT);
    // The time the thread stored its frames, on the caller's clock.
    assert!(
        before <= stack.captured_at && stack.captured_at <= after,
        "{before:?} <= {:?} <= {after:?}",
        stack.captured_at
    );
    let names = function_names(&stack);
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("std::thread") && n.ends_with("sleep")),
        "no std::thread::sleep frame: {names:#?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("sleeps_in_a_loop")),
        "no frame of the test's own function: {names:#?}"
    );
}

#[test]
fn the_capture_starts_at_the_interrupted_instruction_not_in_the_handler() {
    let inspector = pollwatch_capture::inspector(true);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || sleeps_in_a_loop(flag));
    let (_, seen) = wait_for_state(&*inspector, tid, |s| s.run == RunState::Sleeping);
    let stack = capture(&*inspector, tid).expect("capture");
    stop.store(true, SeqCst);
    handle.join().unwrap();
    assert!(seen);

    let frames = pollwatch_capture::symbolize(&stack.ips);
    let first = frames.first().expect("frames");
    let names = function_names(&stack);
    for name in &names {
        assert!(
            !name.contains("pollwatch_capture")
                && !name.starts_with("backtrace::")
                && !name.contains("__restore_rt"),
            "a capture-machinery frame was kept: {names:#?}"
        );
    }
    // Blocked in the sleep syscall: the first frame is the C library's sleep wrapper.
    assert!(
        first
            .function
            .as_deref()
            .is_some_and(|f| f.contains("nanosleep")),
        "{frames:#?}"
    );
}

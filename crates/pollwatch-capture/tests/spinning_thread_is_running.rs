//! A thread spinning on the CPU is seen running, outside any syscall, and its captured stack
//! names the spinning function.
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use pollwatch_capture::RunState;
use support::{capture, function_names, thread_with_tid};

#[inline(never)]
fn spins_until_stopped(stop: Arc<AtomicBool>) -> u64 {
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        n = std::hint::black_box(n.wrapping_mul(31).wrapping_add(7));
    }
    n
}

#[test]
fn a_spinning_thread_is_running_and_its_stack_names_the_spin() {
    let inspector = pollwatch_capture::inspector(true);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, spinner) = thread_with_tid(move || spins_until_stopped(flag));
    std::thread::sleep(Duration::from_millis(20));

    // On a busy machine the spinner may be descheduled at any one look; it is `R` (running
    // or runnable) either way, never sleeping in a syscall.
    let mut running = 0;
    for _ in 0..20 {
        let state = inspector.thread_state(tid).expect("state");
        if state.run == RunState::Running && state.syscall.is_none() {
            running += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let cpu_before = inspector.cpu_time_ns(tid).expect("schedstat");
    let stack = capture(&*inspector, tid);
    std::thread::sleep(Duration::from_millis(30));
    let cpu_after = inspector.cpu_time_ns(tid).expect("schedstat");
    stop.store(true, Relaxed);
    spinner.join().unwrap();

    assert!(running > 0, "never seen running in 20 looks");
    assert!(cpu_after > cpu_before, "{cpu_before} -> {cpu_after}");
    let names = function_names(&stack.expect("capture"));
    assert!(
        names.iter().any(|n| n.ends_with("spins_until_stopped")),
        "{names:#?}"
    );
}

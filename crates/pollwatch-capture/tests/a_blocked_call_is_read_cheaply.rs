//! `Inspector::blocked_call` reads the syscall a thread sleeps in, number and arguments, and
//! the same call gives the same reading each time; a thread on the CPU gives none.
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::thread_with_tid;

#[test]
fn a_thread_waiting_on_a_channel_reads_the_same_call_until_it_wakes() {
    let inspector = pollwatch_capture::inspector(false);
    let (tx, rx) = mpsc::channel::<()>();
    let (tid, handle) = thread_with_tid(move || rx.recv().unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = loop {
        if let Some(call) = inspector.blocked_call(tid) {
            break call;
        }
        assert!(Instant::now() < deadline, "never seen in a syscall");
        std::thread::sleep(Duration::from_millis(1));
    };
    let futex = inspector
        .thread_state(tid)
        .and_then(|s| s.syscall)
        .expect("asleep in a syscall");
    assert_eq!(futex.name, Some("futex"));
    assert_eq!(
        (futex.number, futex.args),
        first,
        "the full reading, cheaply"
    );
    let cpu = inspector.sched_times(tid).expect("schedstat").run_ns;
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(inspector.blocked_call(tid), Some(first), "the same call");
    assert_eq!(
        inspector.sched_times(tid).unwrap().run_ns,
        cpu,
        "no CPU used"
    );
    tx.send(()).unwrap();
    handle.join().unwrap();
    assert_eq!(inspector.blocked_call(tid), None, "the thread is gone");
}

#[test]
fn a_spinning_thread_has_no_blocked_call() {
    let inspector = pollwatch_capture::inspector(false);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tid, handle) = thread_with_tid(move || {
        let mut n = 0u64;
        while !flag.load(Relaxed) {
            n = std::hint::black_box(n.wrapping_add(1));
        }
        n
    });
    let in_a_call = (0..20)
        .filter(|_| {
            std::thread::sleep(Duration::from_millis(1));
            inspector.blocked_call(tid).is_some()
        })
        .count();
    stop.store(true, Relaxed);
    handle.join().unwrap();
    assert_eq!(in_a_call, 0, "running or runnable reads `running`");
}

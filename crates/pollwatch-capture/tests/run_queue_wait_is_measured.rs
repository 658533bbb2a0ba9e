//! `sched_times` tells a thread's time on a CPU from its time waiting on a run queue for
//! one: spinning threads that outnumber the CPUs wait a large share of the time, a sleeping
//! thread neither runs nor waits.
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollwatch_capture::SchedTimes;
use support::thread_with_tid;

#[inline(never)]
fn spins_until_stopped(stop: &AtomicBool) -> u64 {
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        n = std::hint::black_box(n.wrapping_mul(31).wrapping_add(7));
    }
    n
}

fn delta(before: SchedTimes, after: SchedTimes) -> (u64, u64) {
    (
        after.run_ns.saturating_sub(before.run_ns),
        after.wait_ns.saturating_sub(before.wait_ns),
    )
}

#[test]
fn spinning_threads_beyond_the_cpus_wait_on_the_run_queue() {
    let inspector = pollwatch_capture::inspector(false);
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Three runnable threads per CPU: each gets about a third of one, and waits the rest.
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..cpus * 3)
        .map(|_| {
            let stop = stop.clone();
            thread_with_tid(move || spins_until_stopped(&stop))
        })
        .collect();
    let tid = spinners[0].0;
    let before = inspector.sched_times(tid).expect("schedstat");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let after = inspector.sched_times(tid).expect("schedstat");
    let wall = u64::try_from(started.elapsed().as_nanos()).unwrap();
    stop.store(true, Relaxed);
    for (_, spinner) in spinners {
        spinner.join().unwrap();
    }
    let (run, wait) = delta(before, after);
    // Always runnable: the two add up to the wall time, give or take the accounting's lag.
    assert!(
        run + wait > wall / 2 && run + wait < wall * 3 / 2,
        "run {run} + wait {wait} vs {wall} ns"
    );
    assert!(
        wait > wall / 3,
        "an oversubscribed spinner waited {wait} of {wall} ns (ran {run})"
    );
}

#[test]
fn a_sleeping_thread_neither_runs_nor_waits_for_a_cpu() {
    let inspector = pollwatch_capture::inspector(false);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (tid, sleeper) = thread_with_tid(move || rx.recv());
    let before = inspector.sched_times(tid).expect("schedstat");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    let after = inspector.sched_times(tid).expect("schedstat");
    let wall = u64::try_from(started.elapsed().as_nanos()).unwrap();
    tx.send(()).unwrap();
    sleeper.join().unwrap().unwrap();
    let (run, wait) = delta(before, after);
    assert!(
        run + wait < wall / 10,
        "a thread blocked in recv ran {run} and waited {wait} of {wall} ns"
    );
    assert_eq!(inspector.sched_times(-5), None, "no such thread");
    assert_eq!(pollwatch_capture::fallback().sched_times(tid), None);
    assert_eq!(pollwatch_capture::fallback().cgroup_throttling(), None);
}

#[test]
fn cgroup_throttling_is_read_where_cgroup_v2_has_a_cpu_controller() {
    let inspector = pollwatch_capture::inspector(false);
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let stat = cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| format!("/sys/fs/cgroup/{}/cpu.stat", path.trim_start_matches('/')))
        .and_then(|file| std::fs::read_to_string(file).ok());
    let has_throttling = stat.is_some_and(|s| s.contains("\nnr_throttled "));
    assert_eq!(inspector.cgroup_throttling().is_some(), has_throttling);
}

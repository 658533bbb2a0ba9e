//! The floors: runtime hooks that do only what a minimal poll timer must, to show how close
//! pollwatch's poll sources come to the least any hook-based poll timer can cost.
//!
//! - [`set_hooks`]: two clock reads through `quanta` (the clock pollwatch's poll path reads)
//!   and two thread-local stores and a load;
//! - [`set_tsc_hooks`]: the real floor, two reads of the CPU's time-stamp counter (`rdtsc`,
//!   on x86_64; `quanta`'s raw counter elsewhere) and one thread-local add, the poll's
//!   length kept as the difference of the two reads.

use std::cell::Cell;

thread_local! {
    static POLL_START: Cell<u64> = const { Cell::new(0) };
    static LAST_POLL: Cell<u64> = const { Cell::new(0) };
}

/// Sets `runtime`'s before/after task poll hooks to time every poll.
pub fn set_hooks(runtime: &mut tokio::runtime::Builder) {
    let clock = quanta::Clock::new();
    let end_clock = clock.clone();
    runtime
        .on_before_task_poll(move |_| POLL_START.set(clock.raw()))
        .on_after_task_poll(move |_| {
            let end = end_clock.raw();
            LAST_POLL.set(end.wrapping_sub(POLL_START.get()));
        });
}

thread_local! {
    static BUSY_TICKS: Cell<u64> = const { Cell::new(0) };
}

/// The time-stamp counter.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tsc() -> u64 {
    pollwatch_capture::tsc::read()
}

/// `quanta`'s raw counter where there is no `rdtsc`.
#[cfg(not(target_arch = "x86_64"))]
fn tsc() -> u64 {
    thread_local! {
        static CLOCK: quanta::Clock = quanta::Clock::new();
    }
    CLOCK.with(quanta::Clock::raw)
}

/// Sets `runtime`'s before/after task poll hooks to add every poll's length in ticks to a
/// thread-local: the start is subtracted before the poll and the end added after it, one
/// thread-local access per hook.
pub fn set_tsc_hooks(runtime: &mut tokio::runtime::Builder) {
    runtime
        .on_before_task_poll(|_| BUSY_TICKS.set(BUSY_TICKS.get().wrapping_sub(tsc())))
        .on_after_task_poll(|_| BUSY_TICKS.set(BUSY_TICKS.get().wrapping_add(tsc())));
}

/// Whether this CPU's time-stamp counter is invariant (constant rate, running in every
/// power state: `constant_tsc` and `nonstop_tsc` in `/proc/cpuinfo`), so that two reads
/// measure time.
pub fn invariant_tsc() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .find(|line| line.starts_with("flags"))
            .is_some_and(|flags| {
                let flags: Vec<&str> = flags.split_whitespace().collect();
                flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc")
            })
    })
}

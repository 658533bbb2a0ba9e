//! The floor: runtime hooks that do only what a minimal poll timer must, two clock reads
//! (`quanta`'s raw counter, the clock pollwatch's poll path reads) and a store into a
//! thread-local, to show how close pollwatch's hooks source comes to the least any
//! hook-based poll timer can cost.

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

//! The worker-hooks poll source: tokio's *stable* thread hooks `on_thread_unpark` /
//! `on_thread_park`, in any build (no `--cfg tokio_unstable`, no subscriber): each busy period
//! of a worker thread is one *worker-level poll* of no task.
//!
//! When tokio 1.54 runs them (`runtime/scheduler/multi_thread/worker.rs`,
//! `current_thread/mod.rs`, `blocking/pool.rs`):
//!
//! - `on_thread_park`: a worker found no task to run and is about to wait for one (the
//!   multi-thread workers, and the thread in a current-thread runtime's `block_on`). Never on
//!   a blocking-pool thread. Waking on a timer or I/O event with still nothing to run does not
//!   leave the park: no hook.
//! - `on_thread_unpark`: it leaves the park to run tasks. The busy period is from here to the
//!   next park.
//! - `on_thread_start` / `on_thread_stop`: every thread of the blocking pool, which runs the
//!   multi-thread workers too. A worker does not park at shutdown: `on_thread_stop` ends its
//!   last busy period.
//!
//! What it sees: that a worker is unparked, and so holds its queue, on which thread; nothing of
//! the task it runs. The watchdog judges a worker-level poll only while no finer source has a
//! poll open on its thread, and not by its length: only a thread asleep in one syscall
//! for longer than the threshold, with no CPU time used (`watchdog/worker.rs`), blocks the
//! runtime. What it misses: CPU work in a task (the thread runs, in no syscall), a worker's
//! first busy period (from its start to its first park), and the busy periods of a thread
//! that `block_in_place` handed a worker to until its first park.
//!
//! Not a worker: a blocking-pool thread (it never parks, so never opens one); a thread in
//! `block_in_place` (its worker went to another thread; the stack shows it, as for the other
//! sources); a thread that left the worker role with its busy period open (`block_in_place`
//! without the worker back, or a `block_on` caller after `block_on` returned): its stack runs
//! no tokio scheduler (`pollwatch-judge/src/on_worker.rs`).
//!
//! tokio's `Builder` keeps one callback per hook: setting them replaces any `on_thread_park`,
//! `on_thread_unpark` or `on_thread_stop` set before (`on_thread_start` is left alone).

use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::poll::{TaskInfo, WORKER_POLL};
use crate::source::location_cache::fields;
use crate::state::State;

/// The kind of the worker source's site, as reports show it.
pub(crate) const KIND: &str = "worker";

/// The name of the worker source's site: its polls are busy periods of no known task.
pub(crate) const NAME: &str = "worker (task unknown)";

/// Numbers the runtimes given these hooks in this process, for their poll ids.
static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// Sets `runtime`'s park, unpark and stop hooks to feed `state`, the busy periods at a site
/// of kind `worker` at `location` (where the application set them).
pub(crate) fn set_hooks(
    state: &Arc<State>,
    runtime: &mut tokio::runtime::Builder,
    location: &'static Location<'static>,
) {
    state.setup.installed();
    state.setup.source_needs_no_spans();
    state.subscriber.set_fallback_to_current();
    let site = state.sites.site_for(&fields(location, KIND, NAME));
    let poll = WORKER_POLL | (NEXT_RUNTIME.fetch_add(1, Relaxed) & (WORKER_POLL - 1));
    let busy = TaskInfo { task_id: 0, site };
    let (unpark, park, stop) = (state.clone(), state.clone(), state.clone());
    runtime
        .on_thread_unpark(move || unpark.poll.enter(poll, busy))
        .on_thread_park(move || park.poll.exit(poll))
        .on_thread_stop(move || stop.poll.exit(poll));
}

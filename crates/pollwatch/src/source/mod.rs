//! Poll sources: what observes tokio's task polls and feeds the poll path.
//!
//! A source does three things, and only these: it interns a task's spawn site once, when the
//! task is first seen ([`Sites::intern`](crate::sites::Sites::intern)); it calls
//! [`PollPath::enter`](crate::poll::PollPath::enter) / `exit` / `close` around every poll (see
//! the seam's contract in [`crate::poll`]); and it may tell the setup check what it saw.
//! Everything else (slots, watchdog, stall capture, reports, console, metrics) sits behind
//! the poll path and is the same for every source.
//!
//! | source | module | needs |
//! |---|---|---|
//! | tracing layer | [`layer`] | `--cfg tokio_unstable`, tokio's `tracing` feature, a `Registry` |
//! | runtime hooks | [`hooks`] | `--cfg tokio_unstable`, the runtime's `Builder` |
//! | watched futures | [`watched`] | nothing: each future to measure wrapped, or spawned with `pollwatch::spawn` |
//! | worker hooks | [`workers`] | nothing: the runtime's `Builder` (tokio's stable thread hooks); sees workers, not tasks |
//!
//! [`current`] is the pollwatch watched futures feed when not given one; [`location_cache`]
//! finds the site of a `&'static Location` without the site table's lock.

use std::panic::Location;
use std::sync::Arc;

use crate::state::State;

pub(crate) mod current;
pub(crate) mod location_cache;
#[cfg(tokio_unstable)]
pub(crate) mod hooks;
pub(crate) mod layer;
mod task_table;
pub(crate) mod watched;
pub(crate) mod workers;

/// Feeds `state` from `runtime`'s hooks, the best source the build allows: the task hooks
/// (every task's polls) under `--cfg tokio_unstable`, the stable worker hooks (a worker asleep
/// in a blocking call) otherwise. `location` is the call's, the worker site's location.
pub(crate) fn hook_runtime(
    state: &Arc<State>,
    runtime: &mut tokio::runtime::Builder,
    location: &'static Location<'static>,
) {
    #[cfg(tokio_unstable)]
    {
        let _ = location;
        hooks::set_hooks(state, runtime);
    }
    #[cfg(not(tokio_unstable))]
    workers::set_hooks(state, runtime, location);
}

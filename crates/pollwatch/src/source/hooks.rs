//! The runtime-hooks poll source: tokio's `on_before_task_poll` / `on_after_task_poll` (under
//! `--cfg tokio_unstable`) around every task poll, no tracing subscriber needed.
//!
//! What it sees: every poll of a task a runtime built with these hooks runs, with the task's id
//! and spawn location (`TaskMeta::spawned_at`). What it misses: the `block_on` root future, tasks
//! of a `LocalSet` (polled inside whatever drives it), task names, and a task's drop (tokio
//! calls no hook around it). Beside the tracing layer on one state, a poll both see is counted
//! once, at the layer's site (which has the name): [`PollPath::enter`] folds the layer's enter
//! into the hook's when both name the same task.
//!
//! The poll path here: the task id (read from `task::Id`'s `Hash`, which writes the id's
//! `u64`), then [`PollPath::enter_spawned`], which finds the site in the thread's slot by the
//! address of the `&'static Location` (`poll::site_cache`; on a miss, the per-thread
//! [`location_cache`](crate::source::location_cache), then the site table's lock), and
//! `exit`: one thread-local access per hook.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::runtime::TaskMeta;

use crate::poll::HOOK_POLL;
use crate::source::location_cache::site_of;
use crate::state::State;

/// The kind of the sites the hooks intern (tokio's name for a spawned task).
const KIND: &str = "task";

/// Sets the task spawn and poll hooks of `runtime` to feed `state`. Replaces any
/// `on_task_spawn`, `on_before_task_poll` or `on_after_task_poll` hook set on it before.
pub(crate) fn set_hooks(state: &Arc<State>, runtime: &mut tokio::runtime::Builder) {
    state.setup.installed();
    state.setup.source_needs_no_spans();
    state.subscriber.set_fallback_to_current();
    let spawn = state.clone();
    runtime.on_task_spawn(move |meta| {
        // Beside the layer, the layer counts the task (it saw the span first).
        if !spawn.layer_counts_spawns.load(Relaxed) {
            spawn
                .sites
                .count_task(site_of(&spawn, meta.spawned_at(), KIND));
        }
    });
    if state.poll.clock.reads_tsc() {
        set_poll_hooks::<true>(state, runtime);
    } else {
        set_poll_hooks::<false>(state, runtime);
    }
}

/// Sets the task poll hooks of `runtime`, for a clock that reads the time-stamp counter inline
/// (`TSC`) or not: chosen here once rather than on each clock read.
fn set_poll_hooks<const TSC: bool>(state: &Arc<State>, runtime: &mut tokio::runtime::Builder) {
    let before = state.clone();
    let after = state.clone();
    runtime
        .on_before_task_poll(move |meta| {
            let intern = |location| site_of(&before, location, KIND);
            before
                .poll
                .enter_spawned::<TSC>(task_id(meta), meta.spawned_at(), intern);
        })
        .on_after_task_poll(move |meta| {
            after.poll.exit_in::<TSC>(HOOK_POLL | task_id(meta));
        });
}

/// The `u64` of a task's id, as tokio's task spans record it (`task.id`).
fn task_id(meta: &TaskMeta<'_>) -> u64 {
    crate::task::id_u64(meta.id())
}

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
//! `u64`), the site from a per-thread direct-mapped cache keyed by the `&'static Location`
//! (the site table's lock only on a cache miss), then [`PollPath::enter`] / `exit`.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::runtime::TaskMeta;

use crate::poll::{TaskInfo, HOOK_POLL};
use crate::sites::SiteId;
use crate::state::State;
use crate::task::TaskFields;

/// Sets the task spawn and poll hooks of `runtime` to feed `state`. Replaces any
/// `on_task_spawn`, `on_before_task_poll` or `on_after_task_poll` hook set on it before.
pub(crate) fn attach(state: &Arc<State>, runtime: &mut tokio::runtime::Builder) {
    state.setup.installed();
    state.setup.source_needs_no_spans();
    state.subscriber.set_fallback_to_current();
    let spawn = state.clone();
    let before = state.clone();
    let after = state.clone();
    runtime
        .on_task_spawn(move |meta| {
            // Beside the layer, the layer counts the task (it saw the span first).
            if !spawn.layer_counts_spawns.load(Relaxed) {
                spawn.sites.count_task(site_of(&spawn, meta.spawned_at()));
            }
        })
        .on_before_task_poll(move |meta| {
            let task_id = task_id(meta);
            let site = site_of(&before, meta.spawned_at());
            before
                .poll
                .enter(HOOK_POLL | task_id, TaskInfo { task_id, site });
        })
        .on_after_task_poll(move |meta| {
            after.poll.exit(HOOK_POLL | task_id(meta));
        });
}

/// The `u64` of a task's id, as tokio's task spans record it (`task.id`).
fn task_id(meta: &TaskMeta<'_>) -> u64 {
    let mut id = IdWriter(0);
    meta.id().hash(&mut id);
    id.0
}

/// A `Hasher` that keeps the last `u64` written: `task::Id` hashes as its `NonZeroU64`.
struct IdWriter(u64);

impl Hasher for IdWriter {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Entries of the per-thread site cache (a power of two).
const CACHE: usize = 64;

thread_local! {
    /// (poll path id, location address, site index); a zero location is empty.
    static SITE_CACHE: [Cell<(u64, usize, u32)>; CACHE] =
        const { [const { Cell::new((0, 0, 0)) }; CACHE] };
}

/// The site of tasks spawned at `location`: from this thread's cache, else interned.
fn site_of(state: &State, location: &'static Location<'static>) -> SiteId {
    let address = std::ptr::from_ref(location) as usize;
    let key = state.poll.id();
    let slot = (address >> 3) & (CACHE - 1);
    let cached = SITE_CACHE
        .try_with(|cache| {
            let (owner, at, site) = cache[slot].get();
            (owner == key && at == address).then_some(SiteId::from_index(site))
        })
        .ok()
        .flatten();
    if let Some(site) = cached {
        return site;
    }
    let site = state.sites.site_for(&TaskFields {
        kind: "task".to_owned(),
        name: String::new(),
        task_id: 0,
        file: location.file().to_owned(),
        line: location.line(),
        col: location.column(),
    });
    let _ = SITE_CACHE.try_with(|cache| cache[slot].set((key, address, site.index())));
    site
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_read_through_hash_match_tokio_s() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for _ in 0..3 {
            let handle = rt.spawn(async {});
            let id = handle.id();
            let mut writer = IdWriter(0);
            id.hash(&mut writer);
            assert_eq!(writer.0.to_string(), id.to_string());
        }
    }
}

//! The watched-futures poll source: a wrapper future that measures each poll of the future it
//! wraps, in any build: no `--cfg tokio_unstable`, no tracing feature, no subscriber.
//!
//! What it sees: every poll of a future wrapped with [`Watch::watched`] (or spawned with
//! [`spawn`], or wrapped by [`Handle::watch`](crate::Handle::watch)), with its site: the
//! location of that call (`#[track_caller]`), and a name for [`Watch::watched_named`]. What it misses: every future that is not wrapped, and drops.
//!
//! Which pollwatch it feeds: the one given ([`Handle::watch`](crate::Handle::watch)), or the
//! current one ([`crate::source::current`]), resolved once when the wrapper is created. With
//! none, the wrapper polls its future and measures nothing: a branch per poll.
//!
//! Created: the site is interned once per wrapper (unnamed: from a per-thread cache of
//! locations, no lock on a hit; named: from the site table, which folds the name's digits and
//! keeps a few names per location), and counted as one task of its site (for [`spawn`], not
//! when the tracing layer already counts tasks: it counts this one at the same location).
//! Polled: the task
//! id from `tokio::task::try_id()` (0 outside a tokio task: the `block_on` root future, or
//! another executor), then [`PollPath::enter`](crate::poll::PollPath::enter) / `exit` with
//! the wrapper's poll id ([`WATCH_POLL`] and a number per wrapper), the exit also when the
//! future panics. No lock, no allocation.
//!
//! Beside the tracing layer or the runtime hooks, the poll of a task they already entered is
//! counted once, at the watched future's site (the finer one); a watched future polled inside
//! another of the same task names that poll too (see `PollPath::enter`).

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::poll::{TaskInfo, WATCH_POLL};
use crate::sites::SiteId;
use crate::source::current;
use crate::source::location_cache::{fields, site_of};
use crate::state::State;

/// The kind of a watched future's site, as reports show it.
const KIND: &str = "watched";

/// Numbers the watched futures of the process, for their poll ids.
static NEXT_POLL_ID: AtomicU64 = AtomicU64::new(1);

pin_project_lite::pin_project! {
    /// A future whose polls pollwatch measures: created by [`Watch::watched`],
    /// [`Watch::watched_named`], [`crate::Handle::watch`] and [`spawn`]. It polls the future it
    /// wraps and returns its output unchanged.
    #[must_use = "futures do nothing unless awaited or polled"]
    pub struct Watched<F> {
        #[pin]
        future: F,
        probe: Option<Probe>,
    }
}

/// Whether a watched future is a task `pollwatch::spawn` spawned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spawned {
    No,
    Yes,
}

/// What a measured wrapper needs on each poll.
struct Probe {
    state: Arc<State>,
    site: SiteId,
    poll: u64,
    /// Whether the wrapper is the future of a task `pollwatch::spawn` spawned: only that
    /// task ever polls it, so its id is read once.
    spawned: Spawned,
    /// The id of the task that polled it first (0: none yet, or outside any task).
    task_id: u64,
}

impl<F> std::fmt::Debug for Watched<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("measured", &self.is_measured())
            .finish_non_exhaustive()
    }
}

impl<F> Watched<F> {
    /// `future`, measured by `state` (by nothing when `None`) at the site of `location`
    /// (named `name`, unless empty).
    pub(crate) fn new(
        future: F,
        state: Option<Arc<State>>,
        location: &'static Location<'static>,
        name: &str,
        spawned: Spawned,
    ) -> Self {
        let probe = state.map(|state| {
            let site = if name.is_empty() {
                site_of(&state, location, KIND)
            } else {
                state.sites.site_for(&fields(location, KIND, name))
            };
            // A task the tracing layer saw spawned is counted at its spawn site already.
            if spawned == Spawned::No || !state.layer_counts_spawns.load(Relaxed) {
                state.sites.count_task(site);
            }
            if state.setup.saw_watched_future() {
                state.subscriber.set_fallback_to_current();
            }
            let poll = WATCH_POLL | (NEXT_POLL_ID.fetch_add(1, Relaxed) & (WATCH_POLL - 1));
            Probe {
                state,
                site,
                poll,
                spawned,
                task_id: 0,
            }
        });
        Self { future, probe }
    }

    /// Whether a pollwatch measures this future's polls (false when none was installed when
    /// it was created).
    pub fn is_measured(&self) -> bool {
        self.probe.is_some()
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(probe) = this.probe else {
            return this.future.poll(cx);
        };
        let task_id = match probe.spawned {
            // A task's own future: the task's id never changes.
            Spawned::Yes if probe.task_id != 0 => probe.task_id,
            Spawned::Yes => {
                probe.task_id = current_task_id();
                probe.task_id
            }
            // Polled inside whatever task polls it (a shared future: several).
            Spawned::No => current_task_id(),
        };
        probe.state.poll.enter(
            probe.poll,
            TaskInfo {
                task_id,
                site: probe.site,
            },
        );
        // The exit inline on return; the guard's drop (a call) only if the poll unwinds.
        let exit = Exit(probe);
        let poll = this.future.poll(cx);
        std::mem::forget(exit);
        probe.state.poll.exit(probe.poll);
        poll
    }
}

/// The id of the task being polled on this thread, 0 outside any.
fn current_task_id() -> u64 {
    tokio::task::try_id().map_or(0, crate::task::id_u64)
}

/// Ends the poll if the inner poll unwinds (on return, `poll` ends it inline).
struct Exit<'a>(&'a Probe);

impl Drop for Exit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.state.poll.exit(self.0.poll);
    }
}

/// Measures a future's polls: `use pollwatch::Watch;` then `future.watched()`. Implemented
/// for every future.
///
/// The future feeds the current pollwatch (the one built last: see
/// [`Handle::make_current`](crate::Handle::make_current)), resolved when `watched` is called;
/// with none, it runs unmeasured. Its site is where `watched` is called.
pub trait Watch: Future + Sized {
    /// This future, its polls measured at the site of this call.
    #[track_caller]
    fn watched(self) -> Watched<Self> {
        Watched::new(self, current::get(), Location::caller(), "", Spawned::No)
    }

    /// This future, its polls measured at the site of this call named `name`: a site of its
    /// own per name (digit runs folded to `#`, a few names per location: see
    /// [`Builder::names_per_location`](crate::Builder::names_per_location); further names
    /// share the location's site).
    #[track_caller]
    fn watched_named(self, name: &str) -> Watched<Self> {
        Watched::new(self, current::get(), Location::caller(), name, Spawned::No)
    }
}

impl<F: Future> Watch for F {}

/// `tokio::spawn`s `future`, its polls measured at the site of this call: works in a build
/// without `--cfg tokio_unstable`. Panics like `tokio::spawn` outside a runtime. For a named
/// site, spawn `future.watched_named(name)` with `tokio::spawn`.
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Watched::new(
        future,
        current::get(),
        Location::caller(),
        "",
        Spawned::Yes,
    ))
}

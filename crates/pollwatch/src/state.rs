//! The state one layer shares between the poll path, its background threads and its handle.
//! State only: it is assembled by [`crate::Builder::build`], and each subsystem that keeps
//! state of its own (the reporter's live files and console resources, the watchdog's followed
//! stalls) owns it there.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tracing_core::dispatcher::WeakDispatch;
use tracing_core::Dispatch;

use crate::diagnostics::Diagnostics;
use crate::poll::slow_ring::SlowRecord;
use crate::poll::PollPath;
use crate::setup_check::SetupCheck;
use crate::sites::{SiteId, Sites};
use crate::stall::book::Book;

#[derive(Debug)]
pub(crate) struct State {
    /// The wall-clock time the layer was built, which the poll clock's origin stands for:
    /// the only wall-clock reading; every "since start" figure comes from the poll clock.
    pub(crate) started_at: SystemTime,
    pub(crate) report_dir: PathBuf,
    pub(crate) tick: Duration,
    pub(crate) poll: PollPath,
    pub(crate) sites: Sites,
    pub(crate) setup: SetupCheck,
    /// The most recent finished slow polls, for reports.
    pub(crate) recent: Mutex<RecentSlowPolls>,
    pub(crate) diagnostics: Diagnostics,
    /// The subscriber the layer is installed in; the reporter emits events through it.
    pub(crate) subscriber: Subscriber,
    /// The stalls the watchdog caught.
    pub(crate) book: Mutex<Book>,
    /// What was lost beyond what the poll path and the book count.
    pub(crate) lost: Lost,
    /// The tracing layer has counted a spawned task: beside it, the runtime hooks leave
    /// counting tasks to it (it sees each task's span before the spawn hook runs).
    pub(crate) layer_counts_spawns: AtomicBool,
}

/// Counters of work pollwatch's threads had to give up.
#[derive(Debug, Default)]
pub(crate) struct Lost {
    /// Watchdog samples lost because the queue to the reporter was full.
    pub(crate) stall_samples: AtomicU64,
    /// Of those, the first looks at stalls, by site, until the reporter counts them in the
    /// book ([`crate::stall::book::Book::detections_lost`]): a stall is counted even when
    /// what the watchdog saw of it is lost. At most one entry per site.
    pub(crate) detections: Mutex<HashMap<SiteId, u64>>,
    /// Times writing the report files while running failed.
    pub(crate) report_writes: AtomicU64,
    /// Panics caught on pollwatch's threads (see `guarded`).
    pub(crate) host_panics: AtomicU64,
}

impl Lost {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

/// A finished slow poll kept for reports: the poll path's record and the thread it ran on.
#[derive(Clone, Debug)]
pub(crate) struct RecentSlowPoll {
    pub(crate) record: SlowRecord,
    pub(crate) thread: String,
}

/// The most recent slow polls, oldest first.
pub(crate) type RecentSlowPolls = VecDeque<RecentSlowPoll>;

/// The subscriber pollwatch's layer is installed in, held weakly (the subscriber holds the
/// layer, which holds this state).
#[derive(Debug, Default)]
pub(crate) struct Subscriber {
    dispatch: Mutex<Option<WeakDispatch>>,
}

impl Subscriber {
    /// Remembers the subscriber the layer was registered with.
    pub(crate) fn set(&self, dispatch: &Dispatch) {
        *self.dispatch.lock() = Some(dispatch.downgrade());
    }

    /// A source that is no layer (the runtime hooks): unless a layer says otherwise, events
    /// go to the subscriber that is the default on this thread now (pollwatch's own threads
    /// run under `NoSubscriber`, so they cannot ask later). Nothing when there is none.
    pub(crate) fn set_fallback_to_current(&self) {
        let mut dispatch = self.dispatch.lock();
        if dispatch.is_some() {
            return;
        }
        let current = tracing::dispatcher::get_default(Dispatch::clone);
        if !current.is::<tracing::subscriber::NoSubscriber>() {
            *dispatch = Some(current.downgrade());
        }
    }

    /// The subscriber, if it still exists.
    pub(crate) fn get(&self) -> Option<Dispatch> {
        self.dispatch
            .lock()
            .as_ref()
            .and_then(WeakDispatch::upgrade)
    }
}

impl State {
    /// The slow-poll threshold in nanoseconds (the poll path's; the one threshold there is).
    pub(crate) fn threshold_ns(&self) -> u64 {
        self.poll.threshold_ns
    }
}

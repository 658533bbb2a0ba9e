//! [`Check`], the guard that checks one test.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::config::{DEFAULT_THRESHOLD, MIN_TICK};
use crate::handle::Handle;
use crate::source::watched::Watched;
use crate::state::State;
use crate::testing::held::{self, Held, Verdict};
use crate::testing::runtime::{self, Flavor};

/// Checks one test: the polls of the runtimes it is given and of the futures it watches,
/// measured by a pollwatch of its own, and fails the test when one held its thread past the
/// threshold. What `#[pollwatch::test]` uses; for a test that builds its own runtime.
///
/// Its settings ([`threshold`](Self::threshold), [`allow`](Self::allow)) are given first:
/// the check starts (pollwatch's watchdog and reporter threads, for this check alone) at its
/// first [`runtime`](Self::runtime), [`watch`](Self::watch) or [`block_on`](Self::block_on).
/// It is never the process-wide current pollwatch, so tests running at once never feed each
/// other.
///
/// Dropped without [`assert_no_stalls`](Self::assert_no_stalls) or
/// [`stalls`](Self::stalls), it asserts then, unless the thread is already panicking (a
/// failing test is not failed twice).
#[derive(Debug)]
#[must_use = "a Check checks nothing until given a runtime or a future, and asserts when dropped"]
pub struct Check {
    threshold: Duration,
    allow: Vec<String>,
    handle: OnceLock<Handle>,
    /// Whether the verdict was given or taken: the drop gives it otherwise.
    judged: AtomicBool,
}

impl Default for Check {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            allow: Vec::new(),
            handle: OnceLock::new(),
            judged: AtomicBool::new(false),
        }
    }
}

impl Check {
    /// A check with the defaults: a threshold of [`DEFAULT_THRESHOLD`] (10 ms), nothing
    /// allowed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A poll that holds its thread for longer than this fails the test. Default
    /// [`DEFAULT_THRESHOLD`] (10 ms). Set it before the check starts.
    pub fn threshold(mut self, threshold: Duration) -> Self {
        self.threshold = threshold;
        self
    }

    /// Accepts the polls that held a thread where `entry` is part of the call site (a file,
    /// `src/legacy.rs`; its `file:line`; without line tables, its function) or of the site's
    /// label: they do not fail the test, and the failure message counts them.
    pub fn allow(mut self, entry: impl Into<String>) -> Self {
        self.allow.push(entry.into());
        self
    }

    /// What `#[pollwatch::test]` expands to: builds a runtime of `flavor` with this check on
    /// it, runs `body` on it, drops it, and returns `body`'s output once
    /// [`assert_no_stalls`](Self::assert_no_stalls) has passed.
    ///
    /// # Panics
    ///
    /// When a poll held a thread past the threshold (see
    /// [`assert_no_stalls`](Self::assert_no_stalls)), or the runtime cannot be built.
    #[doc(hidden)]
    #[track_caller]
    pub fn run<F: Future>(self, flavor: Flavor, body: F) -> F::Output {
        let mut builder = flavor.builder();
        self.runtime(&mut builder);
        let rt = builder
            .build()
            .unwrap_or_else(|e| panic!("pollwatch::test: cannot build the runtime: {e}"));
        let output = self.block_on(&rt, body);
        drop(rt);
        self.assert_no_stalls();
        output
    }

    /// This check's pollwatch, started at the first call.
    fn started(&self) -> &Handle {
        self.handle.get_or_init(|| {
            // The watchdog looks four times per threshold, so that a short stall is caught
            // while it runs, with its call site.
            let tick = (self.threshold / 4).max(MIN_TICK);
            crate::builder::Builder::new()
                .threshold(self.threshold)
                .tick(tick)
                .write_while_running(false)
                .build_unlisted()
        })
    }

    /// Watches the runtime `runtime` builds: with `--cfg tokio_unstable` every task's polls
    /// (tokio's task hooks: `on_task_spawn`, `on_before_task_poll`, `on_after_task_poll`);
    /// without it, the workers (the stable worker hooks: `on_thread_park`,
    /// `on_thread_unpark`, `on_thread_stop`), a worker asleep in a blocking call past the
    /// threshold. Also sets `on_thread_start`, so that what the runtime's threads wrap with
    /// `.watched()` or `pollwatch::spawn` feeds this check. tokio keeps one callback per hook:
    /// these replace any set before. No tracing subscriber is needed or installed.
    #[track_caller]
    pub fn runtime<'b>(
        &self,
        runtime: &'b mut tokio::runtime::Builder,
    ) -> &'b mut tokio::runtime::Builder {
        runtime::hook(self.started(), runtime, std::panic::Location::caller());
        runtime
    }

    /// `future`, each of its polls measured at the site of this call (in any build), and
    /// what it wraps with `.watched()` or `pollwatch::spawn` while polled fed to this check.
    /// Wrap the test's body in it: `block_on` runs its future on the calling thread, where
    /// no runtime hook sees it.
    #[track_caller]
    pub fn watch<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        let handle = self.started();
        Watching {
            inner: handle.watch(future),
            state: std::sync::Arc::downgrade(handle.state()),
        }
    }

    /// Runs `future`, [watched](Self::watch), on `runtime` (a runtime given to
    /// [`runtime`](Self::runtime)), once each of its workers has parked once: the worker
    /// hooks of a build without `--cfg tokio_unstable` see a worker from its first park on.
    #[track_caller]
    pub fn block_on<F: Future>(&self, runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
        let future = self.watch(future);
        runtime::settle(runtime);
        runtime.block_on(future)
    }

    /// Stops watching (pollwatch's threads finish describing what they caught) and returns
    /// the polls that held a thread past the threshold and are not allowed: what
    /// [`assert_no_stalls`](Self::assert_no_stalls) fails for. Polls after this are not
    /// judged, and the check no longer asserts when dropped: the caller has the verdict.
    pub fn stalls(&self) -> Vec<Held> {
        self.judged.store(true, Relaxed);
        self.verdict().failing
    }

    /// Stops watching and fails, listing each poll that held a thread past the threshold:
    /// its call site (or why it is unknown), blocking API, cause, duration and fix, and how
    /// many more the allow-list accepted.
    ///
    /// # Panics
    ///
    /// When a poll that is not allowed held a thread past the threshold.
    #[track_caller]
    pub fn assert_no_stalls(self) {
        self.judge();
    }

    /// This check's pollwatch, for its report.
    pub fn handle(&self) -> &Handle {
        self.started()
    }

    /// The verdict, once every pending stall and slow poll is reported.
    fn verdict(&self) -> Verdict {
        let handle = self.started();
        handle.shutdown();
        held::judge(&handle.report(), &self.allow)
    }

    /// Gives the verdict: panics when a poll fails the test.
    #[track_caller]
    fn judge(&self) {
        self.judged.store(true, Relaxed);
        let verdict = self.verdict();
        if !verdict.failing.is_empty() {
            panic!("{}", verdict.message());
        }
    }
}

impl Drop for Check {
    fn drop(&mut self) {
        if !self.judged.load(Relaxed) && !std::thread::panicking() {
            self.judge();
        }
    }
}

pin_project_lite::pin_project! {
    /// A future a [`Check`] watches: [`Check::watch`].
    #[must_use = "futures do nothing unless awaited or polled"]
    pub(crate) struct Watching<F> {
        #[pin]
        inner: Watched<F>,
        state: Weak<State>,
    }
}

impl<F> std::fmt::Debug for Watching<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watching").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Watching<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = crate::source::current::scope(this.state);
        this.inner.poll(cx)
    }
}

//! The [`Handle`]: reads a layer's measurements from any thread, at any time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pollwatch_report::error::WriteError;
use pollwatch_report::write::WrittenFiles;
use pollwatch_report::Report;

use crate::reporter::{self, Reporter};
use crate::snapshot;
use crate::source::watched::{Spawned, Watched};
use crate::state::State;
use crate::watchdog::Watchdog;

/// Reads one pollwatch's measurements, from any thread, at any time: returned by
/// [`Builder::build`](crate::Builder::build), and by [`crate::Guard::handle`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    state: Arc<State>,
    reporter: Arc<Reporter>,
    watchdog: Arc<Watchdog>,
}

impl Handle {
    pub(crate) fn new(state: Arc<State>, reporter: Arc<Reporter>, watchdog: Arc<Watchdog>) -> Self {
        Self {
            state,
            reporter,
            watchdog,
        }
    }

    /// A snapshot of everything measured so far. Slow polls that ended within the last
    /// millisecond may not be listed yet; every poll is already counted.
    pub fn report(&self) -> Report {
        snapshot::take(&self.state)
    }

    /// Writes `report.json`, `report.txt` and the interval log `report.hlog` into `dir`
    /// (created if missing), the reports atomically (a temporary file renamed over the old
    /// one). Call it as often as you like.
    ///
    /// The interval log is the one kept while running (see
    /// [`Builder::report_dir`](crate::Builder::report_dir)), first given an interval up to
    /// now, and copied when `dir` is elsewhere; without one, it is a log of one interval
    /// covering the whole run.
    pub fn write_report(&self, dir: impl AsRef<Path>) -> Result<WrittenFiles, WriteError> {
        self.reporter.write_report(&self.state, dir.as_ref())
    }

    /// Feeds this pollwatch from `runtime`'s hooks too, the ones the build allows (see
    /// [`Builder::runtime`](crate::Builder::runtime)): for a service that uses both the layer
    /// ([`crate::init`] or [`Builder::build`](crate::Builder::build)) and a runtime it builds.
    /// A poll both the layer and the task hooks see is counted once, at the layer's site,
    /// which has the task's name.
    ///
    /// ```no_run
    /// let guard = pollwatch::init();
    /// let mut runtime = tokio::runtime::Builder::new_multi_thread();
    /// guard.handle().runtime(runtime.enable_all());
    /// let runtime = runtime.build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn runtime(&self, runtime: &mut tokio::runtime::Builder) {
        crate::source::hook_runtime(&self.state, runtime, std::panic::Location::caller());
    }

    /// `future`, its polls measured by this pollwatch at the site of this call, whichever
    /// pollwatch is current: for a process with several. See [`crate::Watch::watched`].
    #[track_caller]
    pub fn watch<F: std::future::Future>(&self, future: F) -> Watched<F> {
        Watched::new(
            future,
            Some(self.state.clone()),
            std::panic::Location::caller(),
            "",
            Spawned::No,
        )
    }

    /// Makes this the current pollwatch: the one watched futures created from now on without
    /// a handle ([`crate::Watch::watched`], [`crate::spawn`]) feed. Every pollwatch is current
    /// when built, until the next one is built; none is once the current one's handles,
    /// guard and layer are all dropped.
    pub fn make_current(&self) {
        crate::source::current::set(&self.state);
    }

    /// The slow-poll threshold in force.
    pub fn threshold(&self) -> Duration {
        Duration::from_nanos(self.state.threshold_ns())
    }

    /// The directory [`crate::Guard`] writes the report to.
    pub fn report_dir(&self) -> &Path {
        &self.state.report_dir
    }

    /// Problems with the setup that pollwatch has noticed, as sentences saying what to change.
    pub fn diagnostics(&self) -> Vec<String> {
        self.state.diagnostics.all()
    }

    /// Whether the setup check (see [`crate::Builder::setup_check_after`]) has run.
    pub fn setup_checked(&self) -> bool {
        self.state.setup.is_done()
    }

    /// Reports every finished slow poll now, without waiting for the reporter's next tick
    /// (and reclaims the slots of threads that exited).
    pub fn flush(&self) {
        reporter::drain(&self.state, true);
        self.state.poll.reclaim_exited();
    }

    /// Stops pollwatch's background threads (the watchdog, then the reporter, after it has
    /// reported what is pending). The layer keeps counting; [`Handle::report`] keeps working.
    pub fn shutdown(&self) {
        self.watchdog.stop();
        self.reporter.stop();
    }

    /// How many thread slots the layer holds, reclaimed ones included.
    pub(crate) fn slot_count(&self) -> usize {
        self.state.poll.slot_list().len()
    }

    /// The watchdog thread's OS thread id (0 before it has started or where unknown).
    pub(crate) fn watchdog_tid(&self) -> i32 {
        self.watchdog.tid()
    }

    /// Adds pollwatch's metrics to `registry`: they are computed from this layer's state each
    /// time the registry is encoded. Register into a registry once.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        crate::metrics::register(&self.state, registry);
    }

    /// This layer's metrics in the Prometheus text format 0.0.4, as `/metrics` serves them.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn metrics_text(&self) -> String {
        crate::metrics::text(&self.state)
    }

    /// Serves this layer's metrics on `GET /metrics` at `addr` from pollwatch's own threads
    /// (port 0 picks a free port: see [`MetricsServer::local_addr`]), until the returned
    /// server is dropped. For a layer installed by [`crate::init`], the [`crate::Guard`]
    /// already does this.
    ///
    /// [`MetricsServer::local_addr`]: crate::MetricsServer::local_addr
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn serve_metrics(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<crate::metrics::MetricsServer> {
        crate::metrics::start(&self.state, addr)
    }

    /// The layer's state, for the builder's setup.
    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }
}

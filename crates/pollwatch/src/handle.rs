//! The [`Handle`]: reads a layer's measurements from any thread, at any time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pollwatch_report::error::WriteError;
use pollwatch_report::write::WrittenFiles;
use pollwatch_report::Report;

use crate::reporter::{self, Reporter};
use crate::shared::Shared;
use crate::watchdog::Watchdog;

/// How many sites the text report lists.
pub const TEXT_REPORT_TOP_SITES: usize = 20;

/// Reads the measurements of one [`crate::PollWatchLayer`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    shared: Arc<Shared>,
    reporter: Arc<Reporter>,
    watchdog: Arc<Watchdog>,
}

impl Handle {
    pub(crate) fn new(
        shared: Arc<Shared>,
        reporter: Arc<Reporter>,
        watchdog: Arc<Watchdog>,
    ) -> Self {
        Self {
            shared,
            reporter,
            watchdog,
        }
    }

    /// The layer's state, for the metrics collector.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A snapshot of everything measured so far. Slow polls that ended within the last
    /// millisecond may not be listed yet; every poll is already counted.
    pub fn report(&self) -> Report {
        crate::snapshot::take(&self.shared)
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
        match self.shared.files.lock() {
            Ok(mut files) => files.write_to(&self.shared, dir.as_ref()),
            Err(_) => pollwatch_report::write::write_dir(
                dir.as_ref(),
                &self.report(),
                TEXT_REPORT_TOP_SITES,
            ),
        }
    }

    /// The slow-poll threshold in force.
    pub fn threshold(&self) -> Duration {
        self.shared.threshold
    }

    /// The directory [`crate::Guard`] writes the report to.
    pub fn report_dir(&self) -> &Path {
        &self.shared.report_dir
    }

    /// Problems with the setup that pollwatch has noticed, as sentences saying what to change.
    pub fn diagnostics(&self) -> Vec<String> {
        self.shared
            .diagnostics
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Whether the setup check (see [`crate::Builder::setup_check_after`]) has run.
    pub fn setup_checked(&self) -> bool {
        self.shared.setup.is_done()
    }

    /// Reports every finished slow poll now, without waiting for the reporter's next tick.
    pub fn flush(&self) {
        reporter::drain(&self.shared, true);
    }

    /// Stops pollwatch's background threads (the watchdog, then the reporter, after it has
    /// reported what is pending). The layer keeps counting; [`Handle::report`] keeps working.
    pub fn shutdown(&self) {
        self.watchdog.stop();
        self.reporter.stop();
    }

    /// The watchdog thread's OS thread id (0 before it has started or where unknown), for
    /// measuring its own CPU use.
    pub fn watchdog_tid(&self) -> i32 {
        self.watchdog.tid()
    }
}

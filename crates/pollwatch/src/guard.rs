//! The [`Guard`] [`crate::init`] returns: it keeps pollwatch's outputs running and writes
//! the report when dropped.

use pollwatch_report::error::WriteError;
use pollwatch_report::write::WrittenFiles;

use crate::diagnostics::say;
use crate::handle::Handle;

/// Returned by [`crate::init`]: dropping it reports what is pending and writes the report
/// into the report directory (`POLLWATCH_REPORT_DIR`, default `target/pollwatch`).
#[derive(Debug)]
#[must_use = "dropping the guard immediately writes the report and stops reporting"]
pub struct Guard {
    handle: Handle,
    finished: bool,
    /// The `/metrics` endpoint (feature `prometheus`), stopped when the guard is dropped.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    metrics: Option<crate::metrics::Server>,
    /// The thread publishing through the `metrics` facade (feature `metrics`) and into
    /// OpenTelemetry (feature `opentelemetry`).
    #[cfg(any(feature = "metrics", feature = "opentelemetry"))]
    publishing: crate::metrics::Publishing,
}

impl Guard {
    pub(crate) fn new(handle: Handle, metrics: Option<crate::metrics::Server>) -> Self {
        Self {
            #[cfg(any(feature = "metrics", feature = "opentelemetry"))]
            publishing: crate::metrics::Publishing::start(handle.state()),
            handle,
            finished: false,
            metrics,
        }
    }

    /// The handle of the installed layer.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops pollwatch's threads after they have reported what is pending, and writes the
    /// report to the report directory once, returning where (dropping the guard afterwards
    /// writes nothing more).
    pub fn finish(mut self) -> Result<WrittenFiles, WriteError> {
        self.shut_down_and_write()
    }

    /// Where `/metrics` is served, unless [`Builder::metrics`](crate::Builder::metrics)
    /// switched it off.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(crate::MetricsServer::local_addr)
    }

    /// Publishes pollwatch's metrics now, through the `metrics` facade into whatever recorder
    /// is installed (feature `metrics`) and into OpenTelemetry's global meter provider
    /// (feature `opentelemetry`). A pollwatch thread does it every second, and once more when
    /// the guard is dropped; this is for reading them at once (at the end of a test, say).
    #[cfg(any(feature = "metrics", feature = "opentelemetry"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "metrics", feature = "opentelemetry"))))]
    pub fn publish_metrics(&self) {
        self.publishing.publish_now();
    }

    /// The one way a guard ends: stop the threads, then write the report.
    fn shut_down_and_write(&mut self) -> Result<WrittenFiles, WriteError> {
        self.finished = true;
        self.handle.shutdown();
        #[cfg(any(feature = "metrics", feature = "opentelemetry"))]
        self.publishing.stop();
        let dir = self.handle.report_dir().to_owned();
        self.handle.write_report(dir)
    }
}

/// Dropped also while the application unwinds from a panic: nothing here may panic then (that
/// would abort the process), so it says where the report went without `eprintln!`.
impl Drop for Guard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        match self.shut_down_and_write() {
            Ok(files) => say(&format!(
                "pollwatch: report written to {}",
                files.text.display()
            )),
            Err(e) => say(&format!("pollwatch: {e}")),
        }
    }
}

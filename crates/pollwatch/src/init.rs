//! One-line setup: `pollwatch::init()` installs a registry with a fmt layer and pollwatch's
//! layer as the global default subscriber, and returns a [`Guard`] that writes the report.

use std::fmt;

use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::builder::{Builder, ConfigError, PollWatch};
use crate::handle::Handle;
use pollwatch_report::error::WriteError;
use pollwatch_report::write::WrittenFiles;

/// The fmt layer's filter when `RUST_LOG` is not set.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// Installs pollwatch as the global subscriber: a `tracing_subscriber::registry()` with a fmt
/// layer on stderr (filtered by `RUST_LOG`, default `info`; the filter applies to the fmt
/// layer only, so tokio's task spans still reach pollwatch) and the pollwatch layer,
/// configured from the `POLLWATCH_*` variables. With the `console` feature, also
/// console-subscriber's `ConsoleLayer`, serving the tokio-console feed on `TOKIO_CONSOLE_BIND`
/// (default `127.0.0.1:6669`). With the `prometheus` feature, also `/metrics` on
/// `POLLWATCH_METRICS_ADDR` (default `127.0.0.1:9464`), served until the guard is dropped.
///
/// # Panics
///
/// With a clear message when a `POLLWATCH_*` variable or `RUST_LOG` is invalid, or when a
/// global subscriber is already installed. Use [`try_init`] to handle those as errors.
#[must_use = "dropping the guard immediately writes the report and stops reporting"]
pub fn init() -> Guard {
    match try_init() {
        Ok(guard) => guard,
        Err(e) => panic!("pollwatch::init: {e}"),
    }
}

/// Like [`init`], returning an error instead of panicking.
pub fn try_init() -> Result<Guard, InitError> {
    PollWatch::builder().with_default_env()?.try_init()
}

impl Builder {
    /// Installs this configuration like [`crate::init`] does (the `POLLWATCH_*` variables are
    /// only read if [`Builder::with_default_env`] was called).
    pub fn try_init(self) -> Result<Guard, InitError> {
        let filter = match std::env::var("RUST_LOG") {
            Ok(spec) => {
                EnvFilter::try_new(&spec).map_err(|e| InitError::LogFilter(e.to_string()))?
            }
            Err(_) => EnvFilter::new(DEFAULT_LOG_FILTER),
        };
        // Feature `console`: console-subscriber's layer and its server (None without it).
        let console = self.console.init_layer::<tracing_subscriber::Registry>()?;
        let metrics = self.metrics.clone();
        let (layer, handle) = self.write_while_running(true).build();
        // Feature `prometheus`: `/metrics` on pollwatch's own thread (None without it).
        let metrics = metrics.serve(&handle)?;
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        tracing_subscriber::registry()
            .with(console)
            .with(fmt)
            .with(layer)
            .try_init()
            .map_err(|e| InitError::AlreadyInstalled(e.to_string()))?;
        Ok(Guard {
            handle,
            written: false,
            metrics,
        })
    }
}

/// Returned by [`init`]: dropping it reports what is pending and writes the report into the
/// report directory (`POLLWATCH_REPORT_DIR`, default `target/pollwatch`).
#[derive(Debug)]
#[must_use = "dropping the guard immediately writes the report and stops reporting"]
pub struct Guard {
    handle: Handle,
    written: bool,
    /// The `/metrics` endpoint (feature `prometheus`), stopped when the guard is dropped.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) metrics: Option<crate::metrics::Server>,
}

impl Guard {
    /// The handle of the installed layer.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops pollwatch's threads after they have reported what is pending, and writes the
    /// report to the report directory once, returning where (dropping the guard afterwards
    /// writes nothing more).
    pub fn finish(mut self) -> Result<WrittenFiles, WriteError> {
        self.written = true;
        self.handle.shutdown();
        let dir = self.handle.report_dir().to_owned();
        self.handle.write_report(dir)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.written {
            return;
        }
        self.handle.shutdown();
        let dir = self.handle.report_dir().to_owned();
        match self.handle.write_report(&dir) {
            Ok(files) => eprintln!("pollwatch: report written to {}", files.text.display()),
            Err(e) => eprintln!("pollwatch: {e}"),
        }
    }
}

/// Why [`try_init`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// A `POLLWATCH_*` variable is invalid.
    Config(ConfigError),
    /// `RUST_LOG` is not a valid filter.
    LogFilter(String),
    /// A global subscriber was already installed; compose pollwatch's layer into it instead.
    AlreadyInstalled(String),
    /// The tokio-console feed (feature `console`) cannot be served: the address is taken, or
    /// the build lacks `--cfg tokio_unstable`.
    Console(String),
    /// The `/metrics` endpoint (feature `prometheus`) cannot be served: the address is taken
    /// or not this machine's.
    Metrics(String),
}

impl From<ConfigError> for InitError {
    fn from(e: ConfigError) -> Self {
        InitError::Config(e)
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Config(e) => write!(f, "{e}"),
            InitError::LogFilter(e) => write!(f, "RUST_LOG is not a valid filter: {e}"),
            InitError::AlreadyInstalled(e) => write!(
                f,
                "a global tracing subscriber is already installed ({e}); add \
                 `PollWatch::builder().build()`'s layer to it instead"
            ),
            InitError::Console(e) => write!(f, "tokio-console: {e}"),
            InitError::Metrics(e) => write!(f, "prometheus: {e}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Config(e) => Some(e),
            _ => None,
        }
    }
}

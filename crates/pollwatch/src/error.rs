//! [`InitError`]: why installing pollwatch failed, and what to change.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{ConfigError, ENV_REPORT_DIR};

/// Why [`crate::try_init`] (or [`Builder::try_init`](crate::Builder::try_init)) failed. Its
/// message says what to change; the underlying error is its
/// [`source`](std::error::Error::source).
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// A `POLLWATCH_*` variable is invalid.
    Config(ConfigError),
    /// `RUST_LOG` is not a valid filter.
    LogFilter(tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed; add pollwatch's layer to it instead
    /// ([`Builder::build`](crate::Builder::build)).
    AlreadyInstalled,
    /// The tokio-console feed (feature `console`) needs a build with `--cfg tokio_unstable`.
    ConsoleNeedsTokioUnstable,
    /// The tokio-console feed (feature `console`) cannot be served on `addr`
    /// (`TOKIO_CONSOLE_BIND`).
    ConsoleAddr {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it cannot be bound.
        source: io::Error,
    },
    /// The tokio-console recording (feature `console`, `TOKIO_CONSOLE_RECORD_PATH`) cannot be
    /// written.
    ConsoleRecording {
        /// The recording file.
        path: PathBuf,
        /// Why it cannot be created.
        source: io::Error,
    },
    /// The `/metrics` endpoint (feature `prometheus`) cannot be served on `addr`
    /// (`POLLWATCH_METRICS_ADDR`).
    MetricsAddr {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it cannot be bound.
        source: io::Error,
    },
    /// The report directory (`POLLWATCH_REPORT_DIR`) cannot be created or written.
    ReportDir {
        /// The directory.
        dir: PathBuf,
        /// Why a file cannot be written there.
        source: io::Error,
    },
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
            InitError::AlreadyInstalled => f.write_str(
                "a global tracing subscriber is already installed; add \
                 `pollwatch::Builder::new().build()`'s layer to it instead",
            ),
            InitError::ConsoleNeedsTokioUnstable => f.write_str(
                "tokio-console: the feed needs a build with `--cfg tokio_unstable` (RUSTFLAGS \
                 or .cargo/config.toml `[build] rustflags`)",
            ),
            InitError::ConsoleAddr { addr, source } => write!(
                f,
                "tokio-console: cannot serve the console feed on {addr} ({source}); set \
                 TOKIO_CONSOLE_BIND to a free address"
            ),
            InitError::ConsoleRecording { path, source } => write!(
                f,
                "tokio-console: cannot write the console recording to {} ({source}); set \
                 TOKIO_CONSOLE_RECORD_PATH to a writable file",
                path.display()
            ),
            InitError::MetricsAddr { addr, source } => write!(
                f,
                "prometheus: cannot serve /metrics on {addr} ({source}); set \
                 POLLWATCH_METRICS_ADDR to a free address"
            ),
            InitError::ReportDir { dir, source } => write!(
                f,
                "report files: cannot write report files in {} ({source}); set \
                 {ENV_REPORT_DIR} to a writable directory",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Config(e) => Some(e),
            InitError::LogFilter(e) => Some(e),
            InitError::ConsoleAddr { source, .. }
            | InitError::ConsoleRecording { source, .. }
            | InitError::MetricsAddr { source, .. }
            | InitError::ReportDir { source, .. } => Some(source),
            InitError::AlreadyInstalled | InitError::ConsoleNeedsTokioUnstable => None,
        }
    }
}

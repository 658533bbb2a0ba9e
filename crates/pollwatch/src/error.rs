//! [`InitError`]: why installing pollwatch failed.

use std::fmt;

use crate::config::ConfigError;

/// Why [`crate::try_init`] failed.
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
    /// The report directory cannot be created or written.
    ReportDir(String),
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
            InitError::ReportDir(e) => write!(f, "report files: {e}"),
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

#![doc = include_str!("../../../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules, bottom layer first: each uses only the modules declared before it (the test
// `modules_depend_only_downward` checks it; ARCHITECTURE.md at the repository root explains
// the layers).

// Foundations: settings, threads, diagnostics, errors, what a task span says.
mod background;
mod config;
mod diagnostics;
mod error;
mod task;
// Observe: the site table, the poll path behind the poll-source seam, the setup check.
mod sites;
mod poll;
mod setup_check;
// Detect and describe: stalls, typed, with their causes and fixes.
mod stall;
// The state one layer shares; running code that may panic on pollwatch's threads.
mod state;
mod guarded;
// Reading the state into a report; the poll sources; the watchdog.
mod snapshot;
mod source;
mod watchdog;
// Emit: the tokio-console bridge (the real one with the `console` feature, no-ops without).
#[cfg(feature = "console")]
mod console;
#[cfg(not(feature = "console"))]
#[path = "console/off.rs"]
mod console;
// The reporter thread: events, console resources, report files.
mod reporter;
// Prometheus metrics (the collector and `/metrics` with the `prometheus` feature).
#[cfg(feature = "prometheus")]
mod metrics;
#[cfg(not(feature = "prometheus"))]
#[path = "metrics/off.rs"]
mod metrics;
// Read and assemble: the handle, the guard `init()` returns, the builder, `init()`.
mod handle;
mod guard;
mod builder;
mod init;
// Tests that fail when they block the runtime: `#[pollwatch::test]` and its guard.
pub mod testing;

#[doc(hidden)]
pub mod test_support;

pub use builder::{Builder, PollWatch};
pub use config::{
    ConfigError, DEFAULT_FLUSH_EVERY, DEFAULT_LOG_FILTER, DEFAULT_LOG_INTERVAL,
    DEFAULT_LOG_MAX_BYTES, DEFAULT_MAX_SITES, DEFAULT_NAMES_PER_LOCATION, DEFAULT_REPORT_DIR,
    DEFAULT_SETUP_CHECK_AFTER, DEFAULT_STALL_WARNINGS_PER_MINUTE, DEFAULT_THRESHOLD, DEFAULT_TICK,
    ENV_BACKTRACE, ENV_MAX_SITES, ENV_REPORT_DIR, ENV_SIGNAL, ENV_THRESHOLD, MAX_SITES_LIMIT,
    MIN_LOG_INTERVAL, MIN_TICK, TARGET, TEXT_REPORT_TOP_SITES,
};
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub use config::{DEFAULT_CONSOLE_BIND, ENV_CONSOLE_BIND};
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use config::{DEFAULT_METRICS_ADDR, ENV_METRICS_ADDR};
pub use error::InitError;
pub use guard::Guard;
pub use handle::Handle;
#[cfg(tokio_unstable)]
#[cfg_attr(docsrs, doc(cfg(tokio_unstable)))]
pub use init::hooks;
pub use init::{init, runtime, try_init};
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use metrics::{MetricsServer, POLL_DURATION_BUCKETS};
pub use pollwatch_macros::test;
pub use pollwatch_report as report;
pub use pollwatch_report::Report;
pub use source::layer::PollWatchLayer;
pub use source::watched::{spawn, spawn_named, Watch, Watched};

#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod background;
mod builder;
// The tokio-console bridge: the real one with the `console` feature, no-ops without it.
#[cfg(feature = "console")]
mod console;
#[cfg(not(feature = "console"))]
#[path = "console/off.rs"]
mod console;
mod handle;
mod init;
mod layer;
// Prometheus metrics: the collector and `/metrics` with the `prometheus` feature, no-ops without.
#[cfg(feature = "prometheus")]
mod metrics;
#[cfg(not(feature = "prometheus"))]
#[path = "metrics/off.rs"]
mod metrics;
mod poll;
mod reporter;
mod shared;
mod sites;
mod snapshot;
mod stall;
mod task;
mod watchdog;

pub use builder::{
    Builder, ConfigError, PollWatch, DEFAULT_FLUSH_EVERY, DEFAULT_LOG_INTERVAL,
    DEFAULT_LOG_MAX_BYTES, DEFAULT_MAX_SITES, DEFAULT_REPORT_DIR, DEFAULT_SETUP_CHECK_AFTER,
    DEFAULT_STALL_WARNINGS_PER_MINUTE, DEFAULT_THRESHOLD, DEFAULT_TICK, ENV_BACKTRACE,
    ENV_MAX_SITES, ENV_REPORT_DIR, ENV_THRESHOLD, MAX_SITES_LIMIT, MIN_LOG_INTERVAL, MIN_TICK,
};
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub use console::{DEFAULT_CONSOLE_BIND, ENV_CONSOLE_BIND};
pub use handle::{Handle, TEXT_REPORT_TOP_SITES};
pub use init::{init, try_init, Guard, InitError, DEFAULT_LOG_FILTER};
pub use layer::PollWatchLayer;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use metrics::{
    MetricsServer, DEFAULT_METRICS_ADDR, ENV_METRICS_ADDR, HEAD_TIMEOUT, MAX_HEAD_BYTES,
    POLL_DURATION_BUCKETS,
};
pub use pollwatch_report as report;
pub use pollwatch_report::Report;
pub use reporter::events::TARGET;

#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod background;
mod builder;
mod handle;
mod init;
mod layer;
mod poll;
mod reporter;
mod shared;
mod sites;
mod snapshot;
mod stall;
mod task;
mod watchdog;

pub use builder::{
    Builder, ConfigError, PollWatch, DEFAULT_MAX_SITES, DEFAULT_REPORT_DIR,
    DEFAULT_SETUP_CHECK_AFTER, DEFAULT_STALL_WARNINGS_PER_MINUTE, DEFAULT_THRESHOLD, DEFAULT_TICK,
    ENV_BACKTRACE, ENV_MAX_SITES, ENV_REPORT_DIR, ENV_THRESHOLD, MAX_SITES_LIMIT, MIN_TICK,
};
pub use handle::{Handle, TEXT_REPORT_TOP_SITES};
pub use init::{init, try_init, Guard, InitError, DEFAULT_LOG_FILTER};
pub use layer::PollWatchLayer;
pub use pollwatch_report as report;
pub use pollwatch_report::Report;
pub use reporter::events::TARGET;

//! pollwatch finds the tokio task polls that hold a worker thread too long, and names the line
//! of code that blocked.
//!
//! A poll that holds its thread past a threshold (10 ms by default) is caught *while it runs*
//! by a watchdog thread, which says what the thread is doing (a syscall and the file or socket
//! it waits on, a lock, CPU), captures its stack down to the blocking call, and names the
//! blocking API and the fix. Every poll is timed into a histogram per spawn site; the report
//! files (`report.json`, `report.txt`, the interval log `report.hlog`) are kept current while
//! the service runs and are read with the `pollwatch` command.
//!
//! # One call per situation
//!
//! | situation | call |
//! | --- | --- |
//! | a service (`--cfg tokio_unstable`) | [`init()`]: logs on stderr and pollwatch's layer, as the global subscriber |
//! | your own `tracing` subscriber | [`Builder::build`]: the [`PollWatchLayer`] to add, and its [`Handle`] |
//! | a service that builds its runtime, in any build | [`runtime()`]: the best hooks the build allows |
//! | futures to measure in a build without the flag | [`spawn()`], [`Watch::watched`] |
//! | a test that must not block | [`#[pollwatch::test]`](macro@test), [`testing::Check`] |
//! | any setting | [`Builder`], whose defaults are in [`config`] |
//!
//! A service:
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() {
//!     let _guard = pollwatch::init(); // report written when dropped
//!     // ... run the service ...
//! }
//! ```
//!
//! A runtime built by hand, with a future whose polls are measured in any build. The stall
//! is in the report (and a WARN event), with the line that blocked:
//!
//! ```
//! use std::time::Duration;
//! use pollwatch::Watch;
//!
//! let dir = std::env::temp_dir().join("pollwatch-doc-example");
//! let mut runtime = tokio::runtime::Builder::new_current_thread();
//! let guard = pollwatch::Builder::new()
//!     .threshold(Duration::from_millis(10))
//!     .report_dir(&dir)
//!     .runtime(runtime.enable_all());
//! runtime.build()?.block_on(
//!     async { std::thread::sleep(Duration::from_millis(50)) }.watched(),
//! );
//! guard.handle().flush();
//! let report = guard.handle().report();
//! assert_eq!(report.totals.slow_polls, 1);
//! let written = guard.finish()?; // report.json, report.txt, report.hlog
//! assert!(written.text.exists());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Composed into a subscriber of your own (filter the output layers, not the registry, or
//! the filter hides tokio's TRACE task spans from pollwatch):
//!
//! ```no_run
//! use tracing_subscriber::{fmt, prelude::*, EnvFilter};
//!
//! let (layer, handle) = pollwatch::Builder::new().build();
//! tracing_subscriber::registry()
//!     .with(fmt::layer().with_filter(EnvFilter::from_default_env()))
//!     .with(layer)
//!     .init();
//! // later, from any thread:
//! let report: pollwatch::Report = handle.report();
//! handle.write_report("target/pollwatch")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A test that fails when a poll blocks its thread, with the line and the fix in its message:
//!
//! ```
//! #[pollwatch::test]
//! async fn answers_without_blocking() {
//!     tokio::task::yield_now().await;
//! }
//! ```
//!
//! # Features
//!
//! - `console`: [`init()`] also serves the tokio-console feed (console-subscriber's
//!   `ConsoleLayer`), and each site that stalled is a `BlockingSite` resource in it.
//! - `prometheus`: [`init()`] and [`runtime()`] also serve `/metrics`; [`Handle`] can register
//!   the same metrics into your own `prometheus_client` registry.
//!
//! The guide (setup, reports and the `pollwatch` command, tokio-console, Prometheus, tests,
//! configuration, how it works, limitations) is the `docs/` folder of the repository.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules, bottom layer first: each uses only the modules declared before it (the test
// `modules_depend_only_downward` checks it; ARCHITECTURE.md at the repository root explains
// the layers).

// Foundations: settings, threads, diagnostics, errors, what a task span says.
mod background;
pub mod config;
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
// Metrics: the families, the collector and `/metrics` (feature `prometheus`), the `metrics`
// facade (feature `metrics`), OpenTelemetry (feature `opentelemetry`).
#[cfg(any(feature = "prometheus", feature = "metrics", feature = "opentelemetry"))]
mod metrics;
#[cfg(not(any(feature = "prometheus", feature = "metrics", feature = "opentelemetry")))]
#[path = "metrics/off.rs"]
mod metrics;
// Read and assemble: the handle, the guard `init()` returns, the builder, `init()`.
mod handle;
mod guard;
mod builder;
mod init;
// Tests that fail when they block the runtime: `#[pollwatch::test]` and its guard.
pub mod testing;
// Each route of an axum service a site of its own.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
// Each route of an actix-web service a site of its own.
#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix;
// Each gRPC method of a tonic service (each path of a tower service) a site of its own.
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

/// Every Rust block in the README and the guide's pages, compiled and run as a doctest.
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../../../README.md")]
    mod readme {}
    #[doc = include_str!("../../../docs/setup.md")]
    mod setup {}
    #[doc = include_str!("../../../docs/reports.md")]
    mod reports {}
    #[doc = include_str!("../../../docs/harm.md")]
    mod harm {}
    #[doc = include_str!("../../../docs/testing.md")]
    mod testing {}
    #[doc = include_str!("../../../docs/console.md")]
    mod console {}
    #[doc = include_str!("../../../docs/prometheus.md")]
    mod prometheus {}
    #[cfg(all(feature = "prometheus", feature = "metrics", feature = "opentelemetry"))]
    #[doc = include_str!("../../../docs/existing-metrics.md")]
    mod existing_metrics {}
    #[doc = include_str!("../../../docs/configuration.md")]
    mod configuration {}
    #[doc = include_str!("../../../docs/how-it-works.md")]
    mod how_it_works {}
    #[doc = include_str!("../../../docs/poll-sources.md")]
    mod poll_sources {}
    #[doc = include_str!("../../../docs/limitations.md")]
    mod limitations {}
}

#[doc(hidden)]
pub mod test_support;

pub use builder::Builder;
pub use error::InitError;
pub use guard::Guard;
pub use handle::Handle;
pub use init::{init, runtime, try_init};
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use metrics::MetricsServer;
pub use pollwatch_macros::test;
pub use pollwatch_report as report;
pub use pollwatch_report::Report;
pub use source::layer::PollWatchLayer;
pub use source::watched::{spawn, Watch, Watched};

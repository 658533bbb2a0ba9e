//! One-line setup: `pollwatch::init()` installs a registry with a fmt layer and pollwatch's
//! layer as the global default subscriber, and returns a [`Guard`] that writes the report.

use crate::builder::Builder;
use crate::error::InitError;
use crate::guard::Guard;

/// Installs pollwatch as the global subscriber: a `tracing_subscriber::registry()` with a fmt
/// layer on stderr (filtered by `RUST_LOG`, default `info`; the filter applies to the fmt
/// layer only, so tokio's task spans still reach pollwatch) and the pollwatch layer,
/// configured from the `POLLWATCH_*` variables. With the `console` feature, also
/// console-subscriber's `ConsoleLayer`, serving the tokio-console feed on `TOKIO_CONSOLE_BIND`
/// (default `127.0.0.1:6669`). With the `prometheus` feature, also `/metrics` on
/// `POLLWATCH_METRICS_ADDR` (default `127.0.0.1:9464`), served until the guard is dropped.
///
/// The environment never stops it: an output that cannot start (its address is taken, the
/// report directory cannot be written, the console feed in a build without
/// `--cfg tokio_unstable`) is an ERROR event and a report diagnostic, and pollwatch runs on
/// without that output.
///
/// # Panics
///
/// With a clear message when a `POLLWATCH_*` variable or `RUST_LOG` is invalid, or when a
/// global subscriber is already installed. Use [`try_init`] to handle those as errors.
///
/// A second `init` is a programming error, and panics like `tracing_subscriber`'s `init`:
/// before it starts any thread or output, so a caught panic leaves the pollwatch installed
/// first running as it was.
#[must_use = "dropping the guard immediately writes the report and stops reporting"]
pub fn init() -> Guard {
    match Builder::new().with_default_env() {
        Ok(builder) => builder.init(),
        Err(e) => panic!("pollwatch::init: {e}"),
    }
}

/// Like [`init`], returning an error instead of panicking or running without an output: also
/// when an output cannot start, in which case nothing is left running. A second call returns
/// [`InitError::AlreadyInstalled`] before starting anything.
pub fn try_init() -> Result<Guard, InitError> {
    Builder::new().with_default_env()?.try_init()
}

/// Feeds pollwatch from `runtime`'s hooks, with no tracing subscriber, configured from the
/// `POLLWATCH_*` variables: for a service that builds its own runtime. Like [`init`], it keeps
/// the report files current and writes them when the guard is dropped.
///
/// The build chooses the hooks (see [`Builder::runtime`](crate::Builder::runtime)): with
/// `--cfg tokio_unstable`, tokio's task hooks, which measure every task's polls by spawn
/// location (the cheapest poll source; no task names, no `block_on` root future); without
/// it, the stable worker hooks, which catch a worker asleep in one blocking call past the
/// threshold, whatever task runs on it (not CPU work: wrap what you want measured with
/// [`Watch::watched`](crate::Watch::watched) or [`spawn`](crate::spawn)). Stall events go to
/// the default subscriber of the calling thread: install your logging first.
///
/// ```no_run
/// fn main() -> std::io::Result<()> {
///     let mut runtime = tokio::runtime::Builder::new_multi_thread();
///     let _guard = pollwatch::runtime(runtime.enable_all());
///     runtime.build()?.block_on(async {
///         tokio::spawn(async { /* the service */ }).await.unwrap();
///     });
///     Ok(())
/// }
/// ```
///
/// # Panics
///
/// With a clear message when a `POLLWATCH_*` variable is invalid.
#[track_caller]
#[must_use = "dropping the guard immediately writes the report and stops reporting"]
pub fn runtime(runtime: &mut tokio::runtime::Builder) -> Guard {
    match Builder::new().with_default_env() {
        Ok(builder) => builder.runtime(runtime),
        Err(e) => panic!("pollwatch::runtime: {e}"),
    }
}

//! The tokio-console bridge (feature `console`): one switch for the live feed, and the sites
//! that stalled shown inside stock `tokio-console`.
//!
//! **The feed.** With the feature, [`crate::init`] (and [`Builder::try_init`]) composes
//! console-subscriber's `ConsoleLayer` into the same registry as pollwatch's layer and serves
//! the console feed on [`ENV_CONSOLE_BIND`] (default [`DEFAULT_CONSOLE_BIND`]), so `tokio-console`
//! connects and shows every task with its poll-time histogram. [`Builder::console`] switches
//! that off; [`Builder::console_layer`] gives the same layer for a subscriber you compose
//! yourself. An application that already builds its own `ConsoleLayer` keeps it: pollwatch's
//! resources (below) reach whatever `ConsoleLayer` sits in the subscriber pollwatch's layer is
//! installed in.
//!
//! **Stall sites as resources.** tokio-console shows any span named `runtime.resource` with
//! `&str` fields `concrete_type` and `kind` in its Resources view, and updates that row's
//! attributes from events with target `runtime::resource::state_update` emitted while the span
//! is entered on the same thread (console-subscriber 0.5, `visitors.rs`: `ResourceVisitor`,
//! `StateUpdateVisitor`). For each site that has stalled, pollwatch's reporter thread (never the
//! poll path) keeps one such span open, `concrete_type = "BlockingSite"`, `kind = "blocking"`,
//! located at the site's spawn location (`loc.file`, `loc.line`, `loc.col`), and keeps its
//! attributes live (see [`resources`] for the list). The span's target is [`crate::TARGET`];
//! pollwatch's own layer ignores it (it only measures `runtime.spawn` spans, and the reporter
//! thread never polls a task).
//!
//! [`Builder::try_init`]: crate::Builder::try_init
//! [`Builder::console`]: crate::Builder::console
//! [`Builder::console_layer`]: crate::Builder::console_layer
//! [`ENV_CONSOLE_BIND`]: crate::ENV_CONSOLE_BIND
//! [`DEFAULT_CONSOLE_BIND`]: crate::DEFAULT_CONSOLE_BIND

pub(crate) mod resources;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use console_subscriber::ServerParts;
use tracing_core::Subscriber;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::{Config, ConsoleConfig};
use crate::error::InitError;
use crate::state::State;

pub(crate) use resources::Resources;

/// The `ConsoleLayer` `try_init` composes, if serving is on, and its server, started with
/// [`Feed::serve`] once the subscriber is installed (so a failed install leaves nothing
/// running).
pub(crate) fn init_layer<S>(config: &Config) -> Result<Option<(impl Layer<S>, Feed)>, InitError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !config.console.serve {
        return Ok(None);
    }
    unstarted(&config.console).map(Some)
}

/// console-subscriber's server for one `ConsoleLayer`, not serving yet.
pub(crate) struct Feed {
    server: console_subscriber::Server,
    addr: std::net::SocketAddr,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// How long the feed waits before serving again after its server panicked.
const RESTART_AFTER: Duration = Duration::from_secs(1);

impl Feed {
    /// Serves the feed on its own thread (`console_subscriber`, as console-subscriber's
    /// `spawn` does), under `NoSubscriber`: console-subscriber's aggregator and its gRPC
    /// server, each a task of the thread's runtime (as its `serve` runs them). A panic in the
    /// server is contained: counted in `state`'s `dropped.host_panics` (when the feed is
    /// `init()`'s), said once, and the feed serves again a second later. The aggregator, once
    /// panicked, cannot be started again: that is said, and the feed stops.
    pub(crate) fn serve(self, state: Option<Arc<State>>) {
        let Feed { server, addr } = self;
        crate::background::spawn("console_subscriber", move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(serve(server, addr, state)),
                Err(e) => crate::diagnostics::say(&format!(
                    "pollwatch: cannot serve the tokio-console feed: {e}"
                )),
            }
        });
    }
}

/// Runs the aggregator and serves `server` on `addr`, again after each panic, until serving
/// ends or the aggregator stops.
async fn serve(server: console_subscriber::Server, addr: SocketAddr, state: Option<Arc<State>>) {
    let ServerParts {
        instrument_server,
        aggregator,
        ..
    } = server.into_parts();
    let mut aggregate = tokio::spawn(aggregator.run());
    loop {
        let router = tonic::transport::Server::builder().add_service(instrument_server.clone());
        let serving = tokio::spawn(async move {
            crate::guarded::fault_point(crate::guarded::Seam::Console);
            router.serve(addr).await
        });
        let ended = tokio::select! {
            served = serving => served,
            aggregated = &mut aggregate => {
                let cause = match aggregated {
                    Err(e) if e.is_panic() => {
                        contained(state.as_deref(), e.into_panic());
                        "its aggregator panicked"
                    }
                    _ => "its aggregator ended",
                };
                crate::diagnostics::say(&format!(
                    "pollwatch: the tokio-console feed stopped: {cause}"
                ));
                return;
            }
        };
        match ended {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                crate::diagnostics::say(&format!("pollwatch: the tokio-console feed stopped: {e}"));
                break;
            }
            Err(e) if e.is_panic() => {
                contained(state.as_deref(), e.into_panic());
                tokio::time::sleep(RESTART_AFTER).await;
            }
            Err(_) => break,
        }
    }
    aggregate.abort();
}

/// Counts and says a panic of the feed's server or aggregator.
fn contained(state: Option<&State>, payload: Box<dyn std::any::Any + Send>) {
    const WHAT: &str = "serving the tokio-console feed";
    match state {
        Some(state) => crate::guarded::caught(state, WHAT, payload.as_ref()),
        None => crate::diagnostics::say(&format!("pollwatch: a panic while {WHAT}; it goes on")),
    }
}

/// Whether the feed `try_init` serves (when serving is on) can be served: the build has
/// `--cfg tokio_unstable` and the address is free.
pub(crate) fn check(config: &Config) -> Result<(), InitError> {
    if config.console.serve {
        check_serving(&config.console)
    } else {
        Ok(())
    }
}

/// Serving the feed switched off, to run without it.
pub(crate) fn switch_off(config: &mut Config) {
    config.console.serve = false;
}

/// console-subscriber's layer, with its server thread (`console_subscriber`) serving on the
/// configured address.
pub(crate) fn layer<S>(config: &ConsoleConfig) -> Result<impl Layer<S>, InitError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let (layer, feed) = unstarted(config)?;
    feed.serve(None);
    Ok(layer)
}

/// console-subscriber's layer (with the filter its `spawn` applies) and its server, not
/// started.
fn unstarted<S>(config: &ConsoleConfig) -> Result<(impl Layer<S>, Feed), InitError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    check_serving(config)?;
    let mut builder = console_subscriber::ConsoleLayer::builder().server_addr(config.addr);
    if let Some(retention) = config.retention {
        builder = builder.retention(retention);
    }
    if let Some(interval) = config.publish_interval {
        builder = builder.publish_interval(interval);
    }
    if let Some(path) = &config.record_path {
        builder = builder.recording_path(path.clone());
    }
    if let Some(capacity) = config.buffer_capacity {
        builder = builder.event_buffer_capacity(capacity);
    }
    let (layer, server) = builder.build();
    let layer = layer.with_filter(FilterFn::new(console_filter));
    Ok((
        layer,
        Feed {
            server,
            addr: config.addr,
        },
    ))
}

/// What console-subscriber's `spawn` lets through to its layer: events with targets starting
/// with `runtime` or `tokio`, spans named `runtime.*` or with a `tokio` target.
fn console_filter(meta: &tracing::Metadata<'_>) -> bool {
    if meta.is_event() {
        return meta.target().starts_with("runtime") || meta.target().starts_with("tokio");
    }
    meta.name().starts_with("runtime.") || meta.target().starts_with("tokio")
}

/// Whether the feed can be served: the build has `--cfg tokio_unstable`, the address is
/// free (console-subscriber binds on its own thread and panics there if it cannot: find out
/// here, where it can be reported), and the recording file, if any, can be written.
fn check_serving(config: &ConsoleConfig) -> Result<(), InitError> {
    if !cfg!(tokio_unstable) {
        // console-subscriber would panic in `build()`.
        return Err(InitError::ConsoleNeedsTokioUnstable);
    }
    std::net::TcpListener::bind(config.addr)
        .map(drop)
        .map_err(|source| InitError::ConsoleAddr {
            addr: config.addr,
            source,
        })?;
    config
        .record_path
        .as_deref()
        .map_or(Ok(()), check_record_path)
}

/// Whether the recording file can be created (console-subscriber's `build()` panics if it
/// cannot). Leaves an empty file, which console-subscriber truncates and writes.
fn check_record_path(path: &std::path::Path) -> Result<(), InitError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|source| InitError::ConsoleRecording {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ENV_RECORD_PATH;

    #[test]
    fn a_recording_file_that_cannot_be_created_is_an_init_error_not_a_panic() {
        let file = std::env::temp_dir().join(format!("pollwatch-record-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let err = check_record_path(&file.join("recording")).unwrap_err();
        assert!(err.to_string().contains(ENV_RECORD_PATH), "{err}");
        assert!(check_record_path(&file).is_ok());
        std::fs::remove_file(&file).unwrap();
    }

    // Without the flag the console never binds: the error is the missing flag (tested in
    // `tests/explains_hidden_task_spans.rs`).
    #[cfg(tokio_unstable)]
    #[test]
    fn a_taken_address_is_an_init_error_not_a_panic() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = Config::default();
        config.console.addr = taken.local_addr().unwrap();
        let err = match init_layer::<tracing_subscriber::Registry>(&config) {
            Err(e) => e,
            Ok(_) => panic!("bound a taken address"),
        };
        assert!(
            err.to_string().contains(crate::config::ENV_CONSOLE_BIND),
            "{err}"
        );
    }
}

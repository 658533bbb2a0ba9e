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

pub(crate) mod resources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tracing_core::Subscriber;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::builder::{Builder, ConfigError};
use crate::init::InitError;

pub(crate) use resources::{ended, refresh, running, stall_detected, Resources};

/// The address the console feed is served on unless [`ENV_CONSOLE_BIND`] or
/// [`Builder::console_addr`] says otherwise: console-subscriber's and tokio-console's default.
pub const DEFAULT_CONSOLE_BIND: &str = "127.0.0.1:6669";

/// console-subscriber's variable for the feed's address (`HOST:PORT`), read by
/// [`Builder::with_default_env`] with the feature on.
pub const ENV_CONSOLE_BIND: &str = "TOKIO_CONSOLE_BIND";

/// console-subscriber's variable for how long completed tasks and resources are kept.
const ENV_RETENTION: &str = "TOKIO_CONSOLE_RETENTION";
/// console-subscriber's variable for how often the feed publishes.
const ENV_PUBLISH_INTERVAL: &str = "TOKIO_CONSOLE_PUBLISH_INTERVAL";
/// console-subscriber's variable for a recording file.
const ENV_RECORD_PATH: &str = "TOKIO_CONSOLE_RECORD_PATH";
/// console-subscriber's variable for its event buffer.
const ENV_BUFFER_CAPACITY: &str = "TOKIO_CONSOLE_BUFFER_CAPACITY";

/// The console part of a [`Builder`].
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Whether `try_init` composes and serves the `ConsoleLayer`.
    serve: bool,
    addr: SocketAddr,
    retention: Option<Duration>,
    publish_interval: Option<Duration>,
    record_path: Option<PathBuf>,
    buffer_capacity: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            serve: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 6669)),
            retention: None,
            publish_interval: None,
            record_path: None,
            buffer_capacity: None,
        }
    }
}

impl Config {
    /// Reads console-subscriber's `TOKIO_CONSOLE_*` variables that are set. Unlike
    /// console-subscriber's own `with_default_env` (which panics), a bad value is an error
    /// naming the variable.
    pub(crate) fn with_env(
        mut self,
        lookup: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        let text = |name: &'static str| crate::builder::env_text(lookup, name);
        let duration = |name: &'static str, value: &str| {
            humantime::parse_duration(value).map_err(|e| {
                ConfigError::new(name, value, &format!("is not a duration ({e}); e.g. `1s`"))
            })
        };
        if let Some(addr) =
            crate::builder::env_socket_addr(lookup, ENV_CONSOLE_BIND, DEFAULT_CONSOLE_BIND)?
        {
            self.addr = addr;
        }
        if let Some(value) = text(ENV_RETENTION)? {
            self.retention = Some(duration(ENV_RETENTION, &value)?);
        }
        if let Some(value) = text(ENV_PUBLISH_INTERVAL)? {
            self.publish_interval = Some(duration(ENV_PUBLISH_INTERVAL, &value)?);
        }
        if let Some(value) = text(ENV_RECORD_PATH)? {
            self.record_path = Some(PathBuf::from(value));
        }
        if let Some(value) = text(ENV_BUFFER_CAPACITY)? {
            let capacity = value.parse::<usize>().ok().filter(|n| *n > 0);
            self.buffer_capacity = Some(capacity.ok_or_else(|| {
                ConfigError::new(
                    ENV_BUFFER_CAPACITY,
                    &value,
                    "is not a positive whole number",
                )
            })?);
        }
        Ok(self)
    }

    /// The `ConsoleLayer` `try_init` composes, if serving is on.
    pub(crate) fn init_layer<S>(&self) -> Result<Option<impl Layer<S>>, InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if !self.serve {
            return Ok(None);
        }
        self.layer().map(Some)
    }

    /// console-subscriber's layer, behind its own per-layer filter, with its server thread
    /// (`console_subscriber`) serving on `addr`.
    fn layer<S>(&self) -> Result<impl Layer<S>, InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if !cfg!(tokio_unstable) {
            // console-subscriber would panic in `build()`.
            return Err(InitError::Console(
                "tokio-console needs a build with `--cfg tokio_unstable` (RUSTFLAGS or \
                 .cargo/config.toml `[build] rustflags`)"
                    .to_owned(),
            ));
        }
        // console-subscriber binds on its own thread and panics there if it cannot: find out
        // here, where it can be reported.
        std::net::TcpListener::bind(self.addr).map_err(|e| {
            InitError::Console(format!(
                "cannot serve the console feed on {} ({e}); set {ENV_CONSOLE_BIND} to a free \
                 address",
                self.addr
            ))
        })?;
        let mut builder = console_subscriber::ConsoleLayer::builder().server_addr(self.addr);
        if let Some(retention) = self.retention {
            builder = builder.retention(retention);
        }
        if let Some(interval) = self.publish_interval {
            builder = builder.publish_interval(interval);
        }
        if let Some(path) = &self.record_path {
            builder = builder.recording_path(path.clone());
        }
        if let Some(capacity) = self.buffer_capacity {
            builder = builder.event_buffer_capacity(capacity);
        }
        Ok(builder.spawn())
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
impl Builder {
    /// Whether [`Builder::try_init`] (and [`crate::init`]) also serves the tokio-console feed
    /// (console-subscriber's `ConsoleLayer`, composed into the same registry). Default on with
    /// the `console` feature. Off, sites that stall are still published as `BlockingSite`
    /// resources to any `ConsoleLayer` you install yourself.
    pub fn console(mut self, serve: bool) -> Self {
        self.console.serve = serve;
        self
    }

    /// Where the console feed is served. Default [`DEFAULT_CONSOLE_BIND`], or
    /// [`ENV_CONSOLE_BIND`] when [`Builder::with_default_env`] was called.
    pub fn console_addr(mut self, addr: SocketAddr) -> Self {
        self.console.addr = addr;
        self
    }

    /// The `ConsoleLayer` this builder would serve, with its server thread started, for a
    /// subscriber you compose yourself; add it before pollwatch's layer:
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    ///
    /// let builder = pollwatch::PollWatch::builder().with_default_env()?;
    /// let console = builder.console_layer()?;
    /// let (layer, handle) = builder.build();
    /// tracing_subscriber::registry().with(console).with(layer).init();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Fails when the build lacks `--cfg tokio_unstable` or the address is taken.
    pub fn console_layer<S>(&self) -> Result<impl Layer<S>, InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.console.layer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::test_env as lookup;

    #[test]
    fn console_variables_are_applied() {
        let config = Config::default()
            .with_env(&lookup(&[
                (ENV_CONSOLE_BIND, "127.0.0.1:7001"),
                (ENV_RETENTION, "10m"),
                (ENV_PUBLISH_INTERVAL, "250ms"),
                (ENV_BUFFER_CAPACITY, "1000"),
            ]))
            .unwrap();
        assert_eq!(config.addr, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.retention, Some(Duration::from_secs(600)));
        assert_eq!(config.publish_interval, Some(Duration::from_millis(250)));
        assert_eq!(config.buffer_capacity, Some(1000));
    }

    #[test]
    fn the_default_address_is_consoles() {
        let config = Config::default().with_env(&lookup(&[])).unwrap();
        assert_eq!(config.addr.to_string(), DEFAULT_CONSOLE_BIND);
        assert!(config.serve);
    }

    #[test]
    fn bad_console_values_are_errors_naming_the_variable() {
        for pairs in [
            &[(ENV_CONSOLE_BIND, "nowhere")][..],
            &[(ENV_RETENTION, "soon")][..],
            &[(ENV_PUBLISH_INTERVAL, "5")][..],
            &[(ENV_BUFFER_CAPACITY, "0")][..],
        ] {
            let err = Config::default().with_env(&lookup(pairs)).unwrap_err();
            assert_eq!(err.variable(), pairs[0].0);
        }
    }

    #[test]
    fn a_taken_address_is_an_init_error_not_a_panic() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = Config {
            addr: taken.local_addr().unwrap(),
            ..Config::default()
        };
        let err = match config.init_layer::<tracing_subscriber::Registry>() {
            Err(e) => e,
            Ok(_) => panic!("bound a taken address"),
        };
        assert!(err.to_string().contains(ENV_CONSOLE_BIND), "{err}");
    }
}

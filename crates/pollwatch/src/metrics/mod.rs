//! Prometheus metrics (feature `prometheus`), computed from pollwatch's state at scrape time.
//!
//! **The endpoint.** With the feature, [`crate::init`] (and [`Builder::try_init`]) serves
//! `GET /metrics` in the Prometheus text format 0.0.4 on [`ENV_METRICS_ADDR`] (default
//! [`DEFAULT_METRICS_ADDR`], loopback only), from pollwatch's own threads: it answers while
//! every worker of the application's runtime is stuck. [`Builder::metrics`] switches it off;
//! [`Guard::metrics_addr`] says where it listens; [`Handle::serve_metrics`] starts one for a
//! layer you installed yourself. See [`MetricsServer`] for what it answers to what.
//!
//! **Your own endpoint.** [`Handle::register_metrics`] adds pollwatch's collector to a
//! `prometheus_client` [`Registry`] your application already serves:
//!
//! ```
//! use prometheus_client::registry::Registry;
//!
//! let (layer, handle) = pollwatch::PollWatch::builder().build();
//! let mut registry = Registry::default();
//! handle.register_metrics(&mut registry);
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains("# TYPE pollwatch_threshold_seconds gauge"));
//! # drop(layer);
//! # Ok::<(), std::fmt::Error>(())
//! ```
//!
//! **The metrics** (names, types, units and labels in `dashboards/README.md`):
//! `pollwatch_poll_duration_seconds` (histogram by `site`, bounds
//! [`POLL_DURATION_BUCKETS`]), `pollwatch_slow_polls_total`, `pollwatch_stalls_total` (by `site`
//! and `cause`), `pollwatch_stall_held_seconds_total`, `pollwatch_call_site_stalls_total`,
//! `pollwatch_dropped_events_total` (by `kind`), and the gauges `pollwatch_workers_stalled`,
//! `pollwatch_longest_running_poll_seconds`, `pollwatch_polling_threads`, `pollwatch_sites`,
//! `pollwatch_threshold_seconds`. Every label value comes from a bounded set: the site table
//! (`site`, at most [`crate::DEFAULT_MAX_SITES`] by default plus `<overflow>`), the stall
//! causes, at most 32 call sites per site plus `other`, and the dropped-event kinds.

mod collector;
pub(crate) mod server;

use std::net::SocketAddr;

use prometheus_client::registry::Registry;

use crate::builder::{Builder, ConfigError};
use crate::handle::Handle;
use crate::init::{Guard, InitError};

pub use collector::POLL_DURATION_BUCKETS;
pub use server::{MetricsServer, HEAD_TIMEOUT, MAX_HEAD_BYTES};

/// The running endpoint a [`Guard`] keeps.
pub(crate) type Server = MetricsServer;

/// The address `/metrics` is served on unless [`ENV_METRICS_ADDR`] or
/// [`Builder::metrics_addr`] says otherwise: loopback only, port 9464 (the port OpenTelemetry's
/// Prometheus exporter uses; Prometheus itself listens on 9090).
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// The environment variable for the `/metrics` address (`HOST:PORT`), read by
/// [`Builder::with_default_env`] with the feature on.
pub const ENV_METRICS_ADDR: &str = "POLLWATCH_METRICS_ADDR";

/// The metrics part of a [`Builder`].
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Whether `try_init` serves `/metrics`.
    serve: bool,
    addr: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            serve: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

impl Config {
    /// Reads [`ENV_METRICS_ADDR`] if it is set.
    pub(crate) fn with_env(
        mut self,
        lookup: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        if let Some(addr) =
            crate::builder::env_socket_addr(lookup, ENV_METRICS_ADDR, DEFAULT_METRICS_ADDR)?
        {
            self.addr = addr;
        }
        Ok(self)
    }

    /// The endpoint `try_init` starts for `handle`, if serving is on.
    pub(crate) fn serve(&self, handle: &Handle) -> Result<Option<Server>, InitError> {
        if !self.serve {
            return Ok(None);
        }
        handle.serve_metrics(self.addr).map(Some).map_err(|e| {
            InitError::Metrics(format!("{e}; set {ENV_METRICS_ADDR} to a free address"))
        })
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
impl Builder {
    /// Whether [`Builder::try_init`] (and [`crate::init`]) serves `/metrics`. Default on with
    /// the `prometheus` feature.
    pub fn metrics(mut self, serve: bool) -> Self {
        self.metrics.serve = serve;
        self
    }

    /// Where `/metrics` is served. Default [`DEFAULT_METRICS_ADDR`], or [`ENV_METRICS_ADDR`]
    /// when [`Builder::with_default_env`] was called.
    pub fn metrics_addr(mut self, addr: SocketAddr) -> Self {
        self.metrics.addr = addr;
        self
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
impl Handle {
    /// Adds pollwatch's metrics to `registry`: they are computed from this layer's state each
    /// time the registry is encoded. Register into a registry once.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(collector::PollWatchCollector::new(
            self.shared().clone(),
        )));
    }

    /// This layer's metrics in the Prometheus text format 0.0.4, as `/metrics` serves them.
    pub fn metrics_text(&self) -> String {
        let mut registry = Registry::default();
        self.register_metrics(&mut registry);
        let mut text = String::new();
        // Writing into a String cannot fail, and the collector only fails when its writer does.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }

    /// Serves this layer's metrics on `GET /metrics` at `addr` from pollwatch's own threads
    /// (port 0 picks a free port: see [`MetricsServer::local_addr`]), until the returned
    /// server is dropped. For a layer installed by [`crate::init`], the [`Guard`] already
    /// does this.
    pub fn serve_metrics(&self, addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let mut registry = Registry::default();
        self.register_metrics(&mut registry);
        MetricsServer::start(addr, registry).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot serve metrics on {addr} ({e})"))
        })
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
impl Guard {
    /// Where `/metrics` is served, unless [`Builder::metrics`] switched it off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::test_env as lookup;

    #[test]
    fn the_address_variable_is_applied() {
        let config = Config::default()
            .with_env(&lookup(&[(ENV_METRICS_ADDR, "127.0.0.1:7002")]))
            .unwrap();
        assert_eq!(config.addr, "127.0.0.1:7002".parse().unwrap());
        let config = Config::default().with_env(&lookup(&[])).unwrap();
        assert_eq!(config.addr.to_string(), DEFAULT_METRICS_ADDR);
        assert!(config.serve);
    }

    #[test]
    fn a_bad_address_is_an_error_naming_the_variable() {
        for value in ["nowhere", "127.0.0.1", "127.0.0.1:99999", ""] {
            let err = Config::default()
                .with_env(&lookup(&[(ENV_METRICS_ADDR, value)]))
                .unwrap_err();
            assert_eq!(err.variable(), ENV_METRICS_ADDR, "{value}");
        }
    }

    #[test]
    fn a_taken_address_is_an_init_error_not_a_panic() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = Config {
            addr: taken.local_addr().unwrap(),
            ..Config::default()
        };
        let (_layer, handle) = Builder::default().build();
        let err = config.serve(&handle).unwrap_err();
        assert!(err.to_string().contains(ENV_METRICS_ADDR), "{err}");
        handle.shutdown();
    }
}

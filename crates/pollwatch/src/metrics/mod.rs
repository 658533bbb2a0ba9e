//! pollwatch's metrics, read from its state as plain families ([`families`]) and given out
//! through the Prometheus endpoint and collector (feature `prometheus`) and the `metrics`
//! facade (feature `metrics`, [`facade`]) and OpenTelemetry (feature `opentelemetry`,
//! [`otel`]), these two published by [`publish`].
//!
//! **The endpoint.** With the feature, [`crate::init`] (and [`Builder::try_init`](crate::Builder::try_init)) serves
//! `GET /metrics` in the Prometheus text format 0.0.4 on [`ENV_METRICS_ADDR`](crate::ENV_METRICS_ADDR) (default
//! [`DEFAULT_METRICS_ADDR`](crate::DEFAULT_METRICS_ADDR), loopback only), from a pollwatch thread: it answers while
//! every worker of the application's runtime is stuck, and while other clients send or read
//! slowly (every connection has a deadline). [`Builder::metrics`](crate::Builder::metrics) switches it off;
//! [`Guard::metrics_addr`](crate::Guard::metrics_addr) says where it listens; [`Handle::serve_metrics`](crate::Handle::serve_metrics) starts one for a
//! layer you installed yourself. See [`MetricsServer`] for what it answers to what.
//!
//! **Your own endpoint.** [`Handle::register_metrics`](crate::Handle::register_metrics) adds pollwatch's collector to a
//! `prometheus_client` `Registry` your application already serves:
//!
//! ```
//! use prometheus_client::registry::Registry;
//!
//! let (layer, handle): (pollwatch::PollWatchLayer, _) = pollwatch::Builder::new().build();
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
//! [`POLL_DURATION_BUCKETS`](crate::config::POLL_DURATION_BUCKETS)), `pollwatch_slow_polls_total`, `pollwatch_stalls_total` (by `site`
//! and `cause`), `pollwatch_stall_held_seconds_total`, `pollwatch_stall_delay_task_seconds_total`,
//! `pollwatch_call_site_stalls_total`,
//! `pollwatch_dropped_events_total` (by `kind`), and the gauges `pollwatch_workers_stalled`,
//! `pollwatch_longest_running_poll_seconds`, `pollwatch_polling_threads`, `pollwatch_sites`,
//! `pollwatch_threshold_seconds`. Every label value comes from a bounded set: the site table
//! (`site`, at most [`crate::DEFAULT_MAX_SITES`] by default plus `<overflow>`), the stall
//! causes, at most 32 call sites per site plus `other`, and the dropped-event kinds. The
//! endpoint adds `pollwatch_metrics_connections_dropped_total` (by `reason`).
//!
//! **Counters never decrease** between two scrapes of one registry, and are exact once what
//! they count has settled: the histogram and slow polls count polls and drops together, the
//! stall families count a stall when it ends under its final cause, with its held time added
//! once it is exact (see the collector's docs).

#[cfg(feature = "prometheus")]
mod collector;
#[cfg(feature = "metrics")]
mod facade;
mod families;
#[cfg(not(feature = "prometheus"))]
#[path = "off.rs"]
mod off;
#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(any(feature = "metrics", feature = "opentelemetry"))]
mod publish;
#[cfg(feature = "prometheus")]
mod server;

#[cfg(not(feature = "prometheus"))]
pub(crate) use off::{serve, stop, Server};
#[cfg(feature = "prometheus")]
pub(crate) use prometheus::{register, serve, start, stop, text, Server};
#[cfg(any(feature = "metrics", feature = "opentelemetry"))]
pub(crate) use publish::Publishing;
#[cfg(feature = "prometheus")]
pub use server::MetricsServer;
#[cfg(feature = "prometheus")]
pub(crate) use server::{HEAD_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES, RESPONSE_TIMEOUT};

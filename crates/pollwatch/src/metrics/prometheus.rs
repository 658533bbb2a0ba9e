//! The Prometheus ways out (feature `prometheus`): the collector registered into a
//! `prometheus_client` registry, the text `/metrics` serves, and the endpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::collector;
use super::server::MetricsServer;
use crate::config::Config;
use crate::error::InitError;
use crate::state::State;

/// The running endpoint a [`crate::Guard`] keeps.
pub(crate) type Server = MetricsServer;

/// Adds the collector of `state`'s metrics to `registry`.
pub(crate) fn register(state: &Arc<State>, registry: &mut Registry) {
    registry.register_collector(Box::new(collector::PollWatchCollector::new(state.clone())));
}

/// `state`'s metrics in the Prometheus text format 0.0.4.
pub(crate) fn text(state: &Arc<State>) -> String {
    let mut registry = Registry::default();
    register(state, &mut registry);
    let mut text = String::new();
    // Writing into a String cannot fail, and the collector only fails when its writer does.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

/// Serves `state`'s metrics on `GET /metrics` at `addr`; the error says the address.
pub(crate) fn start(state: &Arc<State>, addr: SocketAddr) -> std::io::Result<MetricsServer> {
    bind(state, addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot serve metrics on {addr} ({e})")))
}

/// [`start`], its error the operating system's own.
fn bind(state: &Arc<State>, addr: SocketAddr) -> std::io::Result<MetricsServer> {
    let mut registry = Registry::default();
    register(state, &mut registry);
    MetricsServer::start(addr, registry)
}

/// Stops the endpoint `try_init` started (when installing failed after it started).
pub(crate) fn stop(server: &Server) {
    server.stop();
}

/// The endpoint `try_init` starts, if serving is on.
pub(crate) fn serve(config: &Config, state: &Arc<State>) -> Result<Option<Server>, InitError> {
    if !config.metrics.serve {
        return Ok(None);
    }
    // `InitError::MetricsAddr` says the address itself.
    bind(state, config.metrics.addr)
        .map(Some)
        .map_err(|source| InitError::MetricsAddr {
            addr: config.metrics.addr,
            source,
        })
}

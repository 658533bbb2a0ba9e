//! Prometheus metrics with the `prometheus` feature off: nothing is read or served.

use std::sync::Arc;

use crate::config::Config;
use crate::error::InitError;
use crate::state::State;

/// No endpoint runs without the feature.
#[derive(Debug)]
pub(crate) enum Server {}

/// Nothing to serve without the feature.
pub(crate) fn serve(_: &Config, _: &Arc<State>) -> Result<Option<Server>, InitError> {
    Ok(None)
}

/// No endpoint to stop without the feature.
pub(crate) fn stop(server: &Server) {
    match *server {}
}

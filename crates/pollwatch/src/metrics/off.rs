//! Prometheus metrics with the `prometheus` feature off: nothing is read or served.

use crate::builder::ConfigError;
use crate::handle::Handle;
use crate::init::InitError;

/// The metrics part of a [`crate::Builder`]: empty without the feature.
#[derive(Clone, Debug, Default)]
pub(crate) struct Config {
    _off: (),
}

/// No endpoint runs without the feature.
#[derive(Debug)]
pub(crate) enum Server {}

impl Config {
    pub(crate) fn with_env(
        self,
        _lookup: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        Ok(self)
    }

    pub(crate) fn serve(&self, _: &Handle) -> Result<Option<Server>, InitError> {
        Ok(None)
    }
}

//! The tokio-console bridge with the `console` feature off: nothing is composed, published or
//! read, and every call compiles to nothing.

use tracing_core::Subscriber;
use tracing_subscriber::layer::Identity;
use tracing_subscriber::registry::LookupSpan;

use pollwatch_report::Stall;

use crate::builder::ConfigError;
use crate::init::InitError;
use crate::shared::Shared;

/// The console part of a [`crate::Builder`]: empty without the feature.
#[derive(Clone, Debug, Default)]
pub(crate) struct Config {
    _off: (),
}

impl Config {
    pub(crate) fn with_env(
        self,
        _lookup: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        Ok(self)
    }

    // The same signature as with the feature, so `init.rs` needs no `cfg`.
    #[allow(clippy::extra_unused_type_parameters)]
    pub(crate) fn init_layer<S>(&self) -> Result<Option<Identity>, InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        Ok(None)
    }
}

/// No resources without the feature.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    _off: (),
}

#[inline]
pub(crate) fn stall_detected(_: &Shared, _: (usize, u64), _: u32, _: &Stall) {}

#[inline]
pub(crate) fn running(_: &Shared, _: (usize, u64), _: &Stall) {}

#[inline]
pub(crate) fn ended(_: &Shared, _: (usize, u64), _: u64) {}

#[inline]
pub(crate) fn refresh(_: &Shared) {}

//! The tokio-console bridge with the `console` feature off: nothing is composed or published,
//! and every call compiles to nothing.

use tracing_core::Subscriber;
use tracing_subscriber::layer::Identity;
use tracing_subscriber::registry::LookupSpan;

use crate::config::Config;
use crate::error::InitError;
use crate::poll::PollKey;
use crate::stall::record::StallRecord;
use crate::state::State;

// The same signature as with the feature, so the builder needs no `cfg`.
#[allow(clippy::extra_unused_type_parameters)]
pub(crate) fn init_layer<S>(_: &Config) -> Result<Option<(Identity, Feed)>, InitError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    Ok(None)
}

/// No feed without the feature.
#[derive(Debug)]
pub(crate) enum Feed {}

impl Feed {
    pub(crate) fn serve(self, _: Option<std::sync::Arc<crate::state::State>>) {
        match self {}
    }
}

/// Nothing to check without the feature.
pub(crate) fn check(_: &Config) -> Result<(), InitError> {
    Ok(())
}

/// Nothing to switch off without the feature.
pub(crate) fn switch_off(_: &mut Config) {}

/// No resources without the feature.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    _off: (),
}

impl Resources {
    #[inline]
    pub(crate) fn stall_detected(&mut self, _: &State, _: &StallRecord) {}

    #[inline]
    pub(crate) fn running(&mut self, _: &State, _: &StallRecord) {}

    #[inline]
    pub(crate) fn reclassified(&mut self, _: &State, _: &StallRecord) {}

    #[inline]
    pub(crate) fn ended(&mut self, _: &State, _: PollKey, _: u64) {}

    #[inline]
    pub(crate) fn refresh(&mut self, _: &State) {}
}

//! The inspector for platforms without `/proc` or signal capture: it observes nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::{CaptureError, Inspector, RawBacktrace, ThreadState, Tid};

/// The platform entry points where nothing better exists.
#[cfg(not(target_os = "linux"))]
pub(crate) mod platform {
    use super::*;

    pub(crate) fn current_tid() -> Tid {
        0
    }

    pub(crate) fn inspector(_options: crate::Options) -> Arc<dyn Inspector> {
        Arc::new(Fallback)
    }

    pub(crate) fn realtime_signals() -> Option<std::ops::RangeInclusive<i32>> {
        None
    }

    pub(crate) fn default_signal() -> Option<i32> {
        None
    }
}

/// The inspector that observes nothing.
pub(crate) fn fallback() -> Arc<dyn Inspector> {
    Arc::new(Fallback)
}

/// Observes nothing; pollwatch still reports stalls with task, site and duration.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fallback;

impl Inspector for Fallback {
    fn thread_state(&self, _tid: Tid) -> Option<ThreadState> {
        None
    }

    fn cpu_time_ns(&self, _tid: Tid) -> Option<u64> {
        None
    }

    fn capture(&self, _tid: Tid, _timeout: Duration) -> Result<RawBacktrace, CaptureError> {
        Err(CaptureError::Unsupported)
    }

    fn can_capture(&self) -> bool {
        false
    }
}

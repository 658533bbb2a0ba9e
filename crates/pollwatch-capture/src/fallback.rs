//! The inspector for platforms without `/proc` or signal capture: it observes nothing.

use std::time::Duration;

use crate::{CaptureError, Inspector, RawBacktrace, ThreadState, Tid};

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

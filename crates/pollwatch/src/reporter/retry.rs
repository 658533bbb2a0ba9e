//! When to try the live report files again after a write failed (a full disk, a directory
//! removed or made read-only): after [`FIRST_WAIT`], doubling after each further failure up to
//! [`MAX_WAIT`]; the first success ends the wait.

use std::time::{Duration, Instant};

/// The wait after a first failure.
pub(crate) const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// The failures since the last success, and when to try next.
#[derive(Debug, Default)]
pub(crate) struct Retry {
    failures_in_row: u32,
    next_try: Option<Instant>,
}

impl Retry {
    /// Whether writing may be tried at `now`.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.next_try.is_none_or(|at| now >= at)
    }

    /// Whether the last try failed.
    pub(crate) fn failing(&self) -> bool {
        self.failures_in_row > 0
    }

    /// A try at `now` failed: returns the wait before the next one.
    pub(crate) fn failed(&mut self, now: Instant) -> Duration {
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        let doublings = (self.failures_in_row - 1).min(16);
        let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT);
        self.next_try = Some(now + wait);
        wait
    }

    /// A try succeeded: returns how many failed in a row before it.
    pub(crate) fn succeeded(&mut self) -> u32 {
        self.next_try = None;
        std::mem::take(&mut self.failures_in_row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_minute_and_a_success_ends_them() {
        let mut retry = Retry::default();
        let t0 = Instant::now();
        assert!(retry.ready(t0) && !retry.failing());
        let waits: Vec<u64> = (0..9).map(|_| retry.failed(t0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(retry.failing());
        assert!(!retry.ready(t0 + Duration::from_secs(59)));
        assert!(retry.ready(t0 + MAX_WAIT));
        assert_eq!(retry.succeeded(), 9);
        assert!(retry.ready(t0) && !retry.failing());
        assert_eq!(retry.failed(t0), FIRST_WAIT);
    }
}

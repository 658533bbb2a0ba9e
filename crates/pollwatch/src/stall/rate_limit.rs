//! Per-site rate limit for stall warnings: at most N warnings per site per minute (default 5).
//! Suppressed warnings are counted; counts, histograms and the report's stall list stay exact.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sites::SiteId;

/// The rate limit's window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct RateLimit {
    per_window: u32,
    sent: HashMap<SiteId, VecDeque<Instant>>,
}

impl RateLimit {
    pub(crate) fn new(per_window: u32) -> Self {
        Self {
            per_window,
            sent: HashMap::new(),
        }
    }

    /// Whether `site` may warn at `now`; if so, the warning is counted against it.
    pub(crate) fn allow(&mut self, site: SiteId, now: Instant) -> bool {
        let sent = self.sent.entry(site).or_default();
        while sent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= WINDOW)
        {
            sent.pop_front();
        }
        if sent.len() >= self.per_window as usize {
            return false;
        }
        sent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_gets_n_warnings_a_minute_and_others_are_unaffected() {
        let (one, two) = (SiteId::from_index(1), SiteId::from_index(2));
        let mut limit = RateLimit::new(5);
        let t0 = Instant::now();
        let allowed = (0..8).filter(|_| limit.allow(one, t0)).count();
        assert_eq!(allowed, 5);
        assert!(limit.allow(two, t0), "another site has its own budget");
        assert!(!limit.allow(one, t0 + Duration::from_secs(59)));
        assert!(limit.allow(one, t0 + WINDOW), "the window slides");
    }
}

//! What threads that exited recorded, kept once their slots are reclaimed: threads come and go
//! (`block_in_place` replacement workers, runtimes built and dropped, `block_on` on short-lived
//! threads), and a slot per thread ever seen would grow memory, and the cost of every scan,
//! report and scrape, without bound. An exited thread's recorders are folded into this summary
//! (sparse: the buckets its sites used), and its slot's index is given to the next new thread.

use std::collections::HashMap;

use super::recorder::{SiteTotals, FOLDED};
use super::thread::ThreadSlot;
use crate::sites::SiteId;

/// The sums of every reclaimed slot.
#[derive(Clone, Debug, Default)]
pub(crate) struct Retired {
    sites: HashMap<SiteId, RetiredSite>,
    /// Threads whose slots were reclaimed.
    pub(crate) threads: u64,
    pub(crate) slow_polls_lost: u64,
    pub(crate) nested_too_deep: u64,
    pub(crate) clamped: u64,
}

/// One site's sums over the reclaimed slots, with the nonzero buckets only.
#[derive(Clone, Debug, Default)]
struct RetiredSite {
    buckets: Vec<(u16, u64)>,
    busy_ns: u64,
    max_ns: u64,
    slow_polls: u64,
    drops: u64,
    drop_ns: u64,
    drop_buckets: [u64; FOLDED],
    slow_drops: u64,
}

impl Retired {
    /// Adds everything `slot` (of a thread that exited) recorded over `sites` site slots.
    pub(crate) fn absorb(&mut self, slot: &ThreadSlot, sites: usize) {
        self.threads += 1;
        self.slow_polls_lost += slot.slow_polls_lost();
        self.nested_too_deep += slot.polls_nested_too_deep();
        self.clamped += slot.values_clamped();
        for index in 0..sites {
            let site = SiteId::from_index(index as u32);
            let Some(recorder) = slot.existing_recorder(site) else {
                continue;
            };
            let mut totals = SiteTotals::default();
            self.merge_into(site, &mut totals);
            recorder.merge_into(&mut totals);
            self.sites.insert(
                site,
                RetiredSite {
                    buckets: totals
                        .buckets
                        .iter()
                        .enumerate()
                        .filter(|(_, &n)| n > 0)
                        .map(|(i, &n)| (i as u16, n))
                        .collect(),
                    busy_ns: totals.busy_ns,
                    max_ns: totals.max_ns,
                    slow_polls: totals.slow_polls,
                    drops: totals.drops,
                    drop_ns: totals.drop_ns,
                    drop_buckets: totals.drop_buckets,
                    slow_drops: totals.slow_drops,
                },
            );
        }
    }

    /// Adds what reclaimed slots recorded for `site` into `into`.
    pub(crate) fn merge_into(&self, site: SiteId, into: &mut SiteTotals) {
        let Some(retired) = self.sites.get(&site) else {
            return;
        };
        for &(i, n) in &retired.buckets {
            into.buckets[usize::from(i)] += n;
        }
        into.busy_ns += retired.busy_ns;
        into.max_ns = into.max_ns.max(retired.max_ns);
        into.slow_polls += retired.slow_polls;
        into.drops += retired.drops;
        into.drop_ns += retired.drop_ns;
        for (into, n) in into.drop_buckets.iter_mut().zip(retired.drop_buckets) {
            *into += n;
        }
        into.slow_drops += retired.slow_drops;
    }

    /// `site`'s busy time and drops in reclaimed slots.
    pub(crate) fn activity(&self, site: SiteId) -> (u64, u64) {
        self.sites
            .get(&site)
            .map_or((0, 0), |s| (s.busy_ns, s.drops))
    }
}

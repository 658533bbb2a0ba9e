//! Per-thread, per-site poll-time recorders: a fixed log-linear bucket array with one writer.
//!
//! A full hdrhistogram at 3 significant digits over 1 µs .. 1 h is ~190 KB, too large to keep
//! per site *per thread*. Each thread instead records into [`SiteRecorder`]s of
//! [`BUCKETS`] counters (32 linear sub-buckets per power of two, so a value is known to within
//! 1/32 of itself, ≤ 1.6% from the bucket's midpoint), and the report merges the threads'
//! recorders into one hdrhistogram per site. Max and total time are kept exactly.
//!
//! The counters of one power of two (a group of 32, 256 bytes) are allocated the first time
//! the thread records a value of that range for the site: a site's polls span a few powers of
//! two, so a recorder holds a few groups (about 2 KB with polls from 1 µs to 1 ms) rather than
//! all 38 (9.7 KB), which at 1,000 sites polled by 2 workers is 4 MB against 19 MB. At most
//! 38 such allocations per (site, thread), ever.
//!
//! A site the thread polls often (32 polls through the general path: its first ones) gets
//! one more: the counters of every value below 1 ms in one 4 KB block, which the inline exit
//! counts in (see [`Hot`]). It is what keeps the clock read's latency out of the address of
//! the counter a short poll increments, and it costs 4 KB per (site, thread) polled that
//! often: 8 MB for 1,000 such sites on 2 workers.
//!
//! Only the owning thread writes, so updates are a relaxed load and store (no atomic
//! read-modify-write, no contended cache line); any thread may read.

use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::OnceLock;

use pollwatch_report::histogram::{self, Histogram};
use pollwatch_report::Percentiles;

/// log2 of the number of sub-buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values are clamped to the histogram's upper bound, one hour.
pub(crate) const MAX_VALUE_NS: u64 = pollwatch_report::histogram::HIGHEST_NS;
/// 2^42 ns (73 min) is the first power of two above one hour.
const TOP_BIT: u32 = 42;
/// Number of buckets in one recorder.
pub(crate) const BUCKETS: usize = ((TOP_BIT - SUB_BITS + 1) as usize) * SUB as usize;
/// Buckets in one group: the sub-buckets of one power of two (the linear values below
/// [`SUB`] are group 0), allocated together.
const GROUP: usize = SUB as usize;
/// Number of groups in one recorder.
const GROUPS: usize = BUCKETS / GROUP;
/// Groups the hot counters hold: every value below 2^20 ns (1 ms). What a poll path costs
/// matters for short polls; a poll of a millisecond or more is recorded through the groups.
const HOT_GROUPS: usize = 16;
/// Buckets the hot counters hold.
const HOT: usize = HOT_GROUPS * GROUP;
/// Polls a recorder records through [`SiteRecorder::record`] (a thread's first polls of the
/// site) before it gets its hot counters: a site polled a few times never has them.
pub(crate) const HOT_AFTER: u64 = 32;

/// The upper bounds of the coarse buckets the Prometheus histogram folds a site's recorder
/// buckets into, in nanoseconds (50 µs .. 10 s; one more bucket, `+Inf`, follows). A recorder
/// bucket belongs to the first coarse bucket whose bound is at least its midpoint
/// ([`fold_index`]). Kept here because a recorder keeps its drops in these coarse buckets.
pub(crate) const FOLD_BOUNDS_NS: [u64; 17] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The number of coarse buckets, `+Inf` included.
pub(crate) const FOLDED: usize = FOLD_BOUNDS_NS.len() + 1;

/// The coarse bucket recorder bucket `index` is folded into.
pub(crate) fn fold_index(index: usize) -> usize {
    let value = bucket_value(index);
    FOLD_BOUNDS_NS.partition_point(|&le| le < value)
}

/// Bytes a recorder occupies before its first value: what memory grows by per (site, polling
/// thread) pair, plus [`GROUP_BYTES`] for each power of two it has recorded a value in.
#[cfg(test)]
pub(crate) const RECORDER_BYTES: usize = std::mem::size_of::<SiteRecorder>();

/// Bytes one group of counters occupies.
#[cfg(test)]
pub(crate) const GROUP_BYTES: usize = std::mem::size_of::<Group>();

/// Bytes a recorder's hot counters occupy, once it has them.
#[cfg(test)]
pub(crate) const HOT_BYTES: usize = std::mem::size_of::<Hot>();

/// The bucket holding `ns` (already clamped to [`MAX_VALUE_NS`]).
#[inline]
pub(crate) fn bucket_index(ns: u64) -> usize {
    // Without a branch: below 2 * SUB the shift is 0 and the value is its own index; above,
    // `ns >> shift` is in [SUB, 2 * SUB), the sub-bucket plus one group's worth of indexes.
    let shift = 63 - (ns | (2 * SUB - 1)).leading_zeros() - SUB_BITS;
    ((u64::from(shift) << SUB_BITS) + (ns >> shift)) as usize
}

/// The values `[low, high)` that fall into bucket `index`.
pub(crate) fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, index + 1);
    }
    let shift = index / SUB - 1;
    let low = (SUB + index % SUB) << shift;
    (low, low + (1 << shift))
}

/// The value a bucket stands for when merged into an hdrhistogram: its midpoint.
pub(crate) fn bucket_value(index: usize) -> u64 {
    let (low, high) = bucket_range(index);
    (low + (high - low) / 2).min(MAX_VALUE_NS)
}

/// What [`SiteRecorder::record`] changed, so that a drop mislabelled as a poll can be undone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) bucket: usize,
    pub(crate) ns: u64,
    pub(crate) prev_max_ns: u64,
}

/// The counters of one power of two, on cache lines of their own: another thread's
/// allocations next to them never share a line the poll path writes.
#[derive(Debug)]
#[repr(align(128))]
struct Group([AtomicU64; GROUP]);

impl std::ops::Deref for Group {
    type Target = [AtomicU64; GROUP];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The counters of every bucket below [`HOT`] in one block, for a site this thread polls
/// often: the inline exit finds a bucket's counter at an offset from a pointer it loads
/// before the poll's length is known, where a group's counter is behind the group's pointer,
/// a load that waits for the clock read and the bucket arithmetic.
#[derive(Debug)]
#[repr(align(128))]
struct Hot([AtomicU64; HOT]);

/// One thread's measurements for one site. In declaration order (`repr(C)`): what every
/// poll writes, then the groups (those of polls up to a few microseconds in the first line);
/// on cache lines of its own, like [`Group`].
///
/// A bucket's count is its group's counter plus, below [`HOT`], its hot counter: a recorder
/// counts in its groups until it has recorded [`HOT_AFTER`] polls through
/// [`record`](Self::record), then allocates its hot counters and counts buckets below
/// [`HOT`] there from then on.
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct SiteRecorder {
    busy_ns: AtomicU64,
    max_ns: AtomicU64,
    slow_polls: AtomicU64,
    hot: OnceLock<Box<Hot>>,
    /// Polls recorded through [`record`](Self::record), up to [`HOT_AFTER`].
    general: AtomicU64,
    /// The bucket counters by group, each allocated on its first value.
    groups: [OnceLock<Box<Group>>; GROUPS],
    drops: AtomicU64,
    drop_ns: AtomicU64,
    /// Drops by coarse bucket ([`fold_index`]), and how many of them were slow: with the
    /// polls, the figures that only grow (a relabelled poll moves here).
    drop_buckets: [AtomicU64; FOLDED],
    slow_drops: AtomicU64,
}

#[inline]
fn add(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

#[inline]
fn sub(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_sub(by), Relaxed);
}

/// Like [`add`], publishing every earlier store of the owner thread to a reader that loads
/// `counter` with `Acquire`.
#[inline]
fn add_release(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Release);
}

impl SiteRecorder {
    pub(crate) fn new() -> Self {
        Self {
            groups: std::array::from_fn(|_| OnceLock::new()),
            hot: OnceLock::new(),
            general: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            slow_polls: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            drop_ns: AtomicU64::new(0),
            drop_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            slow_drops: AtomicU64::new(0),
        }
    }

    /// The counter of `bucket`: its hot counter if the recorder has them, else its group's,
    /// the group allocated if this is its first value. Owner thread only.
    #[inline]
    fn counter(&self, bucket: usize) -> &AtomicU64 {
        if let Some(counter) = self.hot.get().and_then(|hot| hot.0.get(bucket)) {
            return counter;
        }
        let group = self.groups[bucket / GROUP]
            .get_or_init(|| Box::new(Group(std::array::from_fn(|_| AtomicU64::new(0)))));
        &group[bucket % GROUP]
    }

    /// How many groups of counters are allocated.
    #[cfg(test)]
    pub(crate) fn groups_allocated(&self) -> usize {
        self.groups.iter().filter(|g| g.get().is_some()).count()
    }

    /// Whether the hot counters are allocated.
    #[cfg(test)]
    pub(crate) fn has_hot_counters(&self) -> bool {
        self.hot.get().is_some()
    }

    /// Records one poll of `ns` (clamped by the caller). Owner thread only.
    #[inline]
    pub(crate) fn record(&self, ns: u64, slow: bool) -> Recorded {
        let general = self.general.load(Relaxed);
        if general < HOT_AFTER {
            self.general.store(general + 1, Relaxed);
            if general + 1 == HOT_AFTER {
                // Before this poll is counted, so that a poll is taken back where it was
                // counted (`relabel_as_drop` runs before this thread records another).
                self.hot
                    .get_or_init(|| Box::new(Hot(std::array::from_fn(|_| AtomicU64::new(0)))));
            }
        }
        let bucket = bucket_index(ns);
        let recorded = self.count(self.counter(bucket), bucket, ns);
        if slow {
            add(&self.slow_polls, 1);
        }
        recorded
    }

    /// Records one poll of `ns` that is not slow, if its bucket has a hot counter (else
    /// records nothing: [`record`](Self::record) does). Owner thread only.
    #[inline(always)]
    pub(crate) fn record_fast(&self, ns: u64) -> Option<Recorded> {
        let hot = self.hot.get()?;
        let bucket = bucket_index(ns);
        Some(self.count(hot.0.get(bucket)?, bucket, ns))
    }

    /// Counts one poll of `ns` in `counter` (bucket `bucket`'s), the busy time and the
    /// maximum. Owner thread only.
    #[inline(always)]
    fn count(&self, counter: &AtomicU64, bucket: usize, ns: u64) -> Recorded {
        add(counter, 1);
        add(&self.busy_ns, ns);
        let prev_max_ns = self.max_ns.load(Relaxed);
        if ns > prev_max_ns {
            self.max_ns.store(ns, Relaxed);
        }
        Recorded {
            bucket,
            ns,
            prev_max_ns,
        }
    }

    /// Turns a recorded poll back into a drop, at the counter that counted it (no hot
    /// counters are allocated between a poll and its relabelling: see
    /// [`record`](Self::record)). Owner thread only.
    ///
    /// The poll's figures are taken away first and the drop's added after them with
    /// `Release`, and [`merge_into`](Self::merge_into) reads the drop's figures first with
    /// `Acquire`: a reader that sees the drop sees the poll taken away, so polls and drops
    /// together are never over-counted, only (for a moment) under-counted.
    pub(crate) fn relabel_as_drop(&self, recorded: Recorded, slow: bool) {
        sub(self.counter(recorded.bucket), 1);
        sub(&self.busy_ns, recorded.ns);
        if self.max_ns.load(Relaxed) == recorded.ns && recorded.prev_max_ns < recorded.ns {
            self.max_ns.store(recorded.prev_max_ns, Relaxed);
        }
        if slow {
            sub(&self.slow_polls, 1);
            add_release(&self.slow_drops, 1);
        }
        add_release(&self.drop_ns, recorded.ns);
        add_release(&self.drop_buckets[fold_index(recorded.bucket)], 1);
        add_release(&self.drops, 1);
    }

    /// The time polls recorded here held the thread, in nanoseconds.
    pub(crate) fn busy_ns(&self) -> u64 {
        self.busy_ns.load(Relaxed)
    }

    /// How many drops were recorded here.
    pub(crate) fn drops(&self) -> u64 {
        self.drops.load(Relaxed)
    }

    /// Adds this recorder's counts into `into`. The drop's figures are read first (see
    /// [`relabel_as_drop`](Self::relabel_as_drop)).
    pub(crate) fn merge_into(&self, into: &mut SiteTotals) {
        into.drops += self.drops.load(Acquire);
        for (i, bucket) in self.drop_buckets.iter().enumerate() {
            into.drop_buckets[i] += bucket.load(Acquire);
        }
        into.drop_ns += self.drop_ns.load(Acquire);
        into.slow_drops += self.slow_drops.load(Acquire);
        for (g, group) in self.groups.iter().enumerate() {
            // A group published by `get_or_init` is seen whole, its counters zeroed first.
            let Some(group) = group.get() else { continue };
            for (i, bucket) in group.iter().enumerate() {
                into.buckets[g * GROUP + i] += bucket.load(Relaxed);
            }
        }
        // Published whole by `get_or_init`, like a group.
        if let Some(hot) = self.hot.get() {
            for (i, bucket) in hot.0.iter().enumerate() {
                into.buckets[i] += bucket.load(Relaxed);
            }
        }
        into.busy_ns += self.busy_ns.load(Relaxed);
        into.max_ns = into.max_ns.max(self.max_ns.load(Relaxed));
        into.slow_polls += self.slow_polls.load(Relaxed);
    }
}

/// A site's measurements summed over every thread.
#[derive(Clone, Debug)]
pub(crate) struct SiteTotals {
    pub(crate) buckets: Vec<u64>,
    pub(crate) busy_ns: u64,
    pub(crate) max_ns: u64,
    pub(crate) slow_polls: u64,
    pub(crate) drops: u64,
    pub(crate) drop_ns: u64,
    /// The drops by coarse bucket ([`fold_index`]).
    pub(crate) drop_buckets: [u64; FOLDED],
    pub(crate) slow_drops: u64,
}

impl Default for SiteTotals {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            busy_ns: 0,
            max_ns: 0,
            slow_polls: 0,
            drops: 0,
            drop_ns: 0,
            drop_buckets: [0; FOLDED],
            slow_drops: 0,
        }
    }
}

impl SiteTotals {
    pub(crate) fn polls(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// An hdrhistogram with these counts, each bucket recorded at its midpoint.
    pub(crate) fn histogram(&self) -> Histogram<u64> {
        histogram_of(&self.buckets)
    }

    /// The percentiles of [`histogram`](Self::histogram), none above the exact maximum (a
    /// bucket's midpoint can be a little above the largest value recorded in it).
    pub(crate) fn percentiles(&self, hist: &Histogram<u64>) -> Percentiles {
        let p = histogram::percentiles(hist);
        Percentiles {
            p50_ns: p.p50_ns.min(self.max_ns),
            p90_ns: p.p90_ns.min(self.max_ns),
            p99_ns: p.p99_ns.min(self.max_ns),
            p999_ns: p.p999_ns.min(self.max_ns),
        }
    }
}

/// An hdrhistogram with the counts of recorder buckets (whole or per interval).
pub(crate) fn histogram_of(buckets: &[u64]) -> Histogram<u64> {
    let mut hist = histogram::new_histogram();
    for (bucket, &count) in buckets.iter().enumerate() {
        if count > 0 {
            // Values are clamped to the histogram's bound, so recording cannot fail.
            let _ = hist.record_n(bucket_value(bucket), count);
        }
    }
    hist
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_inside_its_bucket() {
        let mut values: Vec<u64> = (0..5000).collect();
        let mut v = 5000u64;
        while v < MAX_VALUE_NS {
            values.extend([v - 1, v, v + 1]);
            v = v * 3 / 2;
        }
        values.push(MAX_VALUE_NS);
        for value in values {
            let index = bucket_index(value);
            assert!(index < BUCKETS, "{value} -> {index}");
            let (low, high) = bucket_range(index);
            assert!(
                low <= value && value < high,
                "{value} not in [{low}, {high})"
            );
            assert!(
                (high - low) * 32 <= low.max(32),
                "bucket too wide at {value}"
            );
        }
    }

    #[test]
    fn a_recorder_holds_only_the_powers_of_two_it_recorded() {
        assert_eq!((BUCKETS, GROUPS), (1216, 38));
        const { assert!(RECORDER_BYTES <= 1024 && GROUP_BYTES == 256 && HOT_BYTES == 4096) };
        let recorder = SiteRecorder::new();
        assert_eq!(recorder.groups_allocated(), 0);
        // Polls of 1 µs to 1 ms: 11 powers of two, fewer polls than it takes to get the
        // hot counters.
        let mut ns = 1_000;
        let mut polls = 0;
        while ns <= 1_000_000 {
            recorder.record(ns, false);
            polls += 1;
            ns += ns / 3;
        }
        assert!(polls < HOT_AFTER, "{polls}");
        assert!(!recorder.has_hot_counters());
        assert_eq!(recorder.groups_allocated(), 11);
        let bytes = RECORDER_BYTES + recorder.groups_allocated() * GROUP_BYTES;
        assert!(bytes < 4 * 1024, "{bytes} bytes");
        // Every value of the range, and the clamped maximum, stays within the 38 groups.
        recorder.record(0, false);
        recorder.record(MAX_VALUE_NS, true);
        assert_eq!(recorder.groups_allocated(), 13);
        let mut totals = SiteTotals::default();
        recorder.merge_into(&mut totals);
        assert_eq!(totals.buckets[bucket_index(MAX_VALUE_NS)], 1);
        assert_eq!(totals.buckets[0], 1);
        assert_eq!(totals.polls(), polls + 2);
    }

    #[test]
    fn a_site_polled_often_counts_short_polls_in_its_hot_counters_and_no_poll_twice() {
        let recorder = SiteRecorder::new();
        for _ in 0..HOT_AFTER - 1 {
            recorder.record(2_000, false);
        }
        assert!(!recorder.has_hot_counters());
        assert_eq!(recorder.record_fast(2_000), None, "nothing to count in yet");
        recorder.record(2_000, false);
        assert!(recorder.has_hot_counters());
        let groups = recorder.groups_allocated();
        // Below 1 ms: the inline exit's counters, no new group.
        for ns in [5, 2_000, 40_000, (1 << 20) - 1] {
            assert!(recorder.record_fast(ns).is_some(), "{ns}");
        }
        assert_eq!(recorder.groups_allocated(), groups);
        // From 1 ms: the groups, through the general path.
        assert_eq!(recorder.record_fast(1 << 20), None);
        recorder.record(1 << 20, false);
        assert_eq!(recorder.groups_allocated(), groups + 1);
        let mut totals = SiteTotals::default();
        recorder.merge_into(&mut totals);
        // 31 in the group of 2 µs, the 32nd and one more in the hot counters: one bucket.
        assert_eq!(totals.buckets[bucket_index(2_000)], HOT_AFTER + 1);
        assert_eq!(totals.polls(), HOT_AFTER + 5);
        let busy = (HOT_AFTER + 1) * 2_000 + 5 + 40_000 + (1 << 20) - 1 + (1 << 20);
        assert_eq!(totals.busy_ns, busy);
    }

    #[test]
    fn the_poll_that_brings_the_hot_counters_is_taken_back_where_it_was_counted() {
        let recorder = SiteRecorder::new();
        for _ in 0..HOT_AFTER - 1 {
            recorder.record(2_000, false);
        }
        let last = recorder.record(3_000, false);
        assert!(recorder.has_hot_counters());
        recorder.relabel_as_drop(last, false);
        let mut totals = SiteTotals::default();
        recorder.merge_into(&mut totals);
        assert_eq!(totals.polls(), HOT_AFTER - 1);
        assert_eq!(
            totals.buckets[bucket_index(3_000)],
            0,
            "{:?}",
            &totals.buckets[..400]
        );
        assert_eq!((totals.drops, totals.drop_ns), (1, 3_000));
    }

    #[test]
    fn buckets_are_contiguous() {
        for index in 1..BUCKETS {
            assert_eq!(
                bucket_range(index - 1).1,
                bucket_range(index).0,
                "gap at {index}"
            );
        }
    }

    #[test]
    fn relabelling_a_poll_as_a_drop_restores_the_counts() {
        let recorder = SiteRecorder::new();
        recorder.record(1_000, false);
        let second = recorder.record(50_000_000, true);
        recorder.relabel_as_drop(second, true);
        let mut totals = SiteTotals::default();
        recorder.merge_into(&mut totals);
        assert_eq!(totals.polls(), 1);
        assert_eq!(totals.busy_ns, 1_000);
        assert_eq!(totals.max_ns, 1_000);
        assert_eq!(totals.slow_polls, 0);
        assert_eq!((totals.drops, totals.drop_ns), (1, 50_000_000));
        assert_eq!(totals.slow_drops, 1);
        assert_eq!(totals.drop_buckets[fold_index(bucket_index(50_000_000))], 1);
        assert_eq!(totals.drop_buckets.iter().sum::<u64>(), 1);
    }

    #[test]
    fn percentiles_never_exceed_the_exact_maximum() {
        let recorder = SiteRecorder::new();
        for _ in 0..98 {
            recorder.record(10_000, false);
        }
        // The top of its bucket: the bucket's midpoint is below it, the hdrhistogram's
        // equivalent value may be above.
        recorder.record(50_000_000, true);
        recorder.record(50_000_000, true);
        let mut totals = SiteTotals::default();
        recorder.merge_into(&mut totals);
        let p = totals.percentiles(&totals.histogram());
        assert!(p.p99_ns <= totals.max_ns && p.p999_ns <= totals.max_ns);
        // Each within its value's bucket (hdrhistogram reports a bucket's highest
        // equivalent value).
        let (low, high) = bucket_range(bucket_index(50_000_000));
        assert!((low..high).contains(&p.p99_ns), "{p:?}");
        let (low, high) = bucket_range(bucket_index(10_000));
        assert!((low..high).contains(&p.p50_ns), "{p:?}");
    }
}

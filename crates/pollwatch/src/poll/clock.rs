//! The poll-path clock: a raw CPU counter (TSC where the CPU has an invariant one) that costs a
//! few nanoseconds to read, converted to nanoseconds only when a duration is needed.
//!
//! Two `Instant::now()` calls per poll cost ~50 ns on a virtualised 2-core machine, more than
//! the whole poll-path budget; `quanta`'s raw counter read is one `rdtsc`. Where `quanta` reads
//! the counter, the poll path reads it inline (`rdtsc`) and scales a delta with one multiply by
//! `quanta`'s calibration; where no reliable counter exists, quanta falls back to the monotonic
//! clock, so readings stay correct.
//!
//! The clock's origin, taken when the layer is built, is pollwatch's one time base for "since
//! start": report uptimes, stall starts, slow-poll ends and interval-log offsets all count
//! from it, so they agree whatever the wall clock does.

use std::num::NonZeroU64;

/// A bound on a span of raw readings, in the clock's ticks and in nanoseconds (see
/// [`Clock::limit`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    ticks: u64,
    ns: u64,
}

/// A clock shared by every thread of one layer. Raw readings are only comparable with
/// readings of the same `Clock`.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    inner: quanta::Clock,
    origin: u64,
    /// Where `inner` reads the time-stamp counter: nanoseconds per tick times 2^32, so the
    /// poll path reads the counter and scales a delta inline instead of calling into
    /// `quanta` for each (neither `raw` nor `delta_as_nanos` is inlined across crates).
    /// Never zero, so reading it is one load, with no discriminant to test.
    tsc_scale: Option<NonZeroU64>,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self::from_quanta(quanta::Clock::new())
    }

    /// A clock reading `inner`; tests pass a mocked one.
    pub(crate) fn from_quanta(inner: quanta::Clock) -> Self {
        let tsc_scale = tsc::scale_of(&inner).and_then(NonZeroU64::new);
        let origin = inner.raw();
        Self {
            inner,
            origin,
            tsc_scale,
        }
    }

    /// A raw reading; never zero, so zero can mean "idle" in a slot.
    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        if self.reads_tsc() {
            self.now_in::<true>()
        } else {
            self.now_in::<false>()
        }
    }

    /// Whether raw readings are the time-stamp counter, read inline: what `TSC` must say in
    /// [`now_in`](Self::now_in) and [`within_in`](Self::within_in).
    #[inline(always)]
    pub(crate) fn reads_tsc(&self) -> bool {
        self.tsc_scale.is_some()
    }

    /// [`now`](Self::now) for a clock that [`reads_tsc`](Self::reads_tsc) or not, known
    /// where the poll path is built rather than checked on each read. The time-stamp counter
    /// counts from the machine's start, past zero long before any poll.
    #[inline(always)]
    pub(crate) fn now_in<const TSC: bool>(&self) -> u64 {
        if TSC {
            tsc::read()
        } else {
            self.inner.raw().max(1)
        }
    }

    /// What [`within_in`](Self::within_in) compares a span of raw readings with to know it lasted
    /// at most `limit_ns`, and that it can scale it with a 64-bit multiply.
    pub(crate) fn limit(&self, limit_ns: u64) -> Limit {
        let ticks = match self.tsc_scale {
            Some(scale) => {
                let ticks = (u128::from(limit_ns) << 32) / u128::from(scale.get());
                ticks.min(u128::from(u64::MAX / scale.get())) as u64
            }
            None => u64::MAX,
        };
        Limit {
            ticks,
            ns: limit_ns,
        }
    }

    /// Nanoseconds from `start` to `end` when `end` is after `start` by at most `limit`;
    /// `None` otherwise (`TSC` as in [`now_in`](Self::now_in)). Where the clock reads the
    /// time-stamp counter: a subtraction, a compare and a multiply.
    #[inline(always)]
    pub(crate) fn within_in<const TSC: bool>(
        &self,
        start: u64,
        end: u64,
        limit: Limit,
    ) -> Option<u64> {
        let ticks = end.wrapping_sub(start);
        if ticks > limit.ticks {
            return None;
        }
        if TSC {
            // At most `u64::MAX / scale` ticks (see `limit`): no overflow.
            Some((ticks * self.tsc_scale.map_or(0, NonZeroU64::get)) >> 32)
        } else {
            Some(self.inner.delta_as_nanos(start, end)).filter(|&ns| ns <= limit.ns)
        }
    }

    /// Nanoseconds from `start` to `end`; zero when `end` is not after `start`.
    #[inline(always)]
    pub(crate) fn delta_ns(&self, start: u64, end: u64) -> u64 {
        match self.tsc_scale {
            Some(_) if end <= start => 0,
            Some(scale) => ((u128::from(end - start) * u128::from(scale.get())) >> 32) as u64,
            None => self.inner.delta_as_nanos(start, end),
        }
    }

    /// Nanoseconds from `start` to now.
    pub(crate) fn since_ns(&self, start: u64) -> u64 {
        self.delta_ns(start, self.now())
    }

    /// Nanoseconds from the clock's origin to the raw reading `at`.
    pub(crate) fn since_origin_ns(&self, at: u64) -> u64 {
        self.delta_ns(self.origin, at)
    }

    /// Nanoseconds from the clock's origin to now: how long the layer has existed.
    pub(crate) fn uptime_ns(&self) -> u64 {
        self.since_origin_ns(self.now())
    }

    /// [`uptime_ns`](Self::uptime_ns) as a `Duration`.
    pub(crate) fn uptime(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.uptime_ns())
    }
}

/// The time-stamp counter where `quanta` reads it.
#[cfg(target_arch = "x86_64")]
mod tsc {
    pub(super) use pollwatch_capture::tsc::read;

    /// Ticks over which the scale is taken: 2^40 (minutes at GHz rates), so that the scale
    /// keeps `quanta`'s calibration to a part in a billion.
    const SPAN_BITS: u32 = 40;

    /// Nanoseconds per tick times 2^32, when `clock`'s raw readings are the time-stamp
    /// counter (`quanta` chose it: the CPU has an invariant TSC and calibration passed): one
    /// of three readings of `clock` falls between two of the counter.
    pub(super) fn scale_of(clock: &quanta::Clock) -> Option<u64> {
        let reads_tsc = (0..3).any(|_| {
            let before = read();
            let raw = clock.raw();
            let after = read();
            before <= raw && raw <= after
        });
        reads_tsc.then(|| clock.delta_as_nanos(1, (1 << SPAN_BITS) + 1) >> (SPAN_BITS - 32))
    }
}

/// No time-stamp counter: readings go through `quanta`.
#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    /// Never called: no scale is set here.
    pub(super) fn read() -> u64 {
        0
    }

    pub(super) fn scale_of(_clock: &quanta::Clock) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inline_scale_agrees_with_quanta() {
        let clock = Clock::new();
        let quanta = quanta::Clock::new();
        for ticks in [0u64, 1, 1_000, 3_000_000, 10_000_000_000] {
            let start = clock.now();
            let ours = clock.delta_ns(start, start + ticks);
            let theirs = quanta.delta_as_nanos(start, start + ticks);
            let error = ours.abs_diff(theirs);
            assert!(
                error <= 1 + theirs / 1_000_000,
                "{ticks} ticks: {ours} ns here, {theirs} ns by quanta"
            );
        }
        assert_eq!(clock.delta_ns(10, 5), 0);
    }

    #[test]
    fn a_span_within_the_limit_is_scaled_as_delta_ns_scales_it_and_a_longer_one_is_not() {
        fn check<const TSC: bool>(clock: &Clock) {
            let limit_ns = 10_000_000;
            let limit = clock.limit(limit_ns);
            let start = clock.now();
            // Find the longest span within the limit, in raw units, by bisection.
            let (mut inside, mut outside) = (0u64, u64::MAX / 2);
            while outside - inside > 1 {
                let mid = inside + (outside - inside) / 2;
                if clock.within_in::<TSC>(start, start + mid, limit).is_some() {
                    inside = mid;
                } else {
                    outside = mid;
                }
            }
            for raw in [0, 1, inside / 3, inside] {
                let ns = clock.within_in::<TSC>(start, start + raw, limit);
                assert_eq!(ns, Some(clock.delta_ns(start, start + raw)), "{raw} raw");
            }
            assert!(clock.delta_ns(start, start + inside) <= limit_ns);
            assert!(clock.delta_ns(start, start + outside) >= limit_ns);
            // An end before the start (another CPU's counter): 0, as `delta_ns` has it, or
            // left to the caller's general path.
            let backwards = clock.within_in::<TSC>(start, start - 1, limit);
            assert!(matches!(backwards, None | Some(0)), "{backwards:?}");
        }
        let clock = Clock::new();
        if clock.reads_tsc() {
            check::<true>(&clock);
        }
        let (inner, mock) = quanta::Clock::mock();
        mock.increment(5_000u64);
        let mocked = Clock::from_quanta(inner);
        assert!(!mocked.reads_tsc());
        check::<false>(&mocked);
    }

    #[test]
    fn a_mocked_clock_is_read_through_quanta() {
        let (inner, mock) = quanta::Clock::mock();
        mock.increment(5_000u64);
        let clock = Clock::from_quanta(inner);
        assert_eq!(clock.tsc_scale, None);
        assert_eq!(clock.now(), 5_000);
        assert_eq!(clock.delta_ns(5_000, 7_500), 2_500);
    }
}

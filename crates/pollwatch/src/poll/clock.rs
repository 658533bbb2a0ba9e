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

/// A clock shared by every thread of one layer. Raw readings are only comparable with
/// readings of the same `Clock`.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    inner: quanta::Clock,
    origin: u64,
    /// Where `inner` reads the time-stamp counter: nanoseconds per tick times 2^32, so the
    /// poll path reads the counter and scales a delta inline instead of calling into
    /// `quanta` for each (neither `raw` nor `delta_as_nanos` is inlined across crates).
    tsc_scale: Option<u64>,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self::from_quanta(quanta::Clock::new())
    }

    /// A clock reading `inner`; tests pass a mocked one.
    pub(crate) fn from_quanta(inner: quanta::Clock) -> Self {
        let tsc_scale = tsc::scale_of(&inner);
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
        let raw = match self.tsc_scale {
            Some(_) => tsc::read(),
            None => self.inner.raw(),
        };
        raw.max(1)
    }

    /// Nanoseconds from `start` to `end`; zero when `end` is not after `start`.
    #[inline(always)]
    pub(crate) fn delta_ns(&self, start: u64, end: u64) -> u64 {
        match self.tsc_scale {
            Some(_) if end <= start => 0,
            // Below 2^32 ticks (a second or more), one 64-bit multiply: the poll path's
            // bucket waits on this result, and the 128-bit one takes twice as long.
            Some(scale) if end - start <= u64::from(u32::MAX) && scale <= u64::from(u32::MAX) => {
                ((end - start) * scale) >> 32
            }
            Some(scale) => ((u128::from(end - start) * u128::from(scale)) >> 32) as u64,
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
    fn a_mocked_clock_is_read_through_quanta() {
        let (inner, mock) = quanta::Clock::mock();
        mock.increment(5_000u64);
        let clock = Clock::from_quanta(inner);
        assert_eq!(clock.tsc_scale, None);
        assert_eq!(clock.now(), 5_000);
        assert_eq!(clock.delta_ns(5_000, 7_500), 2_500);
    }
}

//! The poll-path clock: a raw CPU counter (TSC where the CPU has an invariant one) that costs a
//! few nanoseconds to read, converted to nanoseconds only when a duration is needed.
//!
//! Two `Instant::now()` calls per poll cost ~50 ns on a virtualised 2-core machine, more than
//! the whole poll-path budget; `quanta`'s raw counter read is one `rdtsc`. Where no reliable
//! counter exists, quanta falls back to the monotonic clock, so readings stay correct.
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
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self::from_quanta(quanta::Clock::new())
    }

    /// A clock reading `inner`; tests pass a mocked one.
    pub(crate) fn from_quanta(inner: quanta::Clock) -> Self {
        let origin = inner.raw();
        Self { inner, origin }
    }

    /// A raw reading; never zero, so zero can mean "idle" in a slot.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.inner.raw().max(1)
    }

    /// Nanoseconds from `start` to `end`; zero when `end` is not after `start`.
    #[inline]
    pub(crate) fn delta_ns(&self, start: u64, end: u64) -> u64 {
        self.inner.delta_as_nanos(start, end)
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

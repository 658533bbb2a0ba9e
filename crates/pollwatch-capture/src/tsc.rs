//! The CPU's time-stamp counter: the cheapest clock a poll timer can read (x86_64).

/// The time-stamp counter (`rdtsc`). It counts at a constant rate in every power state where
/// the CPU says so (`constant_tsc` and `nonstop_tsc`: an invariant TSC); elsewhere two reads
/// count cycles, not time.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn read() -> u64 {
    // SAFETY: `rdtsc` reads a counter into registers; it touches no memory, and every x86_64
    // CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

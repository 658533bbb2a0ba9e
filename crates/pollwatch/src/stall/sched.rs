//! Whether a stalled thread ran or waited for a CPU: the scheduler's accounting of the thread
//! (time on a CPU, time runnable on a run queue) read at each look at a stall and at its end,
//! and the rule that tells a host short of CPU from code that holds its thread.
//!
//! The rule: a stall that looks like CPU work ([`Cause::Cpu`]: the thread was running, in no
//! syscall, with no blocking call in its stack) is [`Cause::Descheduled`] when, from the
//! poll's first reading (below) to the last one (at a later look, or once the poll ended),
//! - the thread waited on a run queue for a CPU for more than half of the time judged (the
//!   span between the readings, or the poll's length when it ended and is shorter: the
//!   waiting dominates, not a sleep the look missed), and
//! - it ran for less than half the threshold: with a CPU to itself, the code would not have
//!   held the thread past the threshold in that time, with a margin for the CPU time it used
//!   before the first reading (a busy-wait on the clock, which uses what CPU it gets for as
//!   long as it waits, uses more than that and stays `cpu` on a busy host).
//!
//! A stall that looks like a lock wait ([`Cause::Lock`]) is `Descheduled` by the same rule:
//! the lock's holder was itself kept off a CPU (tokio's own
//! locks, contended between two workers sharing one CPU, look so), and the waiter waited for a
//! CPU more than for the lock. A lock whose holder sleeps or blocks leaves its waiter asleep,
//! not runnable, and stays `lock`.
//!
//! Such a thread was held back by other threads or processes, or by its cgroup's CPU quota
//! (throttled threads stay queued, so quota throttling counts as run-queue wait). Code that
//! does more than a threshold of CPU work is a stall of its own, on a busy host too, and stays
//! `cpu`. The last reading is taken when the watchdog sees the poll has ended, and by then the
//! thread may have gone idle (a watchdog that itself waited for a CPU looks late): so once the
//! poll's length is known, the wait is judged against it when it is shorter than the span,
//! and the run time compared with the threshold is the share of the span the poll lasted.

//! The span judged starts before detection when it can: the poll path reads no scheduler
//! figures (a file read per poll is far beyond its budget), but the watchdog reads them once
//! for a poll it sees running past a quarter of the threshold ([`FirstReadings`]), so a
//! thread that was descheduled early in its poll and got a CPU back just before detection
//! is still judged on most of its poll. A poll first seen already past the threshold is
//! judged from detection on.

use pollwatch_capture::{Inspector, SchedTimes, Throttling, Tid};

use pollwatch_judge::classify::Cause;

/// One reading of a thread's scheduler accounting, with when it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SchedReading {
    /// When, in nanoseconds from the poll clock's origin.
    pub(crate) at_ns: u64,
    pub(crate) times: SchedTimes,
    /// The process's cgroup throttling so far, where cgroup v2 has a CPU controller.
    pub(crate) throttling: Option<Throttling>,
}

impl SchedReading {
    /// Reads thread `tid`'s accounting now (`at_ns` from the poll clock's origin); `None`
    /// where the platform has none.
    pub(crate) fn take(inspector: &dyn Inspector, tid: Tid, at_ns: u64) -> Option<Self> {
        Some(Self {
            at_ns,
            times: inspector.sched_times(tid)?,
            throttling: inspector.cgroup_throttling(),
        })
    }
}

/// The first reading of each slot's current poll, taken by the watchdog when it sees the poll
/// running past a quarter of the threshold: the start of the span a stall is judged on.
#[derive(Debug, Default)]
pub(crate) struct FirstReadings {
    /// Per slot: the poll's sequence number and raw start (polls nested in one outermost
    /// poll share its number), and its first reading.
    polls: Vec<Option<(PollId, Option<SchedReading>)>>,
}

/// A poll of one slot: its sequence number and raw start.
type PollId = (u64, u64);

impl FirstReadings {
    /// Poll `poll` (sequence number, raw start) of slot `index` has run `running_ns`: reads (with `take`) once a poll runs
    /// past a quarter of `threshold_ns`, and returns the poll's first reading.
    pub(crate) fn seen(
        &mut self,
        index: usize,
        poll: PollId,
        running_ns: u64,
        threshold_ns: u64,
        take: impl FnOnce() -> Option<SchedReading>,
    ) -> Option<SchedReading> {
        if self.polls.len() <= index {
            self.polls.resize(index + 1, None);
        }
        match self.polls[index] {
            Some((known, reading)) if known == poll => reading,
            _ if running_ns >= threshold_ns / 4 => {
                let reading = take();
                self.polls[index] = Some((poll, reading));
                reading
            }
            _ => None,
        }
    }
}

/// What a stalled thread did between two readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scheduled {
    /// Wall time between the readings.
    pub(crate) span_ns: u64,
    /// Time on a CPU.
    pub(crate) run_ns: u64,
    /// Time runnable, waiting on a run queue for a CPU.
    pub(crate) wait_ns: u64,
    /// Time the process's cgroup was throttled by its CPU quota, when known.
    pub(crate) throttled_ns: Option<u64>,
}

impl Scheduled {
    /// From the poll's first reading to a later one.
    pub(crate) fn between(first: &SchedReading, last: &SchedReading) -> Self {
        let throttled_ns = first
            .throttling
            .zip(last.throttling)
            .map(|(a, b)| b.throttled_usec.saturating_sub(a.throttled_usec) * 1_000);
        Self {
            span_ns: last.at_ns.saturating_sub(first.at_ns),
            run_ns: last.times.run_ns.saturating_sub(first.times.run_ns),
            wait_ns: last.times.wait_ns.saturating_sub(first.times.wait_ns),
            throttled_ns,
        }
    }

    /// The figures within the first `poll_ns` of the span (the poll's part of it, when the
    /// poll ended before the last reading), in proportion: what the thread did while the poll
    /// held it, so that run time and run-queue wait never add up to more than the poll.
    pub(crate) fn within(self, poll_ns: Option<u64>) -> Self {
        let Some(poll) = poll_ns.filter(|&poll| poll < self.span_ns) else {
            return self;
        };
        let part = |ns: u64| {
            u64::try_from(u128::from(ns) * u128::from(poll) / u128::from(self.span_ns))
                .unwrap_or(u64::MAX)
        };
        Self {
            span_ns: poll,
            run_ns: part(self.run_ns),
            wait_ns: part(self.wait_ns),
            throttled_ns: self.throttled_ns.map(part),
        }
    }

    /// Whether the thread mostly waited for a CPU (see [`Scheduled::mostly_runnable`]): the
    /// rule for CPU work as for lock waits.
    pub(crate) fn short_of_cpu(&self, threshold_ns: u64, poll_ns: Option<u64>) -> bool {
        self.mostly_runnable(threshold_ns, poll_ns)
    }

    /// Whether most of the poll went unwatched (its first reading came `unseen_ns` after it
    /// began, more than the part seen: the watchdog itself was kept off a CPU that long) and
    /// the part seen shows less than half of `threshold_ns` of run time: nothing shows CPU work
    /// by the code, on a host that just showed it is short of CPU.
    pub(crate) fn mostly_unseen_and_idle(
        &self,
        threshold_ns: u64,
        poll_ns: Option<u64>,
        unseen_ns: u64,
    ) -> bool {
        let seen = poll_ns.map_or(self.span_ns, |poll| poll.min(self.span_ns));
        unseen_ns > seen && self.run_in(poll_ns) < threshold_ns / 2
    }

    /// Whether the thread waited on a run queue for more than half of the poll's `poll_ns`
    /// (or of the span, when shorter), and ran less than half of `threshold_ns` in it.
    pub(crate) fn mostly_runnable(&self, threshold_ns: u64, poll_ns: Option<u64>) -> bool {
        let judged = poll_ns.map_or(self.span_ns, |poll| poll.min(self.span_ns));
        judged > 0 && self.wait_ns > judged / 2 && self.run_in(poll_ns) < threshold_ns / 2
    }

    /// The run time in the first `poll_ns` of the span, in proportion: the last reading can
    /// come well after the poll ended (the watchdog waits for a CPU too), and the thread runs
    /// further polls meanwhile.
    fn run_in(&self, poll_ns: Option<u64>) -> u64 {
        match poll_ns {
            Some(poll) if poll < self.span_ns => {
                u64::try_from(u128::from(self.run_ns) * u128::from(poll) / u128::from(self.span_ns))
                    .unwrap_or(u64::MAX)
            }
            _ => self.run_ns,
        }
    }
}

/// The cause of a stall whose look showed `looked` and whose thread was `scheduled` so
/// while watched (the poll lasting `poll_ns` of that span, when it is known to have ended;
/// its first `unseen_ns` before the first reading), with the threshold `threshold_ns`: CPU
/// work the thread mostly waited to do is the host's shortage of CPU, and so is a poll the
/// watchdog could not watch for most of it and saw do little.
pub(crate) fn cause(
    looked: Cause,
    scheduled: Option<&Scheduled>,
    threshold_ns: u64,
    poll_ns: Option<u64>,
    unseen_ns: u64,
) -> Cause {
    match (looked, scheduled) {
        (Cause::Cpu, Some(s))
            if s.short_of_cpu(threshold_ns, poll_ns)
                || s.mostly_unseen_and_idle(threshold_ns, poll_ns, unseen_ns) =>
        {
            Cause::Descheduled
        }
        (Cause::Lock, Some(s)) if s.mostly_runnable(threshold_ns, poll_ns) => Cause::Descheduled,
        _ => looked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    /// The threshold.
    const T: u64 = 10 * MS;

    fn reading(at_ms: u64, run_ms: u64, wait_ms: u64) -> SchedReading {
        SchedReading {
            at_ns: at_ms * MS,
            times: SchedTimes {
                run_ns: run_ms * MS,
                wait_ns: wait_ms * MS,
                timeslices: 0,
            },
            throttling: None,
        }
    }

    #[test]
    fn the_figures_shown_are_the_poll_s_part_of_the_span() {
        // Read from 5 to 65 ms; the poll ended at 25 ms: a third of the span is the poll's.
        let s = Scheduled::between(&reading(5, 100, 50), &reading(65, 112, 95));
        let within = s.within(Some(20 * MS));
        assert_eq!(within.span_ns, 20 * MS);
        assert_eq!((within.run_ns, within.wait_ns), (4 * MS, 15 * MS));
        assert!(within.run_ns + within.wait_ns <= within.span_ns);
        assert_eq!(s.within(None), s, "still running: the whole span");
        assert_eq!(s.within(Some(90 * MS)), s, "a poll longer than the span");
    }

    #[test]
    fn a_poll_mostly_unwatched_that_did_little_while_watched_is_not_cpu_work() {
        // The watchdog, itself kept off a CPU, first read the thread 24 ms into a poll that
        // ended 0.2 ms later, having run all of that 0.2 ms: no sign of CPU work.
        let s = Scheduled {
            span_ns: 200_000,
            run_ns: 200_000,
            wait_ns: 0,
            throttled_ns: None,
        };
        let unseen = 24 * MS;
        assert_eq!(
            cause(Cause::Cpu, Some(&s), T, Some(200_000), unseen),
            Cause::Descheduled
        );
        // Seen from its start, the same figures are CPU work; and a poll mostly unseen that
        // ran half the threshold while watched is CPU work too.
        assert_eq!(cause(Cause::Cpu, Some(&s), T, Some(200_000), 0), Cause::Cpu);
        let ran = Scheduled {
            span_ns: 6 * MS,
            run_ns: 6 * MS,
            wait_ns: 0,
            throttled_ns: None,
        };
        assert_eq!(
            cause(Cause::Cpu, Some(&ran), T, Some(6 * MS), unseen),
            Cause::Cpu
        );
        // A sleep is never judged by it.
        assert_eq!(
            cause(Cause::Sleep, Some(&s), T, Some(200_000), unseen),
            Cause::Sleep
        );
    }

    #[test]
    fn cpu_work_that_mostly_waited_for_a_cpu_is_descheduled() {
        // Detected at 5 ms, ended at 25 ms: ran 4 ms, waited 15 ms on the run queue.
        let s = Scheduled::between(&reading(5, 100, 50), &reading(25, 104, 65));
        assert_eq!((s.run_ns, s.wait_ns), (4 * MS, 15 * MS));
        assert!(s.short_of_cpu(T, None));
        assert_eq!(cause(Cause::Cpu, Some(&s), T, None, 0), Cause::Descheduled);
    }

    #[test]
    fn cpu_work_that_ran_or_waited_half_the_time_or_less_stays_cpu() {
        let ran = Scheduled::between(&reading(5, 100, 50), &reading(25, 119, 51));
        assert_eq!(cause(Cause::Cpu, Some(&ran), T, None, 0), Cause::Cpu);
        // Exactly half is not more than half.
        let half = Scheduled::between(&reading(5, 100, 50), &reading(25, 110, 60));
        assert_eq!(cause(Cause::Cpu, Some(&half), T, None, 0), Cause::Cpu);
        // Time asleep after a 15 ms poll (the thread went idle before the last reading) does
        // not count: 3 ms run, 9 ms waited, in 40 ms of wall time.
        let idle = Scheduled::between(&reading(5, 100, 50), &reading(45, 103, 59));
        assert_eq!(
            cause(Cause::Cpu, Some(&idle), T, Some(15 * MS), 0),
            Cause::Descheduled
        );
        // Asleep for most of a poll that looked like CPU work at its look (a page fault, a
        // lock in the kernel): not descheduled, however short its run.
        assert_eq!(cause(Cause::Cpu, Some(&idle), T, None, 0), Cause::Cpu);
        // Half a threshold of CPU work or more is a stall of its own, however long it also
        // waited.
        let busy = Scheduled::between(&reading(5, 100, 50), &reading(100, 105, 115));
        assert_eq!(cause(Cause::Cpu, Some(&busy), T, None, 0), Cause::Cpu);
        assert_eq!(
            cause(Cause::Cpu, Some(&busy), 11 * MS, None, 0),
            Cause::Descheduled
        );
        // The same figures read long after a 20 ms poll ended: 1 ms of the run was the poll's.
        assert_eq!(
            cause(Cause::Cpu, Some(&busy), T, Some(19 * MS), 0),
            Cause::Descheduled
        );
        // No time between the readings, or no readings: nothing to judge.
        let none = Scheduled::between(&reading(5, 100, 50), &reading(5, 100, 50));
        assert_eq!(cause(Cause::Cpu, Some(&none), T, None, 0), Cause::Cpu);
        assert_eq!(cause(Cause::Cpu, None, T, None, 0), Cause::Cpu);
    }

    #[test]
    fn only_cpu_work_and_lock_waits_can_be_descheduled() {
        // A thread asleep neither runs nor waits; one that waited for a CPU while its look
        // showed a blocking call keeps the call's cause.
        let waited = Scheduled::between(&reading(5, 100, 50), &reading(25, 101, 68));
        for looked in [Cause::Sleep, Cause::FileIo, Cause::Unknown] {
            assert_eq!(cause(looked, Some(&waited), T, None, 0), looked);
        }
        // A lock waiter that was runnable for 18 of the 20 ms: its lock's holder was kept off
        // a CPU too.
        assert_eq!(
            cause(Cause::Lock, Some(&waited), T, None, 0),
            Cause::Descheduled
        );
        // One runnable for 10 of a 22 ms poll, asleep on the lock the rest: a lock wait.
        let locked = Scheduled::between(&reading(5, 100, 50), &reading(30, 101, 60));
        assert_eq!(
            cause(Cause::Lock, Some(&locked), T, Some(22 * MS), 0),
            Cause::Lock
        );
        // Runnable for 12 of a 22 ms poll (the last reading came 3 ms after it ended).
        let starved = Scheduled::between(&reading(5, 100, 50), &reading(30, 101, 62));
        assert_eq!(
            cause(Cause::Lock, Some(&starved), T, Some(22 * MS), 0),
            Cause::Descheduled
        );
        let asleep = Scheduled::between(&reading(5, 100, 50), &reading(25, 100, 50));
        assert_eq!(cause(Cause::Cpu, Some(&asleep), T, None, 0), Cause::Cpu);
    }

    #[test]
    fn a_poll_is_read_once_past_a_quarter_of_the_threshold() {
        let mut first = FirstReadings::default();
        let mut reads = 0;
        let mut take = |at_ms| {
            reads += 1;
            Some(reading(at_ms, 0, 0))
        };
        assert_eq!(
            first.seen(1, (7, 0), 2 * MS, 10 * MS, || take(2)),
            None,
            "too early"
        );
        assert_eq!(
            first.seen(1, (7, 0), 3 * MS, 10 * MS, || take(3)),
            Some(reading(3, 0, 0))
        );
        // Later looks at the same poll keep its first reading.
        assert_eq!(
            first.seen(1, (7, 0), 12 * MS, 10 * MS, || take(12)),
            Some(reading(3, 0, 0))
        );
        // The slot's next poll starts over.
        assert_eq!(
            first.seen(1, (8, 0), 11 * MS, 10 * MS, || take(11)),
            Some(reading(11, 0, 0))
        );
        assert_eq!(reads, 2);
    }

    #[test]
    fn throttling_is_the_change_in_the_cgroups_throttled_time() {
        let mut first = reading(5, 100, 50);
        let mut last = reading(25, 104, 65);
        let s = Scheduled::between(&first, &last);
        assert_eq!(s.throttled_ns, None, "no cgroup v2 CPU controller");
        first.throttling = Some(Throttling {
            nr_throttled: 3,
            throttled_usec: 1_000,
        });
        last.throttling = Some(Throttling {
            nr_throttled: 5,
            throttled_usec: 13_000,
        });
        assert_eq!(
            Scheduled::between(&first, &last).throttled_ns,
            Some(12 * MS)
        );
    }
}

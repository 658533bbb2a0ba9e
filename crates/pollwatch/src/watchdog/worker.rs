//! Judging worker-level polls: the call a worker's thread sleeps in, followed across ticks.
//!
//! A worker-level poll (a worker's busy period, from the worker-hooks source) is long and
//! normal under load, so its length says nothing. What does: its thread asleep in one
//! blocking syscall (a file or socket read, a sleep, a lock's futex wait, `wait4`, ...) for
//! longer than the threshold, while the worker is unparked. The runtime's own park never
//! counts: the park hook ends the busy period first.
//!
//! One call is the same `/proc/self/task/<tid>/syscall` reading (number and argument
//! registers) tick after tick, with no CPU time used meanwhile (`schedstat`): a thread that
//! leaves and re-enters a call in a loop uses CPU and starts over. The call is followed from
//! when the watchdog first saw it, so its length is a lower bound (it began at most a tick
//! earlier, or when the busy period had lasted half the threshold, when reading starts: a
//! busy period shorter than that cannot hold a call past the threshold, and most end
//! sooner). A look signals the thread for its stack, and the handler uses a little CPU: the
//! thread's accounting is read again as the look ends, and the next reading is the same call
//! if the thread has not been on a CPU since (the same `schedstat` timeslice count), or used
//! at most [`RESUME_CPU_NS`] more (it was preempted on its way back into the call). A thread
//! that returned from the call and entered one with the same arguments (two sleeps on one
//! line, back to back in one busy period) has run in between: a new call.
//!
//! Out of reach at this level: CPU work in a task (the thread runs, in no syscall; a finer
//! source, such as a watched future, sees it), and a call shorter than the threshold repeated
//! in a loop. Cost: for each worker unparked for longer than half the threshold, one small
//! `/proc` read per tick, and a second (`schedstat`) while it sleeps in a call.

use pollwatch_capture::{Inspector, Tid};

use crate::poll::clock::Clock;
use crate::poll::thread::InnerPoll;
use crate::state::State;

/// A worker's thread has slept in one call since `since` (raw clock), `ns` so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocked {
    pub(crate) since: u64,
    pub(crate) ns: u64,
}

/// The most CPU a signalled thread may use on its way back into the same call: the end of
/// the handler, `rt_sigreturn` and the caller's retry (std's `sleep` loops on `EINTR`).
const RESUME_CPU_NS: u64 = 10_000;

/// One reading of a thread: the call it sleeps in and its CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reading {
    call: (u64, [u64; 6]),
    cpu: Cpu,
}

/// A thread's CPU accounting: time on a CPU, and how many times it was put on one (either may
/// be unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cpu {
    ns: Option<u64>,
    timeslices: Option<u64>,
}

impl Cpu {
    /// Reads `tid`'s accounting: `schedstat`, else the CPU time alone.
    pub(crate) fn read(inspector: &dyn Inspector, tid: Tid) -> Self {
        match inspector.sched_times(tid) {
            Some(times) => Self {
                ns: Some(times.run_ns),
                timeslices: Some(times.timeslices).filter(|&n| n > 0),
            },
            None => Self {
                ns: inspector.cpu_time_ns(tid),
                timeslices: None,
            },
        }
    }

    /// Whether a thread read as `self` just after its signal handler ran, and as `now` later,
    /// went back into the call it was in: it has not run since, or barely.
    fn resumed(self, now: Cpu) -> bool {
        let not_run = self.timeslices.is_some() && self.timeslices == now.timeslices;
        let barely = matches!((self.ns, now.ns), (Some(then), Some(now)) if now.saturating_sub(then) <= RESUME_CPU_NS);
        not_run || barely
    }
}

/// The call one worker's thread was last seen in.
#[derive(Clone, Copy, Debug)]
struct Followed {
    /// The busy period it is in: its outermost poll's sequence number and start.
    poll: (u64, u64),
    reading: Reading,
    /// Raw clock reading when it was first seen.
    since: u64,
    /// A look signalled the thread since the last reading: its accounting as the look ended.
    signalled: Option<Cpu>,
}

/// The calls of the workers' threads, by slot index.
#[derive(Debug, Default)]
pub(crate) struct BlockedCalls {
    followed: Vec<Option<Followed>>,
}

impl BlockedCalls {
    /// Reads the thread `tid` of slot `index`, whose innermost poll is worker-level poll
    /// `poll`: the call it has slept in, if any, and since when.
    pub(crate) fn observe(
        &mut self,
        index: usize,
        tid: Tid,
        poll: &InnerPoll,
        state: &State,
        inspector: &dyn Inspector,
    ) -> Option<Blocked> {
        let clock = &state.poll.clock;
        if poll.own_ns(clock) <= state.threshold_ns() / 2 {
            self.forget(index);
            return None;
        }
        let reading = read(inspector, tid);
        let now = clock.now();
        self.follow(index, (poll.seq, poll.start), reading, now, clock)
    }

    /// Takes `reading` (None: the thread runs) of slot `index` in busy period `poll` at raw
    /// time `now`.
    fn follow(
        &mut self,
        index: usize,
        poll: (u64, u64),
        reading: Option<Reading>,
        now: u64,
        clock: &Clock,
    ) -> Option<Blocked> {
        if self.followed.len() <= index {
            self.followed.resize(index + 1, None);
        }
        let entry = &mut self.followed[index];
        let Some(reading) = reading else {
            *entry = None;
            return None;
        };
        match entry {
            Some(f) if f.poll == poll && f.reading.call == reading.call => {
                let same = match f.signalled.take() {
                    Some(after) => after.resumed(reading.cpu),
                    None => f.reading.cpu.ns == reading.cpu.ns,
                };
                if same {
                    f.reading = reading;
                } else {
                    *entry = Some(Followed::new(poll, reading, now));
                }
            }
            _ => *entry = Some(Followed::new(poll, reading, now)),
        }
        entry.as_ref().map(|f| Blocked {
            since: f.since,
            ns: clock.delta_ns(f.since, now),
        })
    }

    /// The thread of slot `index` was signalled for its stack, and read as `after` once its
    /// handler had run: its next reading is the same call if it has barely run since.
    pub(crate) fn signalled(&mut self, index: usize, after: Cpu) {
        if let Some(Some(f)) = self.followed.get_mut(index) {
            f.signalled = Some(after);
        }
    }

    /// Slot `index` runs no worker-level poll now.
    pub(crate) fn forget(&mut self, index: usize) {
        if let Some(entry) = self.followed.get_mut(index) {
            *entry = None;
        }
    }
}

impl Followed {
    fn new(poll: (u64, u64), reading: Reading, now: u64) -> Self {
        Self {
            poll,
            reading,
            since: now,
            signalled: None,
        }
    }
}

/// The call `tid` sleeps in and its CPU time; `None` when it sleeps in none.
fn read(inspector: &dyn Inspector, tid: Tid) -> Option<Reading> {
    let call = inspector.blocked_call(tid)?;
    let cpu = Cpu::read(inspector, tid);
    Some(Reading { call, cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn cpu(ns: u64, timeslices: u64) -> Cpu {
        Cpu {
            ns: Some(ns),
            timeslices: Some(timeslices),
        }
    }

    fn reading(call: u64, cpu_ns: u64) -> Option<Reading> {
        sliced(call, cpu_ns, 1)
    }

    fn sliced(call: u64, cpu_ns: u64, timeslices: u64) -> Option<Reading> {
        Some(Reading {
            call: (call, [3, 0, 0, 0, 0, 0]),
            cpu: cpu(cpu_ns, timeslices),
        })
    }

    fn clock() -> (Clock, std::sync::Arc<quanta::Mock>) {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(1_000u64);
        (Clock::from_quanta(clock), mock)
    }

    #[test]
    fn one_call_with_no_cpu_used_is_followed_from_when_it_was_first_seen() {
        let (clock, _) = clock();
        let mut calls = BlockedCalls::default();
        let busy = (1, 100);
        let first = calls.follow(2, busy, reading(35, 500), 10 * MS, &clock);
        assert_eq!(first.map(|b| b.ns), Some(0));
        let later = calls.follow(2, busy, reading(35, 500), 40 * MS, &clock);
        assert_eq!(
            later,
            Some(Blocked {
                since: 10 * MS,
                ns: 30 * MS
            })
        );
    }

    #[test]
    fn cpu_used_another_call_running_or_another_busy_period_start_over() {
        let (clock, _) = clock();
        let mut calls = BlockedCalls::default();
        let busy = (1, 100);
        calls.follow(0, busy, reading(35, 500), 0, &clock);
        let cpu = calls.follow(0, busy, reading(35, 900), 10 * MS, &clock);
        assert_eq!(cpu.map(|b| b.since), Some(10 * MS), "it ran in between");
        let other = calls.follow(0, busy, reading(0, 900), 20 * MS, &clock);
        assert_eq!(other.map(|b| b.since), Some(20 * MS), "another call");
        assert_eq!(
            calls.follow(0, busy, None, 30 * MS, &clock),
            None,
            "running"
        );
        calls.follow(0, busy, reading(0, 900), 40 * MS, &clock);
        let next = calls.follow(0, (2, 300), reading(0, 900), 50 * MS, &clock);
        assert_eq!(next.map(|b| b.since), Some(50 * MS), "another busy period");
    }

    #[test]
    fn a_signalled_thread_back_in_its_call_is_the_same_call() {
        let (clock, _) = clock();
        let mut calls = BlockedCalls::default();
        let busy = (1, 100);
        calls.follow(0, busy, sliced(35, 500, 4), 0, &clock);
        // The handler ran (30 µs of CPU, a timeslice); read as the look ends.
        calls.signalled(0, cpu(530_000, 5));
        let after = calls.follow(0, busy, sliced(35, 530_000, 5), 10 * MS, &clock);
        assert_eq!(after.map(|b| b.since), Some(0), "not run since");
        // Preempted on its way back: one more timeslice, a few µs.
        calls.signalled(0, cpu(600_000, 6));
        let preempted = calls.follow(0, busy, sliced(35, 604_000, 7), 20 * MS, &clock);
        assert_eq!(preempted.map(|b| b.since), Some(0), "barely run");
        let still = calls.follow(0, busy, sliced(35, 604_000, 7), 30 * MS, &clock);
        assert_eq!(
            still,
            Some(Blocked {
                since: 0,
                ns: 30 * MS
            })
        );
    }

    #[test]
    fn a_call_ended_and_another_begun_after_a_look_is_a_new_call() {
        let (clock, _) = clock();
        let mut calls = BlockedCalls::default();
        let busy = (1, 100);
        calls.follow(0, busy, sliced(35, 500_000, 4), 0, &clock);
        calls.signalled(0, cpu(530_000, 5));
        // The sleep ended, the task finished and the next one sleeps with the same arguments:
        // the thread ran (a timeslice, 60 µs) in between.
        let next = calls.follow(0, busy, sliced(35, 590_000, 6), 10 * MS, &clock);
        assert_eq!(next.map(|b| b.since), Some(10 * MS));
        // Without a look, any CPU used is a new call.
        let ran = calls.follow(0, busy, sliced(35, 590_001, 6), 20 * MS, &clock);
        assert_eq!(ran.map(|b| b.since), Some(20 * MS));
    }
}

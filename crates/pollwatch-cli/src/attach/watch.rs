//! Following each worker from outside, tick by tick, and telling a worker parked by tokio
//! from one held by the application's code:
//!
//! - **Asleep in one call** (the same `/proc/<pid>/task/<tid>/syscall` reading, no CPU used
//!   in between): past the threshold, its stack is read, and counts when the registers show
//!   the thread stopped in that same call (it may have left it since). tokio's own park (its
//!   condition variable, or the drivers' `epoll_wait`) is not a stall and is not read again
//!   until the thread leaves that call; anything else on a thread that runs the scheduler
//!   is: a file or socket read, a sleep, a lock, a child process, ... A stack read interrupts
//!   the call, which the kernel restarts (a sleep as `restart_syscall`) once the thread is
//!   let go and back on a CPU: until it has used more CPU than that takes, it is the same
//!   call. A read of a running worker that finds it stopped in a syscall, and asleep once let
//!   go, follows that call from then on.
//! - **On a CPU** (no call between ticks, no read or write syscall counted in
//!   `/proc/<pid>/task/<tid>/io`; sockets are read with `recv`, which it does not count):
//!   once running that way for half the threshold, it is looked at every half threshold. One
//!   poll is told by the frames from the task's future outwards and by the memory of tokio's
//!   poll frames around it, where the registers saved there (the task's pointer among them)
//!   stay as they are while a poll runs and differ from task to task. Each look first glances
//!   at that memory without stopping the thread (a [`Glance`], taken afresh when the run
//!   starts), and reads the stack only when it is as it was, or when no stack read has shown
//!   where it is yet: a worker going from task to task is seen to, with no stop. The same task poll seen over at least the threshold in
//!   three looks (two of them stack reads), with the thread on a CPU for three quarters of
//!   that time (not waiting for one), is a stall; its end is the first glance that finds the
//!   memory changed. Left ambiguous: the same task polled again at each look (a task that
//!   yields in a loop on an otherwise idle worker).
//! - **In one syscall that runs in the kernel** (a large read from the page cache): such a
//!   thread stops only when the call returns, so a read that took the threshold or more to
//!   stop, with the thread on a CPU for half of that at least, shows the poll was in that
//!   call so long.
//!
//! A stall's start is the first sighting (at most a tick late for a call, half a threshold for
//! CPU work), and it ends at the last: lengths are lower bounds.

use std::time::{Duration, Instant};

use pollwatch_capture::remote::{Process, RemoteStack, StoppedIn};
use pollwatch_capture::{SchedTimes, Tid};
use pollwatch_judge::location::Roots;
use pollwatch_judge::look::Look;

use super::nanos;
use super::stack::{self, Stack};
use super::workers::Worker;

/// The most CPU a thread may use between two readings of one call once its stack was read:
/// the stop, and the kernel restarting the call it was in, took 70 to 75 µs of a worker's CPU
/// time in a sleep under load (two timeslices).
const RESUME_CPU_NS: u64 = 200_000;

/// A stall: a worker held past the threshold.
#[derive(Clone, Debug)]
pub(crate) struct Stall {
    pub(crate) worker: Worker,
    /// When it was first seen (its start, at most a tick or half a threshold late).
    pub(crate) since: Instant,
    /// When it was judged a stall.
    pub(crate) detected: Instant,
    /// Its length so far, or in the end.
    pub(crate) held: Duration,
    pub(crate) ended: bool,
    pub(crate) look: Look,
    /// The task the stack showed: its name and file.
    pub(crate) task: Option<(String, String)>,
    /// How long the worker was stopped to read its stack.
    pub(crate) stopped: Duration,
}

/// What one worker is doing, as followed.
#[derive(Debug)]
enum Follow {
    /// Asleep in a call since `since`.
    InCall {
        call: (u64, [u64; 6]),
        since: Instant,
        last_seen: Instant,
        /// Its scheduler accounting at the last reading.
        cpu: Option<SchedTimes>,
        /// Its scheduler accounting just before its stack was read, once read: the stop
        /// puts it on a CPU, to restart the call, whenever it is let go.
        read_at: Option<SchedTimes>,
        judged: Judged,
    },
    /// Running on a CPU, in no call.
    Running(Run),
}

/// A worker followed while it runs.
#[derive(Debug)]
struct Run {
    /// Since when it ran with no read or write syscall (its stack is read from half a
    /// threshold on).
    since: Instant,
    /// Its read and write syscalls so far.
    io: Option<u64>,
    last_read: Option<Instant>,
    /// The task poll its last stack showed.
    poll: Option<InPoll>,
    /// That poll's stall, once judged one.
    stall: Option<usize>,
}

impl Run {
    fn new(since: Instant, io: Option<u64>) -> Self {
        Run {
            since,
            io,
            last_read: None,
            poll: None,
            stall: None,
        }
    }
}

/// One tick's reading of a worker: when, and its scheduler accounting then.
#[derive(Clone, Copy, Debug)]
struct Tick {
    now: Instant,
    cpu: Option<SchedTimes>,
}

/// What following a running worker found.
enum Ran {
    /// Still running: followed on.
    On(Run),
    /// Asleep in this call.
    IntoCall((u64, [u64; 6])),
}

/// A task poll a running worker's stacks showed.
#[derive(Debug)]
struct InPoll {
    /// The addresses from the task's future outwards, and tokio's poll frames' memory.
    key: (Vec<u64>, Vec<u8>),
    /// When it was first and last seen.
    first: Instant,
    last: Instant,
    /// The thread's time on a CPU when it was first seen.
    cpu_first: Option<u64>,
    /// How many looks saw it (stack reads, and glances that found its poll frames as the
    /// read shows them).
    sightings: u32,
}

/// A worker's poll frames, as last looked at without stopping it: the memory where its last
/// stack read that showed a task poll found tokio's poll frames. While one poll runs, that
/// memory stays as it is; another poll (of another task, or of a future of another type)
/// writes its own frames there. A glance that finds it changed since the last look shows the
/// worker is not in the poll it was in, with no stop.
#[derive(Debug)]
struct Glance {
    /// The address and length of the memory.
    at: (u64, usize),
    bytes: Vec<u8>,
    /// When these bytes were first seen there, and the thread's time on a CPU then.
    since: Instant,
    cpu: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judged {
    NotYet,
    /// tokio's park, or a thread no longer running the scheduler: not a stall.
    NotAStall,
    /// The stall at this index.
    Stall(usize),
}

/// Every worker's follow, and the stalls found.
#[derive(Debug)]
pub(crate) struct Watch {
    threshold: Duration,
    follows: std::collections::HashMap<Tid, Follow>,
    glances: std::collections::HashMap<Tid, Glance>,
    pub(crate) stalls: Vec<Stall>,
    pub(crate) roots: Roots,
    /// Stack reads: how many, and the longest and total time a thread was stopped for one.
    pub(crate) reads: u64,
    pub(crate) stopped_max: Duration,
    pub(crate) stopped_total: Duration,
    /// Stack reads that failed (the thread exited, or did not stop in time).
    pub(crate) failed_reads: u64,
}

impl Watch {
    pub(crate) fn new(threshold: Duration) -> Self {
        Watch {
            threshold,
            follows: std::collections::HashMap::new(),
            glances: std::collections::HashMap::new(),
            stalls: Vec::new(),
            roots: Roots::default(),
            reads: 0,
            stopped_max: Duration::ZERO,
            stopped_total: Duration::ZERO,
            failed_reads: 0,
        }
    }

    /// One look at `worker`, at `now`. Returns the indexes of stalls detected or ended.
    pub(crate) fn tick(
        &mut self,
        process: &mut Process,
        worker: &Worker,
        now: Instant,
        symbolize: &mut dyn FnMut(&mut Process, &RemoteStack) -> Stack,
    ) -> Vec<usize> {
        let mut changed = Vec::new();
        let call = process.blocked_call(worker.tid);
        let cpu = process.sched_times(worker.tid);
        let follow = self.follows.remove(&worker.tid);
        let next = match (call, follow) {
            (
                Some(call),
                Some(Follow::InCall {
                    call: was,
                    since,
                    last_seen: _,
                    cpu: cpu_was,
                    read_at,
                    judged,
                }),
            ) if resumed(read_at, was, call)
                || (was == call && same_call(cpu_was, cpu, read_at)) =>
            {
                let mut judged = judged;
                let mut read_at = read_at;
                if judged == Judged::NotYet && now.duration_since(since) > self.threshold {
                    judged = self.judge_call(process, worker, since, now, symbolize);
                    read_at = read_at.or(cpu);
                    if let Judged::Stall(i) = judged {
                        changed.push(i);
                    }
                } else if let Judged::Stall(i) = judged {
                    self.stalls[i].held = now.duration_since(since);
                }
                Follow::InCall {
                    call,
                    since,
                    last_seen: now,
                    cpu,
                    read_at,
                    judged,
                }
            }
            // Still running: followed on below.
            (None, Some(running @ Follow::Running(_))) => running,
            // Let go after a stack read, it is on its way back into the call (runnable, or
            // restarting it), having used barely any CPU since.
            (
                None,
                Some(
                    follow @ Follow::InCall {
                        read_at: Some(at), ..
                    },
                ),
            ) if cpu.is_some_and(|c| c.run_ns.saturating_sub(at.run_ns) <= RESUME_CPU_NS) => follow,
            (call, follow) => {
                if let Some(follow) = follow {
                    if let Some(i) = self.end(follow) {
                        changed.push(i);
                    }
                }
                match call {
                    Some(call) => Follow::InCall {
                        call,
                        since: now,
                        last_seen: now,
                        cpu,
                        read_at: None,
                        judged: Judged::NotYet,
                    },
                    None => {
                        let io = process.io_syscalls(worker.tid);
                        Follow::Running(self.start_run(process, worker.tid, Tick { now, cpu }, io))
                    }
                }
            }
        };
        let next = match next {
            Follow::Running(run) if call.is_none() => {
                match self.running(
                    process,
                    worker,
                    run,
                    Tick { now, cpu },
                    symbolize,
                    &mut changed,
                ) {
                    // The read found it asleep in a call it entered since the last reading (and
                    // interrupted it; the kernel restarts it): followed as that call from now.
                    Ran::IntoCall(call) => Follow::InCall {
                        call,
                        since: now,
                        last_seen: now,
                        cpu,
                        read_at: cpu,
                        judged: Judged::NotYet,
                    },
                    Ran::On(run) => Follow::Running(run),
                }
            }
            other => other,
        };
        self.follows.insert(worker.tid, next);
        changed
    }

    /// A worker that exited: its stall, if any, ends.
    pub(crate) fn forget(&mut self, tid: Tid) -> Option<usize> {
        self.glances.remove(&tid);
        let follow = self.follows.remove(&tid)?;
        self.end(follow)
    }

    /// Ends every stall still followed (the end of the watch).
    pub(crate) fn finish(&mut self) -> Vec<usize> {
        let follows: Vec<Follow> = self.follows.drain().map(|(_, f)| f).collect();
        follows.into_iter().filter_map(|f| self.end(f)).collect()
    }

    /// Ends `follow`'s stall, if it has one; returns its index.
    fn end(&mut self, follow: Follow) -> Option<usize> {
        match follow {
            Follow::InCall {
                since,
                last_seen,
                judged: Judged::Stall(i),
                ..
            } => {
                let stall = &mut self.stalls[i];
                stall.held = last_seen.duration_since(since);
                stall.ended = true;
                Some(i)
            }
            Follow::Running(run) => self.end_run(run),
            _ => None,
        }
    }

    /// Ends a running worker's stall, if it has one; returns its index.
    fn end_run(&mut self, run: Run) -> Option<usize> {
        self.end_poll(run.poll, run.stall)
    }

    /// Ends the stall of the poll followed, if it is one; returns its index.
    fn end_poll(&mut self, poll: Option<InPoll>, stall: Option<usize>) -> Option<usize> {
        let (Some(poll), Some(i)) = (poll, stall) else {
            return None;
        };
        let stall = &mut self.stalls[i];
        stall.held = poll.last.duration_since(poll.first);
        stall.ended = true;
        Some(i)
    }

    /// Ends `run`'s stall, if any, and follows the worker afresh from `now`.
    fn restart(
        &mut self,
        process: &mut Process,
        tid: Tid,
        run: Run,
        tick: Tick,
        io: Option<u64>,
        changed: &mut Vec<usize>,
    ) -> Run {
        changed.extend(self.end_run(run));
        self.start_run(process, tid, tick, io)
    }

    /// Follows a worker running from `now`: its read and write syscalls so far, and a glance
    /// at its poll frames (when a stack read showed where they are), so that its first look
    /// tells whether it is still in the poll it was in now.
    fn start_run(&mut self, process: &mut Process, tid: Tid, tick: Tick, io: Option<u64>) -> Run {
        if let Some(glance) = self.glances.get_mut(&tid) {
            glance.bytes = process.peek(glance.at.0, glance.at.1);
            glance.since = tick.now;
            glance.cpu = tick.cpu.map(|t| t.run_ns);
        }
        Run::new(tick.now, io)
    }

    /// Reads the stack of a worker asleep in one call past the threshold.
    fn judge_call(
        &mut self,
        process: &mut Process,
        worker: &Worker,
        since: Instant,
        now: Instant,
        symbolize: &mut dyn FnMut(&mut Process, &RemoteStack) -> Stack,
    ) -> Judged {
        // The state first: what the thread waits on, before the read stops it.
        let state = process.thread_state(worker.tid);
        let Some((stack, stopped, _, _)) = self.read_stack(process, worker.tid, symbolize) else {
            return Judged::NotYet;
        };
        if stack.parked() || !stack.runs_a_scheduler() {
            return Judged::NotAStall;
        }
        // Its registers name the syscall it stopped in: not the call the state showed, it left
        // that call before the stop (and its stack shows where it went).
        let in_the_call = match (
            state.as_ref().and_then(|s| s.syscall.as_ref()),
            stack.stopped_in,
        ) {
            (Some(call), StoppedIn::Syscall(number)) => call.number == number,
            (Some(_), StoppedIn::Unknown) => true,
            (Some(_), StoppedIn::OwnCode) | (None, _) => false,
        };
        if stack.task_poll().is_none() || !in_the_call {
            // It left the call while it was read (its stack is between tasks, or not in that
            // call): the next tick follows what it does now.
            return Judged::NotYet;
        }
        let look = stack::judge(state.as_ref(), Some(&stack), &mut self.roots);
        if look.in_place {
            return Judged::NotAStall;
        }
        Judged::Stall(self.push(Stall {
            worker: worker.clone(),
            since,
            detected: now,
            held: now.duration_since(since),
            ended: false,
            task: stack::task_of(&stack, &look),
            look,
            stopped,
        }))
    }

    /// Follows a worker running on a CPU.
    fn running(
        &mut self,
        process: &mut Process,
        worker: &Worker,
        mut run: Run,
        tick: Tick,
        symbolize: &mut dyn FnMut(&mut Process, &RemoteStack) -> Stack,
        changed: &mut Vec<usize>,
    ) -> Ran {
        let Tick { now, cpu } = tick;
        let half = self.threshold / 2;
        let io_now = process.io_syscalls(worker.tid);
        // Read or write syscalls since: I/O, from task to task. Start over.
        if io_now != run.io {
            return Ran::On(self.restart(process, worker.tid, run, tick, io_now, changed));
        }
        let due = now.duration_since(run.since) >= half
            && run
                .last_read
                .is_none_or(|at| now.duration_since(at) >= half);
        if !due {
            return Ran::On(run);
        }
        let cpu_now = cpu.map(|t| t.run_ns);
        if let Some(glance) = self.glances.get_mut(&worker.tid) {
            let bytes = process.peek(glance.at.0, glance.at.1);
            if bytes != glance.bytes {
                // Another poll runs, or none: the one followed ended. No stop needed.
                *glance = Glance {
                    at: glance.at,
                    bytes,
                    since: now,
                    cpu: cpu_now,
                };
                run.last_read = Some(now);
                changed.extend(self.end_poll(run.poll.take(), run.stall.take()));
                return Ran::On(run);
            }
            if let (Some(poll), Some(i)) = (run.poll.as_mut(), run.stall) {
                // The stall's poll frames as they were: still in that poll.
                poll.last = now;
                poll.sightings += 1;
                self.stalls[i].held = now.duration_since(poll.first);
                run.last_read = Some(now);
                return Ran::On(run);
            }
        }
        let state = process.thread_state(worker.tid);
        let Some((stack, stopped, to_stop, ran_to_stop)) =
            self.read_stack(process, worker.tid, symbolize)
        else {
            run.last_read = Some(now);
            return Ran::On(run);
        };
        if to_stop < self.threshold && matches!(stack.stopped_in, StoppedIn::Syscall(_)) {
            // Stopped in a syscall, and asleep in a call once let go: it entered a blocking call
            // since the last reading.
            if let Some(call) = process.blocked_call(worker.tid) {
                changed.extend(self.end_run(run));
                return Ran::IntoCall(call);
            }
        }
        let Some(key) = stack.task_poll() else {
            // Between tasks, or parked: not one poll.
            return Ran::On(self.restart(process, worker.tid, run, tick, io_now, changed));
        };
        // The glance that saw these poll frames before this read, if one did.
        let glanced = self.glance_at(worker.tid, &stack, &key, now, cpu_now);
        // It took the threshold or more to stop, running for half of that at least: it was
        // in one syscall in the kernel (a large read from the page cache), in the poll its
        // stack now shows. (This process kept off a CPU meanwhile, or the thread waiting for
        // one, is not the code's doing.)
        let stopped_at = now + to_stop;
        if to_stop >= self.threshold
            && ran_to_stop.is_some_and(|ran| ran >= to_stop / 2)
            && run.stall.is_none()
        {
            let look = stack::judge(state.as_ref(), Some(&stack), &mut self.roots);
            let i = self.push(Stall {
                worker: worker.clone(),
                since: run.since,
                detected: stopped_at,
                held: stopped_at.duration_since(run.since),
                ended: false,
                task: stack::task_of(&stack, &look),
                look,
                stopped,
            });
            changed.push(i);
            return Ran::On(Run {
                since: run.since,
                io: process.io_syscalls(worker.tid),
                last_read: Some(stopped_at),
                poll: Some(InPoll {
                    key,
                    first: run.since,
                    last: stopped_at,
                    cpu_first: cpu_now,
                    sightings: 1,
                }),
                stall: Some(i),
            });
        }
        let same = run.poll.as_ref().is_some_and(|poll| poll.key == key);
        run.last_read = Some(now);
        match run.poll.as_mut() {
            Some(poll) if same => {
                poll.last = now;
                poll.sightings += 1;
                let (first, sightings, cpu_first) = (poll.first, poll.sightings, poll.cpu_first);
                let span = now.duration_since(first);
                if let Some(i) = run.stall {
                    self.stalls[i].held = span;
                } else if sightings >= 3
                    && span >= self.threshold
                    && ran_ns(cpu_first, cpu_now) >= nanos(span) / 4 * 3
                {
                    let look = stack::judge(state.as_ref(), Some(&stack), &mut self.roots);
                    if !look.in_place {
                        let i = self.push(Stall {
                            worker: worker.clone(),
                            since: first,
                            detected: now,
                            held: span,
                            ended: false,
                            task: stack::task_of(&stack, &look),
                            look,
                            stopped,
                        });
                        changed.push(i);
                        run.stall = Some(i);
                    }
                }
                Ran::On(run)
            }
            _ => {
                // Another poll: the one followed ended.
                changed.extend(self.end_poll(run.poll.take(), run.stall.take()));
                let (first, cpu_first, sightings) = match glanced {
                    Some((since, cpu)) => (since, cpu, 2),
                    None => (now, cpu_now, 1),
                };
                run.poll = Some(InPoll {
                    key,
                    first,
                    last: now,
                    cpu_first,
                    sightings,
                });
                Ran::On(run)
            }
        }
    }

    /// Keeps the poll frames a stack read showed as the worker's glance. Returns when (and
    /// at what CPU time) an earlier glance first saw them as the read found them: the same
    /// poll was running then.
    fn glance_at(
        &mut self,
        tid: Tid,
        stack: &Stack,
        key: &(Vec<u64>, Vec<u8>),
        now: Instant,
        cpu_now: Option<u64>,
    ) -> Option<(Instant, Option<u64>)> {
        let at = stack.poll_frames_at()?;
        let bytes = &key.1;
        if let Some(glance) = self.glances.get(&tid) {
            if glance.at == at && glance.bytes == *bytes && glance.since < now {
                return Some((glance.since, glance.cpu));
            }
        }
        self.glances.insert(
            tid,
            Glance {
                at,
                bytes: bytes.clone(),
                since: now,
                cpu: cpu_now,
            },
        );
        None
    }

    fn push(&mut self, stall: Stall) -> usize {
        self.stalls.push(stall);
        self.stalls.len() - 1
    }

    /// Reads and symbolizes a thread's stack, counting the time it was stopped.
    fn read_stack(
        &mut self,
        process: &mut Process,
        tid: Tid,
        symbolize: &mut dyn FnMut(&mut Process, &RemoteStack) -> Stack,
    ) -> Option<(Stack, Duration, Duration, Option<Duration>)> {
        match process.stack(tid) {
            Ok(raw) => {
                self.reads += 1;
                self.stopped_max = self.stopped_max.max(raw.stopped);
                self.stopped_total += raw.stopped;
                Some((
                    symbolize(process, &raw),
                    raw.stopped,
                    raw.to_stop,
                    raw.ran_to_stop,
                ))
            }
            Err(_) => {
                self.failed_reads += 1;
                None
            }
        }
    }
}

/// Whether a thread whose stack was read in a call is back in it: the kernel restarted the
/// call the stop interrupted, and a sleep comes back as `restart_syscall`, which nothing but
/// an interrupted call enters (whatever CPU the stop and the restart took).
fn resumed(read_at: Option<SchedTimes>, was: (u64, [u64; 6]), call: (u64, [u64; 6])) -> bool {
    read_at.is_some() && was != call && Process::syscall_name(call.0) == Some("restart_syscall")
}

/// Whether two readings of a thread with the same call are one call: it has not been on a CPU
/// since (the same timeslice count: a thread that returned from a sleep and entered the next
/// was woken, so put on a CPU), or, once its stack was read (`read_at`, its accounting just
/// before: the stop puts it on a CPU whenever it is let go, on a busy host some ticks later),
/// it used almost no CPU since the read.
fn same_call(
    before: Option<SchedTimes>,
    now: Option<SchedTimes>,
    read_at: Option<SchedTimes>,
) -> bool {
    match (read_at.or(before), now) {
        (Some(from), Some(now)) => {
            let barely = now.run_ns.saturating_sub(from.run_ns) <= RESUME_CPU_NS;
            barely && (read_at.is_some() || now.timeslices == from.timeslices)
        }
        _ => true,
    }
}

/// The CPU time used between two readings (0 when either is unknown).
fn ran_ns(before: Option<u64>, now: Option<u64>) -> u64 {
    match (before, now) {
        (Some(before), Some(now)) => now.saturating_sub(before),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(run_ns: u64, timeslices: u64) -> Option<SchedTimes> {
        Some(SchedTimes {
            run_ns,
            wait_ns: 0,
            timeslices,
        })
    }

    #[test]
    fn a_call_is_the_same_while_the_thread_is_not_put_on_a_cpu() {
        assert!(
            same_call(times(500, 7), times(500, 7), None),
            "asleep throughout"
        );
        // Woken from one sleep, straight into the next with the same arguments (a few µs).
        assert!(
            !same_call(times(500, 7), times(3_500, 8), None),
            "another call"
        );
        // Its stack was read: the stop put it on a CPU for a moment, at once or ticks later.
        assert!(same_call(times(500, 7), times(9_500, 8), times(500, 7)));
        assert!(same_call(times(9_500, 8), times(9_500, 8), times(500, 7)));
        assert!(same_call(times(500, 7), times(20_500, 9), times(500, 7)));
        assert!(
            !same_call(times(140_500, 8), times(260_500, 9), times(500, 7)),
            "it ran 260 µs since the read, over two ticks"
        );
        assert!(
            !same_call(times(500, 7), times(290_500, 8), times(500, 7)),
            "it ran"
        );
        assert!(
            same_call(None, times(1, 1), None),
            "unknown: the call decides"
        );
    }
}

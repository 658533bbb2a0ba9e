//! One scan of the slots: detect, resample and end stalls.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollwatch_capture::{CaptureError, Inspector, Late, RawBacktrace};

use crate::guarded;
use crate::poll::clock::Clock;
use crate::poll::thread::{InnerPoll, ThreadSlot};
use crate::poll::PollKey;
use crate::stall::harm::HarmTally;
use crate::stall::sched::{FirstReadings, SchedReading};
use crate::stall::{Msg, RawSample, SampleKind};
use crate::state::{Lost, State};

use super::worker::{Blocked, BlockedCalls};

/// A running stall is looked at again at 2x, 4x, 8x ... the threshold, at most this often.
pub(crate) const MAX_RESAMPLES: u32 = 12;

/// The longest the watchdog waits for a stuck thread to record its stack.
const CAPTURE_TIMEOUT: Duration = Duration::from_millis(50);

/// A stall the watchdog has reported and is following.
#[derive(Clone, Debug)]
struct Active {
    /// The slot of the thread it runs on: once that thread exits, its index may be given to a
    /// new thread before the next look, whose polls are not this one's.
    slot: Arc<ThreadSlot>,
    poll: InnerPoll,
    /// For a worker-level poll: the start (raw) of the call its thread sleeps in, which is
    /// the stall (the busy period goes on after it).
    call: Option<u64>,
    /// Its own time at the last look (a worker-level poll's: the call's).
    own_ns: u64,
    next_look_ns: u64,
    looks: u32,
    /// The tasks waiting behind it, read at every tick, when its thread's runtime queues
    /// can be read.
    harm: Option<HarmTally>,
    /// The last look whose capture timed out, until its thread's late stack is collected
    /// ([`Active::collect_late`]).
    late: Option<Box<RawSample>>,
}

impl Active {
    /// Sends the stack this stall's thread recorded after a look's capture timed out, as a
    /// look of its own (the timed-out look's state, with the stack), once its handler has
    /// run: a thread that waited for a CPU runs it as soon as it runs again, still in the
    /// poll. A stack taken after the poll ended is dropped.
    fn collect_late(&mut self, state: &State, inspector: &dyn Inspector, to: &SyncSender<Msg>) {
        let Some(late) = &self.late else {
            return;
        };
        let stack = match inspector.collect_late(late.tid) {
            Late::Pending => return,
            Late::Gone => {
                self.late = None;
                return;
            }
            Late::Stack(stack) => stack,
        };
        let Some(mut sample) = self.late.take() else {
            return;
        };
        if !taken_in_poll(&state.poll.clock, &self.slot, &self.poll, stack.captured_at) {
            return;
        }
        sample.kind = SampleKind::Resampled;
        sample.running_ns = self.own_ns;
        sample.lag_ns = self.own_ns.saturating_sub(state.threshold_ns());
        sample.cpu_now_ns = None;
        sample.sched = None;
        sample.sched_first = None;
        sample.capture = Some(Ok(stack));
        sample.harm = self.harm.as_ref().map(HarmTally::so_far);
        send(state, to, Msg::Sample(sample));
    }

    /// Keeps `sample` as the look a late stack completes, when its capture timed out.
    fn timed_out(&mut self, sample: &RawSample) {
        if matches!(sample.capture, Some(Err(CaptureError::Timeout))) {
            self.late = Some(Box::new(sample.clone()));
        }
    }

    /// Reads the queues of the stall's thread's runtime, as the stall's own time is `own_ns`.
    fn look_at_queues(&mut self, own_ns: u64) {
        if let (Some(harm), Some(queues)) = (&mut self.harm, self.slot.queues()) {
            harm.look(queues.depths(), own_ns);
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Scanner {
    /// Per slot (same index as the slot list): the stall being followed.
    active: Vec<Option<Active>>,
    /// The scheduler accounting of slow polls, from before they become stalls.
    first_sched: FirstReadings,
    /// The calls the threads of worker-level polls sleep in.
    calls: BlockedCalls,
}

impl Scanner {
    /// Looks at every thread's innermost poll. A stall is one poll holding its thread past the
    /// threshold by itself: its own time, without the polls nested inside it, so an outer
    /// poll that runs many short ones (a `LocalSet`) is not one. A worker-level poll with no
    /// finer poll open in it is judged by the call its thread sleeps in instead
    /// ([`super::worker`]).
    pub(crate) fn scan(&mut self, state: &State, inspector: &dyn Inspector, to: &SyncSender<Msg>) {
        let slots = state.poll.slot_list();
        self.active.resize(slots.len(), None);
        for (index, slot) in slots.iter().enumerate() {
            let innermost = slot.innermost();
            let blocked = match &innermost {
                Some(poll) if poll.worker => {
                    self.calls
                        .observe(index, slot.tid(), poll, state, inspector)
                }
                _ => {
                    self.calls.forget(index);
                    None
                }
            };
            if let Some(active) = &mut self.active[index] {
                // Its thread exited (the index is reclaimed, or another thread's now), or the
                // poll ended, or a worker's thread left the call: the stall is over, and its
                // own thread's slot (or the call's last sighting) says how long.
                let left_call = active
                    .call
                    .is_some_and(|since| blocked.map(|b| b.since) != Some(since));
                if !Arc::ptr_eq(&active.slot, slot)
                    || !slot.still_polling(&active.poll)
                    || left_call
                {
                    if let Some(mut active) = self.active[index].take() {
                        active.collect_late(state, inspector, to);
                        // The poll read above may be the one that just ended (it ended
                        // between the two reads): never take it for a new stall.
                        let stale = innermost.is_some_and(|poll| {
                            same_poll(&poll, &active.poll)
                                && active.call == blocked.map(|b| b.since).filter(|_| poll.worker)
                        });
                        send(state, to, ended(state, inspector, index, active));
                        if stale {
                            continue;
                        }
                    }
                } else {
                    active.own_ns = match blocked.filter(|_| active.call.is_some()) {
                        Some(blocked) => blocked.ns,
                        None => active.poll.own_ns(&state.poll.clock),
                    };
                    active.look_at_queues(active.own_ns);
                    active.collect_late(state, inspector, to);
                }
            }
            let Some(poll) = innermost else {
                continue;
            };
            if poll.worker {
                self.scan_worker(state, inspector, to, index, slot, poll, blocked);
                continue;
            }
            let own_ns = poll.own_ns(&state.poll.clock);
            if let Some(active) = &self.active[index] {
                if !same_poll(&active.poll, &poll) && own_ns > state.threshold_ns() {
                    // A poll nested in the followed one stalls now: that one's stall is over
                    // (its own time stopped growing), this one is a stall of its own.
                    if let Some(mut active) = self.active[index].take() {
                        active.collect_late(state, inspector, to);
                        send(state, to, ended(state, inspector, index, active));
                    }
                }
            }
            let sched_first = self.first_sched.seen(
                index,
                (poll.seq, poll.start),
                own_ns,
                state.threshold_ns(),
                || SchedReading::take(inspector, slot.tid(), state.poll.clock.uptime_ns()),
            );
            let Some(kind) = self.due(index, slot, poll, None, own_ns, state.threshold_ns()) else {
                continue;
            };
            let key = PollKey {
                slot: index,
                seq: poll.seq,
                start: poll.start,
            };
            if let Some(mut sample) = look(state, inspector, slot, key, poll, own_ns, kind) {
                sample.sched_first = sched_first;
                sample.harm = self.harm_so_far(index);
                if let Some(active) = &mut self.active[index] {
                    active.timed_out(&sample);
                }
                send(state, to, Msg::Sample(Box::new(sample)));
            }
        }
    }

    /// A worker-level poll with no finer poll open: a stall when its thread has slept in one
    /// call for longer than the threshold. The stall is named by the call's start.
    #[allow(clippy::too_many_arguments)]
    fn scan_worker(
        &mut self,
        state: &State,
        inspector: &dyn Inspector,
        to: &SyncSender<Msg>,
        index: usize,
        slot: &Arc<ThreadSlot>,
        poll: InnerPoll,
        blocked: Option<Blocked>,
    ) {
        let Some(blocked) = blocked else {
            return;
        };
        let Some(kind) = self.due(
            index,
            slot,
            poll,
            Some(blocked.since),
            blocked.ns,
            state.threshold_ns(),
        ) else {
            return;
        };
        let key = PollKey {
            slot: index,
            seq: poll.seq,
            start: blocked.since,
        };
        if let Some(mut sample) = look(state, inspector, slot, key, poll, blocked.ns, kind) {
            sample.harm = self.harm_so_far(index);
            if let Some(active) = &mut self.active[index] {
                active.timed_out(&sample);
            }
            if sample.capture.is_some() {
                self.calls
                    .signalled(index, super::worker::Cpu::read(inspector, slot.tid()));
            }
            send(state, to, Msg::Sample(Box::new(sample)));
        }
    }

    /// The harm of the stall followed on slot `index` so far.
    fn harm_so_far(&self, index: usize) -> Option<pollwatch_report::Harm> {
        let active = self.active.get(index)?.as_ref()?;
        active.harm.as_ref().map(HarmTally::so_far)
    }

    /// Whether `poll` (for a worker-level poll, the call since `call`), its own time
    /// `own_ns`, on slot `index` is due a look, and which.
    fn due(
        &mut self,
        index: usize,
        slot: &Arc<ThreadSlot>,
        poll: InnerPoll,
        call: Option<u64>,
        own_ns: u64,
        threshold_ns: u64,
    ) -> Option<SampleKind> {
        if own_ns <= threshold_ns {
            return None;
        }
        match &mut self.active[index] {
            Some(active) if same_poll(&active.poll, &poll) && active.call == call => {
                // A late stack still to come: another signal would replace its request.
                if active.late.is_some()
                    || own_ns < active.next_look_ns
                    || active.looks >= MAX_RESAMPLES
                {
                    return None;
                }
                active.next_look_ns = active.next_look_ns.saturating_mul(2);
                active.looks += 1;
                Some(SampleKind::Resampled)
            }
            // Another poll is followed (an outer one this poll is nested in): keep following
            // it until it ends.
            Some(_) => None,
            None => {
                let mut active = Active {
                    slot: slot.clone(),
                    poll,
                    call,
                    own_ns,
                    next_look_ns: threshold_ns.saturating_mul(2),
                    looks: 0,
                    harm: slot.queues().map(|_| HarmTally::default()),
                    late: None,
                };
                active.look_at_queues(own_ns);
                self.active[index] = Some(active);
                Some(SampleKind::Detected)
            }
        }
    }
}

/// Whether two readings are of the same poll (its nested time may have grown between them).
fn same_poll(a: &InnerPoll, b: &InnerPoll) -> bool {
    a.seq == b.seq && a.depth == b.depth && a.start == b.start
}

/// The end of a followed stall: an outermost poll's own length from the slot when it is still
/// on record; else the watchdog's estimate (its own time at the last look), which the
/// reporter corrects from the poll's slow-poll record. Read from the stall's own thread's
/// slot, also when that thread has exited.
///
/// A worker-level poll's stall is the call, which only the watchdog measures: its length from
/// the first to the last sighting is final.
fn ended(state: &State, inspector: &dyn Inspector, index: usize, active: Active) -> Msg {
    let (slot, poll) = (&active.slot, active.poll);
    let outermost = poll.depth == 1 && poll.nested_ns == 0;
    let finished = slot.finished_ns(poll.seq, poll.start);
    let (exact, total_ns) = match finished.filter(|_| outermost) {
        _ if active.call.is_some() => (true, active.own_ns),
        Some(ns) => (true, ns),
        None => (false, active.own_ns),
    };
    Msg::Ended {
        key: PollKey {
            slot: index,
            seq: poll.seq,
            start: active.call.unwrap_or(poll.start),
        },
        total_ns,
        exact,
        cpu_now_ns: inspector.cpu_time_ns(slot.tid()),
        sched: SchedReading::take(inspector, slot.tid(), state.poll.clock.uptime_ns()),
        harm: active.harm.as_ref().map(|harm| harm.ended(total_ns)),
    }
}

/// Reads what the stuck thread does and has it record its stack.
fn look(
    state: &State,
    inspector: &dyn Inspector,
    slot: &ThreadSlot,
    key: PollKey,
    poll: InnerPoll,
    own_ns: u64,
    kind: SampleKind,
) -> Option<RawSample> {
    let inner_span = slot
        .inner_span()
        .zip(state.subscriber.get())
        .and_then(|(id, dispatch)| {
            guarded::run(state, "describing a stalled task's span", || {
                crate::stall::span::describe(&dispatch, id)
            })
            .flatten()
        });
    let tid = slot.tid();
    let thread_state = inspector.thread_state(tid);
    let cpu_now_ns = inspector.cpu_time_ns(tid);
    let sched = SchedReading::take(inspector, tid, state.poll.clock.uptime_ns());
    let capture = inspector
        .can_capture()
        .then(|| capture_retrying(inspector, tid))
        .filter(|c| match c {
            Ok(stack) => taken_in_poll(&state.poll.clock, slot, &poll, stack.captured_at),
            Err(_) => true,
        });
    Some(RawSample {
        kind,
        key,
        tid,
        thread: slot.name().to_owned(),
        worker_index: slot.worker_index(),
        task_id: poll.task.task_id,
        site: poll.task.site,
        worker: poll.worker,
        started_at_ns: state.poll.clock.since_origin_ns(key.start),
        running_ns: own_ns,
        lag_ns: own_ns.saturating_sub(state.threshold_ns()),
        state: thread_state,
        cpu_now_ns,
        sched,
        sched_first: None,
        capture,
        inner_span,
        harm: None,
    })
}

/// Whether a stack the thread stored at `captured_at` is from `poll`: the poll is still
/// running, or it ended (as one of the thread's last slow polls, outermost or nested) after
/// the capture. A thread blocked in the kernel (a large file read) runs the capture handler
/// only when the call returns, often just before the poll ends; the stack then still shows
/// the blocking call. A nested poll (a watched future in a worker's busy period) is judged
/// the same way: the outermost poll going on says nothing about whether it ended.
fn taken_in_poll(clock: &Clock, slot: &ThreadSlot, poll: &InnerPoll, captured_at: Instant) -> bool {
    if slot.still_polling(poll) {
        return true;
    }
    // The poll ended: slow polls record their length where faster ones do not overwrite it.
    let Some(length_ns) = slot.slow_poll_ns(poll.seq, poll.start) else {
        return false;
    };
    let since_start_ns = clock.since_ns(poll.start);
    let captured_ago_ns = u64::try_from(captured_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
    // Both in nanoseconds before now: the capture happened before the poll's end.
    let ended_ago_ns = since_start_ns.saturating_sub(length_ns);
    captured_ago_ns > ended_ago_ns
}

/// Captures, retrying briefly while another watchdog (another pollwatch layer in this
/// process) holds the capture buffer.
fn capture_retrying(inspector: &dyn Inspector, tid: i32) -> Result<RawBacktrace, CaptureError> {
    capture_within(CAPTURE_TIMEOUT, |wait| inspector.capture(tid, wait))
}

/// Captures with `capture`, retrying while the capture buffer is busy, all within `budget`:
/// each try waits at most what is left of it, so a look never takes longer than `budget`
/// (plus the last try's own overshoot past its wait).
fn capture_within(
    budget: Duration,
    mut capture: impl FnMut(Duration) -> Result<RawBacktrace, CaptureError>,
) -> Result<RawBacktrace, CaptureError> {
    let deadline = Instant::now() + budget;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match capture(left) {
            Err(CaptureError::Busy) if !left.is_zero() => std::thread::yield_now(),
            result => return result,
        }
    }
}

fn send(state: &State, to: &SyncSender<Msg>, msg: Msg) {
    match to.try_send(msg) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(msg)) => {
            Lost::count(&state.lost.stall_samples);
            if let Msg::Sample(sample) = msg {
                if sample.kind == SampleKind::Detected {
                    // The stall is still counted; only what this look saw is lost.
                    *state.lost.detections.lock().entry(sample.site).or_default() += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::taken_in_poll;
    use crate::poll::tests::{path, task};

    const MS: u64 = 1_000_000;

    #[test]
    fn busy_retries_share_one_capture_budget() {
        use super::capture_within;
        use pollwatch_capture::CaptureError;
        let budget = Duration::from_millis(50);
        let mut waits = Vec::new();
        let result = capture_within(budget, |wait| {
            waits.push(wait);
            // Busy after most of the wait, as when another capture held the buffer.
            std::thread::sleep(wait.min(Duration::from_millis(20)));
            Err(CaptureError::Busy)
        });
        assert!(matches!(result, Err(CaptureError::Busy)));
        assert!(waits.iter().all(|&w| w <= budget), "{waits:?}");
        assert!(
            waits.windows(2).all(|w| w[1] <= w[0]),
            "each try waits what is left: {waits:?}"
        );
        assert_eq!(*waits.last().unwrap(), Duration::ZERO, "{waits:?}");
    }

    #[test]
    fn a_stack_taken_before_the_stalled_poll_ended_is_kept_after_later_polls() {
        let (path, mock) = path();
        path.enter(1, task(1, 0));
        let slot = path.slot_list()[0].clone();
        let poll = slot.innermost().expect("a poll runs");
        // Still running: any capture is this poll's.
        assert!(taken_in_poll(&path.clock, &slot, &poll, Instant::now()));
        mock.increment(30 * MS);
        path.exit(1);
        // A fast poll follows, 2 ms after the stalled one ended.
        mock.increment(2 * MS);
        path.enter(2, task(2, 0));
        mock.increment(1_000u64);
        path.exit(2);
        let ago = |ms: u64| Instant::now() - Duration::from_millis(ms);
        assert!(
            taken_in_poll(&path.clock, &slot, &poll, ago(5)),
            "captured 5 ms ago, the poll ended 2 ms ago"
        );
        assert!(
            !taken_in_poll(&path.clock, &slot, &poll, ago(1)),
            "captured after the poll ended: another poll's stack"
        );
        // More slow polls follow: the stalled one's length is still known, so its stack is
        // still judged by it.
        for span in 3..3 + crate::poll::thread::RECENT_SLOW as u64 - 1 {
            path.enter(span, task(span, 0));
            mock.increment(20 * MS);
            path.exit(span);
        }
        let ended_ms = 2 + 1 + 20 * (crate::poll::thread::RECENT_SLOW as u64 - 1);
        assert!(taken_in_poll(&path.clock, &slot, &poll, ago(ended_ms + 5)));
        assert!(!taken_in_poll(&path.clock, &slot, &poll, ago(ended_ms - 5)));
        // One more, and the record is gone: nothing is known, nothing kept.
        path.enter(99, task(99, 0));
        mock.increment(20 * MS);
        path.exit(99);
        assert!(!taken_in_poll(&path.clock, &slot, &poll, ago(1_000)));
    }

    #[test]
    fn a_nested_poll_s_stack_taken_before_it_ended_is_kept_while_the_outer_poll_runs() {
        use crate::poll::WORKER_POLL;
        let (path, mock) = path();
        // A worker's busy period, and a watched future's poll in it that stalls.
        path.enter(WORKER_POLL | 1, task(0, 0));
        mock.increment(1_000u64);
        path.enter(2, task(2, 1));
        let slot = path.slot_list()[0].clone();
        let poll = slot.innermost().expect("a poll runs");
        assert_eq!(poll.depth, 2);
        mock.increment(30 * MS);
        path.exit(2);
        // Another poll in the same busy period, at the same depth, 2 ms after the stalled
        // one ended; then a slow one: neither is taken for it.
        mock.increment(2 * MS);
        path.enter(3, task(3, 1));
        mock.increment(1_000u64);
        path.exit(3);
        path.enter(4, task(4, 1));
        mock.increment(40 * MS);
        path.exit(4);
        assert!(
            !slot.still_polling(&poll),
            "the busy period goes on, the poll ended"
        );
        let ago = |ms: u64| Instant::now() - Duration::from_millis(ms);
        assert!(
            taken_in_poll(&path.clock, &slot, &poll, ago(45)),
            "captured 45 ms ago, the poll ended 42 ms ago"
        );
        assert!(
            !taken_in_poll(&path.clock, &slot, &poll, ago(41)),
            "captured after the poll ended: another poll's stack"
        );
        path.exit(WORKER_POLL | 1);
    }
}

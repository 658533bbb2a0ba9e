//! One scan of the slots: detect, resample and end stalls.

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use pollwatch_capture::{CaptureError, Inspector, RawBacktrace};

use crate::poll::clock::Clock;
use crate::poll::thread::{ThreadSlot, MAX_DEPTH};
use crate::shared::Shared;
use crate::stall::{Msg, RawSample, SampleKind};

/// A running stall is looked at again at 2x, 4x, 8x ... the threshold, at most this often.
pub(crate) const MAX_RESAMPLES: u32 = 12;

/// The longest the watchdog waits for a stuck thread to record its stack.
const CAPTURE_TIMEOUT: Duration = Duration::from_millis(50);

/// A stall the watchdog has reported and is following.
#[derive(Clone, Copy, Debug)]
struct Active {
    seq: u64,
    start: u64,
    next_look_ns: u64,
    looks: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Scanner {
    /// Per slot (same index as the slot list): the stall being followed.
    active: Vec<Option<Active>>,
}

impl Scanner {
    pub(crate) fn scan(
        &mut self,
        shared: &Shared,
        inspector: &dyn Inspector,
        to: &SyncSender<Msg>,
    ) {
        let slots = shared.poll.slot_list();
        self.active.resize(slots.len(), None);
        let threshold_ns = shared.poll.threshold_ns;
        for (index, slot) in slots.iter().enumerate() {
            let start = slot.poll_start.load(Acquire);
            let seq = slot.poll_seq.load(Acquire);
            if let Some(active) = self.active[index] {
                if start == 0 || seq != active.seq {
                    self.active[index] = None;
                    // Its own length, from the last poll or the last slow poll of the thread;
                    // else (the thread ran another slow poll since) an estimate, which the
                    // reporter corrects from the poll's slow-poll record.
                    let (exact, total_ns) = if slot.last_outer_seq.load(Relaxed) == active.seq {
                        (true, slot.last_outer_ns.load(Relaxed))
                    } else if slot.last_slow_seq.load(Relaxed) == active.seq {
                        (true, slot.last_slow_ns.load(Relaxed))
                    } else {
                        let clock = &shared.poll.clock;
                        (false, clock.delta_ns(active.start, clock.now()))
                    };
                    send(
                        shared,
                        to,
                        Msg::Ended {
                            slot: index,
                            seq: active.seq,
                            total_ns,
                            exact,
                            cpu_now_ns: inspector.cpu_time_ns(slot.tid),
                        },
                    );
                }
            }
            if start == 0 {
                continue;
            }
            let running_ns = shared.poll.clock.delta_ns(start, shared.poll.clock.now());
            if running_ns <= threshold_ns {
                continue;
            }
            let kind = match &mut self.active[index] {
                None => {
                    self.active[index] = Some(Active {
                        seq,
                        start,
                        next_look_ns: threshold_ns.saturating_mul(2),
                        looks: 0,
                    });
                    SampleKind::Detected
                }
                Some(active)
                    if running_ns >= active.next_look_ns && active.looks < MAX_RESAMPLES =>
                {
                    active.next_look_ns = active.next_look_ns.saturating_mul(2);
                    active.looks += 1;
                    SampleKind::Resampled
                }
                Some(_) => continue,
            };
            if let Some(sample) = look(shared, inspector, index, slot, seq, start, running_ns, kind)
            {
                send(shared, to, Msg::Sample(Box::new(sample)));
            }
        }
    }
}

/// Reads what the stuck thread does and has it record its stack.
#[allow(clippy::too_many_arguments)]
fn look(
    shared: &Shared,
    inspector: &dyn Inspector,
    index: usize,
    slot: &ThreadSlot,
    seq: u64,
    start: u64,
    running_ns: u64,
    kind: SampleKind,
) -> Option<RawSample> {
    let depth = slot.depth.load(Acquire);
    if depth == 0 || depth > MAX_DEPTH {
        return None;
    }
    let frame = &slot.frames[depth - 1];
    let task_id = frame.task_id.load(Relaxed);
    let site = frame.site.load(Relaxed);
    let inner_span = slot
        .inner_span()
        .zip(shared.dispatch())
        .and_then(|(id, dispatch)| crate::stall::span::describe(&dispatch, id));
    let state = inspector.thread_state(slot.tid);
    let cpu_now_ns = inspector.cpu_time_ns(slot.tid);
    let capture = inspector
        .can_capture()
        .then(|| capture_retrying(inspector, slot.tid));
    let capture = capture.filter(|c| match c {
        Ok(stack) => taken_in_poll(&shared.poll.clock, slot, seq, start, stack.captured_at),
        Err(_) => true,
    });
    Some(RawSample {
        kind,
        slot: index,
        seq,
        tid: slot.tid,
        thread: slot.name.clone(),
        task_id,
        site,
        started_at_ns: shared.poll.clock.since_origin_ns(start),
        running_ns,
        lag_ns: running_ns.saturating_sub(shared.poll.threshold_ns),
        state,
        cpu_now_ns,
        capture,
        inner_span,
    })
}

/// Whether a stack the thread stored at `captured_at` is from poll (`seq`, `start`): the poll
/// is still running, or it ended (as the last slow poll of the thread) after the capture. A
/// thread blocked in the kernel runs the capture handler only when the call returns, often
/// just before the poll ends; the stack then still shows the blocking call.
fn taken_in_poll(
    clock: &Clock,
    slot: &ThreadSlot,
    seq: u64,
    start: u64,
    captured_at: std::time::Instant,
) -> bool {
    if slot.poll_seq.load(Acquire) == seq && slot.poll_start.load(Acquire) == start {
        return true;
    }
    // The poll ended: slow polls record their length where faster ones do not overwrite it.
    if slot.last_slow_seq.load(Acquire) != seq {
        return false;
    }
    let length_ns = slot.last_slow_ns.load(Relaxed);
    if slot.last_slow_seq.load(Acquire) != seq {
        return false;
    }
    let since_start_ns = clock.delta_ns(start, clock.now());
    let captured_ago_ns = u64::try_from(captured_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
    // Both in nanoseconds before now: the capture happened before the poll's end.
    let ended_ago_ns = since_start_ns.saturating_sub(length_ns);
    captured_ago_ns > ended_ago_ns
}

/// Captures, retrying briefly while another watchdog (another pollwatch layer in this
/// process) holds the capture buffer.
fn capture_retrying(inspector: &dyn Inspector, tid: i32) -> Result<RawBacktrace, CaptureError> {
    let deadline = std::time::Instant::now() + CAPTURE_TIMEOUT;
    loop {
        match inspector.capture(tid, CAPTURE_TIMEOUT) {
            Err(CaptureError::Busy) if std::time::Instant::now() < deadline => {
                std::thread::yield_now();
            }
            result => return result,
        }
    }
}

fn send(shared: &Shared, to: &SyncSender<Msg>, msg: Msg) {
    match to.try_send(msg) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(_)) => {
            shared.stall_samples_dropped.fetch_add(1, Relaxed);
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
    fn a_stack_taken_before_the_stalled_poll_ended_is_kept_after_later_polls() {
        let (path, mock) = path();
        path.enter(1, task(1, 0));
        let slot = path.slot_list()[0].clone();
        let (seq, start) = (
            slot.poll_seq.load(std::sync::atomic::Ordering::Relaxed),
            slot.poll_start.load(std::sync::atomic::Ordering::Relaxed),
        );
        // Still running: any capture is this poll's.
        assert!(taken_in_poll(
            &path.clock,
            &slot,
            seq,
            start,
            Instant::now()
        ));
        mock.increment(30 * MS);
        path.exit(1);
        // A fast poll follows, 2 ms after the stalled one ended.
        mock.increment(2 * MS);
        path.enter(2, task(2, 0));
        mock.increment(1_000u64);
        path.exit(2);
        let ago = |ms: u64| Instant::now() - Duration::from_millis(ms);
        assert!(
            taken_in_poll(&path.clock, &slot, seq, start, ago(5)),
            "captured 5 ms ago, the poll ended 2 ms ago"
        );
        assert!(
            !taken_in_poll(&path.clock, &slot, seq, start, ago(1)),
            "captured after the poll ended: another poll's stack"
        );
        // Another slow poll overwrites the record: nothing is known, nothing kept.
        path.enter(3, task(3, 0));
        mock.increment(20 * MS);
        path.exit(3);
        assert!(!taken_in_poll(&path.clock, &slot, seq, start, ago(30)));
    }
}

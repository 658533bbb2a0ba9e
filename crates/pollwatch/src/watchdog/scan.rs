//! One scan of the slots: detect, resample and end stalls.

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use pollwatch_capture::{CaptureError, Inspector, RawBacktrace};

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
                    let exact = slot.last_outer_seq.load(Relaxed) == active.seq;
                    let total_ns = if exact {
                        slot.last_outer_ns.load(Relaxed)
                    } else {
                        shared
                            .poll
                            .clock
                            .delta_ns(active.start, shared.poll.clock.now())
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
    // The stack is only this poll's if the same poll is still running after the capture.
    let same_poll = slot.poll_seq.load(Acquire) == seq && slot.poll_start.load(Acquire) == start;
    let capture = if same_poll { capture } else { None };
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

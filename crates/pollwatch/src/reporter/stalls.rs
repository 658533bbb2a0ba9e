//! Handling the watchdog's messages on the reporter thread.

use std::time::Instant;

use pollwatch_capture::CaptureError;

use crate::console::Resources;
use crate::stall::book::Warn;
use crate::stall::record::StallRecord;
use crate::stall::{describe, Msg, RawSample, SampleKind};
use crate::state::State;
use pollwatch_judge::location::Roots;

use super::events;

/// What the reporter thread keeps to follow stalls: the console resources, and the build
/// roots that make call-site paths relative.
#[derive(Debug, Default)]
pub(super) struct Followers {
    pub(super) console: Resources,
    roots: Roots,
}

pub(super) fn handle(state: &State, followers: &mut Followers, msg: Msg) {
    let Followers { console, roots } = followers;
    match msg {
        Msg::Sample(raw) => {
            said_of_the_signal(state, &raw);
            let site = state.sites.get(raw.site);
            let look = describe::look(&raw, roots, &site.file);
            match raw.kind {
                SampleKind::Detected => detected(state, console, &raw, look),
                SampleKind::Resampled => resampled(state, console, &raw, look),
            }
        }
        Msg::Ended {
            key,
            total_ns,
            exact,
            cpu_now_ns,
            sched,
            harm,
        } => {
            // A held stall ended before a look brought its stack: it is a stall.
            let held = state.book.lock().take_held(key);
            if let Some((mut stall, cpu_at_detection)) = held {
                // Judged on its thread's scheduling to its end before it is warned about.
                stall.scheduled(sched.as_ref(), Some(total_ns));
                report(state, console, stall, cpu_at_detection);
            }
            let mut book = state.book.lock();
            let reclassified = book.scheduled(key, sched.as_ref(), Some(total_ns));
            let ended = book.ended(key, total_ns, exact, cpu_now_ns, harm);
            drop(book);
            if let Some(stall) = reclassified {
                // Feature `console`: the site's last cause is the host's CPU shortage.
                console.reclassified(state, &stall);
            }
            // Feature `console`: the site is no longer stalled.
            console.ended(state, key, total_ns);
            if let Some(stall) = ended {
                emit(state, &stall);
            }
        }
        Msg::Stop => {}
    }
}

fn detected(state: &State, console: &mut Resources, raw: &RawSample, look: describe::Look) {
    if look.in_place {
        // `block_in_place` handed the worker's queue to another thread: allowed.
        state.book.lock().in_place(raw.key, raw.site);
        return;
    }
    if describe::left_the_worker(&look, raw) {
        // A worker-level poll left open on a thread that is no worker now: nothing blocks.
        return;
    }
    let stall = StallRecord::detected(raw, look);
    let stall = if stack_may_come(raw, &stall) || stall.awaits_schedule() {
        // Only a stack tells whether it blocks in place, and only a span of the thread's
        // scheduling whether CPU work is the code's or the host's: wait for the next look.
        match state.book.lock().hold(stall, raw.cpu_now_ns) {
            Ok(()) => return,
            Err(stall) => *stall,
        }
    } else {
        stall
    };
    report(state, console, stall, raw.cpu_now_ns);
}

/// Says once that the application took pollwatch's capture signal, or that a thread blocks it:
/// the stacks that are then missing have a reason a person can act on.
fn said_of_the_signal(state: &State, raw: &RawSample) {
    match &raw.capture {
        Some(Err(e @ CaptureError::HandlerReplaced(_))) => state.diagnostics.push_once(
            "capture signal replaced",
            format!("pollwatch: stacks are off while {e}; stalls are still caught"),
        ),
        Some(Err(e @ CaptureError::SignalBlocked)) => state.diagnostics.push_once(
            "capture signal blocked",
            format!(
                "pollwatch: thread \"{}\" was {e}; its stalls are caught without a stack",
                raw.thread
            ),
        ),
        _ => {}
    }
}

/// Whether the first look captured no stack for a reason a later look may not have (the
/// capture timed out, was busy, or found every buffer kept for other threads' late stacks),
/// as opposed to capture being unavailable. A thread that was not signalled because it was in
/// a call the signal would interrupt is not held: it usually stays in that call, so its stall
/// is reported at once (and takes a stack from a later look that gets one).
fn stack_may_come(raw: &RawSample, stall: &StallRecord) -> bool {
    !stall.look.has_stack()
        && matches!(
            raw.capture,
            Some(Err(CaptureError::Busy
                | CaptureError::AwaitingLate
                | CaptureError::Timeout
                | CaptureError::Signal(_)))
        )
}

/// Counts and warns about a stall, with the thread's CPU time at its detection.
fn report(
    state: &State,
    console: &mut Resources,
    stall: StallRecord,
    cpu_at_detection_ns: Option<u64>,
) {
    // Feature `console`: the site's BlockingSite resource.
    console.stall_detected(state, &stall);
    let warn = state
        .book
        .lock()
        .detected(stall, cpu_at_detection_ns, Instant::now());
    if let Warn::Yes(stall) = warn {
        emit(state, &stall);
    }
}

/// Reports every held stall as a stall (when stopping: no later look will come).
pub(super) fn release_held(state: &State, followers: &mut Followers) {
    let held = state.book.lock().take_all_held();
    for (stall, cpu_at_detection) in held {
        report(state, &mut followers.console, stall, cpu_at_detection);
    }
}

fn resampled(state: &State, console: &mut Resources, raw: &RawSample, look: describe::Look) {
    let mut book = state.book.lock();
    if let Some((mut stall, cpu_at_detection)) = book.take_held(raw.key) {
        drop(book);
        if look.in_place {
            state.book.lock().in_place(raw.key, raw.site);
            return;
        }
        if describe::left_the_worker(&look, raw) {
            return;
        }
        // This look decides, with or without a stack: a stall since its first look.
        let cpu = raw
            .cpu_now_ns
            .zip(cpu_at_detection)
            .map(|(now, at)| now.saturating_sub(at));
        stall.resampled(raw, look, cpu);
        stall.scheduled(raw.sched.as_ref(), None);
        report(state, console, stall, cpu_at_detection);
        return;
    }
    if book.is_in_place(raw.key) {
        if look.in_place || !look.has_stack() {
            return;
        }
        // It left `block_in_place` and blocks holding its thread: a stall from this look on.
        book.left_in_place(raw.key);
        drop(book);
        detected(state, console, raw, look);
        return;
    }
    let cpu = book.cpu_since_detection(raw.key, raw.cpu_now_ns);
    let updated = book.live_mut(raw.key).map(|stall| {
        stall.resampled(raw, look, cpu);
        stall.clone()
    });
    let reclassified = book.scheduled(raw.key, raw.sched.as_ref(), None);
    drop(book);
    if let Some(stall) = updated {
        // Feature `console`: the site's longest stall so far, its call site.
        console.running(state, &stall);
    }
    if let Some(stall) = reclassified {
        // Feature `console`: the cause the thread's scheduling showed.
        console.reclassified(state, &stall);
    }
}

/// Emits the stall's event through the subscriber the layer is installed in.
fn emit(state: &State, stall: &StallRecord) {
    if let Some(dispatch) = state.subscriber.get() {
        events::stall(&dispatch, &stall.to_report(&state.sites));
    }
}

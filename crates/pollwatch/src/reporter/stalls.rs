//! Handling the watchdog's messages on the reporter thread.

use std::time::Instant;

use crate::console::Resources;
use crate::stall::book::Warn;
use crate::stall::location::Roots;
use crate::stall::record::StallRecord;
use crate::stall::{describe, Msg, RawSample, SampleKind};
use crate::state::State;

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
        } => {
            let ended = state.book.lock().ended(key, total_ns, exact, cpu_now_ns);
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
    let stall = StallRecord::detected(raw, look);
    // Feature `console`: the site's BlockingSite resource.
    console.stall_detected(state, &stall);
    let warn = state
        .book
        .lock()
        .detected(stall, raw.cpu_now_ns, Instant::now());
    if let Warn::Yes(stall) = warn {
        emit(state, &stall);
    }
}

fn resampled(state: &State, console: &mut Resources, raw: &RawSample, look: describe::Look) {
    let mut book = state.book.lock();
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
    drop(book);
    if let Some(stall) = updated {
        // Feature `console`: the site's longest stall so far, its call site.
        console.running(state, &stall);
    }
}

/// Emits the stall's event through the subscriber the layer is installed in.
fn emit(state: &State, stall: &StallRecord) {
    if let Some(dispatch) = state.subscriber.get() {
        events::stall(&dispatch, &stall.to_report(&state.sites));
    }
}

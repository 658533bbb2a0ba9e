//! Running code that may panic on pollwatch's own threads: the application's subscriber and
//! layers (every event, span and console resource pollwatch emits goes through them), and
//! pollwatch's own work around it. A panic is caught, counted (`dropped.host_panics` in
//! reports) and said once per kind of work as a diagnostic; the thread goes on with its next
//! message or tick. No pollwatch lock is held while such code runs, so a panic leaves no state
//! half-locked either (and the parking_lot locks used here are never poisoned).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::state::{Lost, State};

/// Runs `f`, which does `what` ("emitting a stall event", ...); `None` when it panicked.
pub(crate) fn run<R>(state: &State, what: &'static str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            caught(state, what, payload.as_ref());
            None
        }
    }
}

/// Counts and says (once per `what`) a panic caught while doing `what`.
pub(crate) fn caught(state: &State, what: &'static str, payload: &(dyn Any + Send)) {
    Lost::count(&state.lost.host_panics);
    state.diagnostics.push_once(
        what,
        format!(
            "pollwatch: a panic while {what} on thread {:?}: {}. It usually comes from a \
             subscriber or layer of the application that panics on pollwatch's events or \
             spans; pollwatch went on without that output and counts such panics in its \
             reports (dropped.host_panics).",
            std::thread::current().name().unwrap_or("unnamed"),
            message(payload)
        ),
    );
}

/// The text a panic was raised with, when it has one.
fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}

/// pollwatch's threads whose work a test can make panic once
/// ([`crate::test_support::inject_panic`]), to show that each contains its panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seam {
    /// The watchdog's scan.
    Watchdog,
    /// The reporter's tick.
    Reporter,
    /// The `/metrics` endpoint's event loop.
    Metrics,
    /// The tokio-console feed's server, as it starts serving.
    Console,
}

/// Which seams panic at their next pass.
static INJECTED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];

/// Makes `seam` panic once, at its next pass.
pub(crate) fn inject(seam: Seam) {
    INJECTED[seam as usize].store(true, Relaxed);
}

/// Panics once after [`inject`]`(seam)`; otherwise one relaxed load. Called where `seam`'s
/// thread contains its panics, so a test sees that it does.
pub(crate) fn fault_point(seam: Seam) {
    if INJECTED[seam as usize].load(Relaxed) && INJECTED[seam as usize].swap(false, Relaxed) {
        panic!("a panic injected into pollwatch's {seam:?} thread by a test");
    }
}

//! The watchdog: a plain OS thread that looks at every polling thread's slot each tick and
//! catches polls that hold their thread past the threshold *while they are still running*,
//! even when every worker and the `block_on` thread are stuck.
//!
//! For a stuck poll it reads what the thread is doing (state, syscall and its target, CPU
//! time) and has the thread record its own stack (raw addresses, tens of microseconds), then
//! hands the raw sample to the reporter thread, which symbolizes it. It never symbolizes,
//! formats events or does file I/O itself: a cold symbolization takes 20-75 ms and would make
//! it miss stalls. A stall that keeps running is looked at again at 2x, 4x, 8x ... the
//! threshold; when it ends, its total is sent on.
//!
//! A worker-level poll (a worker's busy period, with no finer poll open in it) is judged by
//! the call its thread sleeps in instead of its length ([`worker`]).

mod scan;
mod worker;

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Weak};

use pollwatch_capture::Inspector;

use crate::background::{self, Joiner, Stopper};
use crate::stall::Msg;
use crate::state::State;

/// The name of the watchdog thread.
pub(crate) const THREAD_NAME: &str = "pollwatch-watch";

/// Controls the watchdog thread.
#[derive(Debug, Default)]
pub(crate) struct Watchdog {
    stopper: Stopper,
    thread: Joiner,
    tid: AtomicI32,
}

impl Watchdog {
    pub(crate) fn start(
        state: &Arc<State>,
        inspector: Arc<dyn Inspector>,
        to_reporter: SyncSender<Msg>,
    ) -> Arc<Watchdog> {
        let watchdog = Arc::new(Watchdog::default());
        let weak = Arc::downgrade(state);
        let control = watchdog.clone();
        let thread = background::spawn(THREAD_NAME, move || {
            run(&weak, &control, &*inspector, &to_reporter)
        });
        watchdog.thread.set(thread);
        watchdog
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&self) {
        self.stopper.stop();
        self.thread.join();
    }

    /// The watchdog thread's OS thread id, once it runs (0 before).
    pub(crate) fn tid(&self) -> i32 {
        self.tid.load(Relaxed)
    }
}

fn run(state: &Weak<State>, control: &Watchdog, inspector: &dyn Inspector, to: &SyncSender<Msg>) {
    control.tid.store(pollwatch_capture::current_tid(), Relaxed);
    let mut scanner = scan::Scanner::default();
    loop {
        let tick = match state.upgrade() {
            Some(state) => state.tick,
            None => return,
        };
        let stopping = control.stopper.wait(tick);
        let Some(state) = state.upgrade() else {
            return;
        };
        // A panic in a scan loses that scan, not the watchdog.
        crate::guarded::run(&state, "scanning the threads for stalls", || {
            crate::guarded::fault_point(crate::guarded::Seam::Watchdog);
            scanner.scan(&state, inspector, to);
        });
        if stopping {
            return;
        }
    }
}

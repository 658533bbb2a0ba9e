//! The reporter thread: a plain OS thread, never on the runtime it watches, that turns what
//! the poll path and the watchdog noted into events, report entries, console resources, report
//! files and setup diagnostics.
//!
//! It handles the watchdog's stall samples as they arrive (symbolizing them: the symbolizer is
//! warmed up when the thread starts), and every tick drains each thread's queue of finished
//! slow polls, emits one WARN event per slow poll not already reported as a stall, keeps the
//! most recent ones for reports, runs the setup check, refreshes the console resources and
//! writes the report files that are due. It runs under `NoSubscriber`; events go explicitly to
//! the subscriber the layer is installed in.
//!
//! It owns its state: the console resources (only this thread touches them) and the live
//! report files (shared with [`Reporter::write_report`] under one lock).

pub(crate) mod events;
pub(crate) mod faults;
pub(crate) mod files;
mod retry;
mod stalls;

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pollwatch_report::error::WriteError;
use pollwatch_report::write::WrittenFiles;
use pollwatch_report::Report;

use self::files::Files;
use crate::background::{self, Joiner};
use crate::guarded;
use crate::poll::PollKey;
use crate::stall::Msg;
use crate::state::{RecentSlowPoll, State};

/// A finished slow poll is reported once it has been over for this long, so that a drop
/// (whose span closes right after it) is labelled a drop.
const SETTLE: Duration = Duration::from_millis(1);

/// The name of the reporter thread.
pub(crate) const THREAD_NAME: &str = "pollwatch-report";

/// Controls the reporter thread.
#[derive(Debug)]
pub(crate) struct Reporter {
    to: SyncSender<Msg>,
    thread: Joiner,
    files: Arc<Mutex<Files>>,
}

impl Reporter {
    pub(crate) fn start(
        state: &Arc<State>,
        files: Files,
        to: SyncSender<Msg>,
        from: Receiver<Msg>,
    ) -> Arc<Reporter> {
        let weak = Arc::downgrade(state);
        let files = Arc::new(Mutex::new(files));
        let thread_files = files.clone();
        let tick = state.tick;
        let thread = background::spawn(THREAD_NAME, move || {
            run(&weak, &from, &thread_files, tick);
        });
        Arc::new(Reporter {
            to,
            thread: Joiner::new(thread),
            files,
        })
    }

    /// Stops the thread after it has handled what is queued and reported what is pending,
    /// and waits for it.
    pub(crate) fn stop(&self) {
        let mut msg = Msg::Stop;
        // The queue may be full of stall samples: wait for room, briefly.
        for _ in 0..100 {
            match self.to.try_send(msg) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(back)) => {
                    msg = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        self.thread.join();
    }

    /// Writes the report files into `dir` (see [`Files::write_to`]).
    pub(crate) fn write_report(
        &self,
        state: &State,
        dir: &Path,
    ) -> Result<WrittenFiles, WriteError> {
        self.files.lock().write_to(state, dir)
    }
}

/// How long the parsed debug info is kept after the last symbolization. It is parsed at the
/// first stall, not at start (the stall is caught at once either way; its description waits
/// for the parse, 20-75 ms), so a service that does not stall, or stalls no more, holds none
/// of it.
const SYMBOLS_KEPT: Duration = Duration::from_secs(30);

fn run(state: &Weak<State>, from: &Receiver<Msg>, files: &Mutex<Files>, tick: Duration) {
    let mut followers = stalls::Followers::default();
    let mut last_drain = Instant::now();
    loop {
        let first = from.recv_timeout(tick);
        let Some(state) = state.upgrade() else {
            return;
        };
        let mut stopping = matches!(first, Err(RecvTimeoutError::Disconnected));
        let mut handle = |msg: Msg| match msg {
            Msg::Stop => stopping = true,
            msg => {
                guarded::run(
                    &state,
                    "handling a stall (its event, console resource)",
                    || {
                        stalls::handle(&state, &mut followers, msg);
                    },
                );
            }
        };
        if let Ok(msg) = first {
            handle(msg);
            while let Ok(msg) = from.try_recv() {
                handle(msg);
            }
        }
        if stopping {
            // No later look will come for a stall held back for one.
            guarded::run(&state, "reporting the stalls held for a stack", || {
                stalls::release_held(&state, &mut followers);
            });
        }
        if stopping || last_drain.elapsed() >= tick {
            drain(&state, stopping);
            guarded::run(
                &state,
                "summarizing the warnings over the rate limit",
                || {
                    guarded::fault_point(guarded::Seam::Reporter);
                    events::suppressed(&state, stopping);
                },
            );
            // Exited threads' slots, once their slow polls were taken above.
            state.poll.reclaim_exited();
            guarded::run(&state, "checking the setup", || {
                state.setup.check(&state.diagnostics);
                state
                    .setup
                    .check_line_tables(&state.diagnostics, state.subscriber.get());
            });
            pollwatch_capture::release_symbols_if_idle(SYMBOLS_KEPT);
            // Feature `console`: the sites' p99 poll times, at most once a second.
            guarded::run(&state, "updating the console resources", || {
                followers.console.refresh(&state);
            });
            guarded::run(&state, "writing the report files", || {
                let mut files = files.lock();
                if stopping {
                    files.cut(&state);
                } else {
                    files.tick(&state);
                }
            });
            last_drain = Instant::now();
        }
        if stopping {
            return;
        }
    }
}

/// Takes every settled slow poll from every thread, warns about it (unless the watchdog
/// already reported it as a stall, or its site is over the warning rate limit) and keeps it.
/// With `all`, takes unsettled ones too.
pub(crate) fn drain(state: &State, all: bool) {
    let slots = state.poll.slot_list();
    let clock = &state.poll.clock;
    let now = clock.now();
    let settle_ns = SETTLE.as_nanos() as u64;
    let mut found: Vec<(RecentSlowPoll, bool)> = Vec::new();
    let lost = std::mem::take(&mut *state.lost.detections.lock());
    let mut book = state.book.lock();
    for (site, n) in lost {
        book.detections_lost(site, n);
    }
    let at = Instant::now();
    for (index, slot) in slots.iter().enumerate() {
        slot.drain_slow(
            |ended_at| all || clock.delta_ns(ended_at, now) >= settle_ns,
            |record| {
                let key = PollKey {
                    slot: index,
                    seq: record.seq,
                    start: record.started_at,
                };
                if book.in_place_ended(key) {
                    // Blocking inside `block_in_place`: allowed, counted by the book.
                    return;
                }
                // Not warned about again when the watchdog already reported it as a stall
                // (whose duration becomes the poll's own measurement), nor beyond the site's
                // warning rate limit.
                let silent = book.slow_poll_ended(key, record.site, record.ns, record.kind)
                    || !book.allow_warning(record.site, at);
                let thread = slot.name().to_owned();
                found.push((RecentSlowPoll { record, thread }, silent));
            },
        );
    }
    book.drained(all);
    drop(book);
    if found.is_empty() {
        return;
    }
    found.sort_by_key(|(s, _)| s.record.ended_at);
    let to_emit: Vec<&RecentSlowPoll> = found
        .iter()
        .filter(|(_, silent)| !silent)
        .map(|(s, _)| s)
        .collect();
    guarded::run(state, "emitting slow-poll events", || {
        events::slow_polls(state, &to_emit);
    });
    let mut recent = state.recent.lock();
    for (slow, _) in found {
        if recent.len() == Report::SLOW_POLLS_KEPT {
            recent.pop_front();
        }
        recent.push_back(slow);
    }
}

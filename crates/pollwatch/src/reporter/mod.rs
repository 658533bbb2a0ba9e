//! The reporter thread: a plain OS thread, never on the runtime it watches, that turns what
//! the poll path and the watchdog noted into events, report entries and setup diagnostics.
//!
//! It handles the watchdog's stall samples as they arrive (symbolizing them: the symbolizer is
//! warmed up when the thread starts), and every tick drains each thread's queue of finished
//! slow polls, emits one WARN event per slow poll not already reported as a stall, keeps the
//! most recent ones for reports, and runs the setup check. It runs under `NoSubscriber`;
//! events go explicitly to the subscriber the layer is installed in.

pub(crate) mod events;
pub(crate) mod files;
pub(crate) mod setup_check;
mod stalls;

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pollwatch_report::{Report, SlowPoll};

use crate::background;
use crate::shared::Shared;
use crate::stall::Msg;

/// A finished slow poll is reported once it has been over for this long, so that a drop
/// (whose span closes right after it) is labelled a drop.
const SETTLE: Duration = Duration::from_millis(1);

/// The name of the reporter thread.
pub(crate) const THREAD_NAME: &str = "pollwatch-report";

/// Controls the reporter thread.
#[derive(Debug)]
pub(crate) struct Reporter {
    to: SyncSender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reporter {
    pub(crate) fn start(
        shared: &Arc<Shared>,
        to: SyncSender<Msg>,
        from: Receiver<Msg>,
    ) -> Arc<Reporter> {
        let weak = Arc::downgrade(shared);
        let tick = shared.tick;
        let thread = background::spawn(THREAD_NAME, move || run(&weak, &from, tick));
        Arc::new(Reporter {
            to,
            thread: Mutex::new(thread),
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
        background::join(&self.thread);
    }
}

fn run(shared: &Weak<Shared>, from: &Receiver<Msg>, tick: Duration) {
    pollwatch_capture::warm_up();
    let mut last_drain = Instant::now();
    loop {
        let first = from.recv_timeout(tick);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut stopping = matches!(first, Err(RecvTimeoutError::Disconnected));
        let mut handle = |msg: Msg| match msg {
            Msg::Stop => stopping = true,
            msg => stalls::handle(&shared, msg),
        };
        if let Ok(msg) = first {
            handle(msg);
            while let Ok(msg) = from.try_recv() {
                handle(msg);
            }
        }
        if stopping || last_drain.elapsed() >= tick {
            drain(&shared, stopping);
            shared.setup.check(&shared);
            // Feature `console`: the sites' p99 poll times, at most once a second.
            crate::console::refresh(&shared);
            if let Ok(mut files) = shared.files.lock() {
                if stopping {
                    files.cut(&shared);
                } else {
                    files.tick(&shared);
                }
            }
            last_drain = Instant::now();
        }
        if stopping {
            return;
        }
    }
}

/// Takes every settled slow poll from every thread, warns about it (unless the watchdog
/// already reported it as a stall, or its site is over the warning rate limit) and keeps it. With `all`, takes unsettled ones too.
pub(crate) fn drain(shared: &Shared, all: bool) {
    let slots = shared.poll.slot_list();
    let clock = &shared.poll.clock;
    let now = clock.now();
    let settle_ns = SETTLE.as_nanos() as u64;
    let mut found: Vec<(SlowPoll, bool)> = Vec::new();
    let mut book = shared.book.lock().ok();
    let at = Instant::now();
    for (index, slot) in slots.iter().enumerate() {
        slot.slow.drain(
            |ended_at| all || clock.delta_ns(ended_at, now) >= settle_ns,
            |record| {
                let (label, name) = match shared.sites.get(record.site) {
                    Some(site) => (site.label.clone(), site.name.clone()),
                    None => (String::from("<unknown>"), String::new()),
                };
                // Not warned about again when the watchdog already reported it as a stall,
                // nor beyond the site's warning rate limit.
                let key = (index, record.seq);
                let silent = book.as_mut().is_some_and(|b| {
                    if b.was_reported(key) {
                        // The stall's exact duration: the poll's own measurement.
                        if let Some(stall) = b.settle(key, record.site, &label, record.ns) {
                            stalls::refresh_message(stall);
                        }
                        return true;
                    }
                    !b.allow_warning(record.site, at)
                });
                found.push((
                    SlowPoll {
                        task_id: record.task_id,
                        task_name: name,
                        site: label,
                        thread: slot.name.clone(),
                        duration_ns: record.ns,
                        kind: if record.is_drop { "drop" } else { "poll" }.to_owned(),
                        ended_at_ns: clock.since_origin_ns(record.ended_at),
                    },
                    silent,
                ));
            },
        );
    }
    drop(book);
    if found.is_empty() {
        return;
    }
    found.sort_by_key(|(s, _)| s.ended_at_ns);
    let to_emit: Vec<SlowPoll> = found
        .iter()
        .filter(|(_, silent)| !silent)
        .map(|(s, _)| s.clone())
        .collect();
    events::emit(shared, &to_emit);
    if let Ok(mut recent) = shared.recent.lock() {
        for (slow, _) in found {
            if recent.len() == Report::SLOW_POLLS_KEPT {
                recent.pop_front();
            }
            recent.push_back(slow);
        }
    }
}

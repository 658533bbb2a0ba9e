//! The reporter thread: a plain OS thread, never on the runtime it watches, that turns what
//! the poll path noted into events, report entries and setup diagnostics.
//!
//! Every tick it drains each thread's queue of finished slow polls, emits one WARN event per
//! slow poll through the subscriber the layer is installed in, and keeps the most recent ones
//! for reports. It runs under `NoSubscriber` otherwise, so nothing it does is measured.

pub(crate) mod events;
pub(crate) mod setup_check;

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use pollwatch_report::{Report, SlowPoll};

use crate::shared::Shared;

/// A finished slow poll is reported once it has been over for this long, so that a drop
/// (whose span closes right after it) is labelled a drop.
const SETTLE: Duration = Duration::from_millis(1);

/// The name of the reporter thread.
pub(crate) const THREAD_NAME: &str = "pollwatch-reporter";

/// Controls the reporter thread: stop it and wait for its last drain.
#[derive(Debug, Default)]
pub(crate) struct Reporter {
    stop: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reporter {
    pub(crate) fn start(shared: &Arc<Shared>) -> Arc<Reporter> {
        let reporter = Arc::new(Reporter::default());
        let weak = Arc::downgrade(shared);
        let control = reporter.clone();
        let tick = shared.tick;
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                tracing::subscriber::with_default(
                    tracing::subscriber::NoSubscriber::default(),
                    || run(&weak, &control, tick),
                )
            });
        match spawned {
            Ok(handle) => {
                if let Ok(mut thread) = reporter.thread.lock() {
                    *thread = Some(handle);
                }
            }
            Err(e) => eprintln!("pollwatch: could not start its reporter thread ({e}); slow polls are counted but not reported as events"),
        }
        reporter
    }

    /// Stops the thread after one last drain, and waits for it.
    pub(crate) fn stop(&self) {
        if let Ok(mut stop) = self.stop.lock() {
            *stop = true;
        }
        self.wake.notify_all();
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    /// Waits one tick; true when asked to stop.
    fn wait(&self, tick: Duration) -> bool {
        let Ok(stop) = self.stop.lock() else {
            return true;
        };
        if *stop {
            return true;
        }
        match self.wake.wait_timeout(stop, tick) {
            Ok((stop, _)) => *stop,
            Err(_) => true,
        }
    }
}

fn run(shared: &Weak<Shared>, control: &Reporter, tick: Duration) {
    loop {
        let stopping = control.wait(tick);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        drain(&shared, stopping);
        shared.setup.check(&shared);
        if stopping {
            return;
        }
    }
}

/// Takes every settled slow poll from every thread, reports it and keeps it. With `all`,
/// takes unsettled ones too (the layer is shutting down).
pub(crate) fn drain(shared: &Shared, all: bool) {
    let slots = match shared.poll.slots.lock() {
        Ok(slots) => slots.clone(),
        Err(_) => return,
    };
    let clock = &shared.poll.clock;
    let now = clock.now();
    let settle_ns = SETTLE.as_nanos() as u64;
    let mut found: Vec<SlowPoll> = Vec::new();
    for slot in &slots {
        slot.slow.drain(
            |ended_at| all || clock.delta_ns(ended_at, now) >= settle_ns,
            |record| {
                let (label, name) = match shared.sites.get(record.site) {
                    Some(site) => (site.label.clone(), site.name.clone()),
                    None => (String::from("<unknown>"), String::new()),
                };
                found.push(SlowPoll {
                    task_id: record.task_id,
                    task_name: name,
                    site: label,
                    thread: slot.name.clone(),
                    duration_ns: record.ns,
                    kind: if record.is_drop { "drop" } else { "poll" }.to_owned(),
                    ended_at_ns: clock.since_origin_ns(record.ended_at),
                });
            },
        );
    }
    if found.is_empty() {
        return;
    }
    found.sort_by_key(|s| s.ended_at_ns);
    events::emit(shared, &found);
    if let Ok(mut recent) = shared.recent.lock() {
        for slow in found {
            if recent.len() == Report::SLOW_POLLS_KEPT {
                recent.pop_front();
            }
            recent.push_back(slow);
        }
    }
}

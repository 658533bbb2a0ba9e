//! pollwatch's own threads: named, running under `NoSubscriber` (nothing they do is traced or
//! measured), never on the runtime they watch, and stopped and joined on shutdown.

use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Starts a named background thread under `NoSubscriber`; says so on stderr if it cannot.
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Option<JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), f)
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            eprintln!("pollwatch: could not start its {name} thread ({e}); it works without it");
            None
        }
    }
}

/// Joins a background thread unless it is the calling thread.
pub(crate) fn join(thread: &Mutex<Option<JoinHandle<()>>>) {
    let handle = thread.lock().ok().and_then(|mut t| t.take());
    if let Some(handle) = handle {
        if handle.thread().id() != std::thread::current().id() {
            let _ = handle.join();
        }
    }
}

/// A stop flag a background thread waits on between ticks.
#[derive(Debug, Default)]
pub(crate) struct Stopper {
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Stopper {
    /// Asks the thread to stop, waking it.
    pub(crate) fn stop(&self) {
        if let Ok(mut stop) = self.stop.lock() {
            *stop = true;
        }
        self.wake.notify_all();
    }

    /// Waits one tick; true when asked to stop.
    pub(crate) fn wait(&self, tick: Duration) -> bool {
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

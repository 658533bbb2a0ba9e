//! pollwatch's own threads: named, running under `NoSubscriber` (nothing they do is traced or
//! measured), never on the runtime they watch, and stopped and joined on shutdown.

use std::io::Write;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

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
            // Never `eprintln!`: it panics when stderr cannot be written.
            let _ = writeln!(
                std::io::stderr().lock(),
                "pollwatch: could not start its {name} thread ({e}); it works without it"
            );
            None
        }
    }
}

/// A background thread's handle, joined once.
#[derive(Debug, Default)]
pub(crate) struct Joiner {
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Joiner {
    pub(crate) fn new(thread: Option<JoinHandle<()>>) -> Self {
        Self {
            thread: Mutex::new(thread),
        }
    }

    /// Keeps `thread` to join (for a thread started after its control was shared).
    pub(crate) fn set(&self, thread: Option<JoinHandle<()>>) {
        *self.thread.lock() = thread;
    }

    /// Joins the thread unless it is the calling thread (or was joined already).
    pub(crate) fn join(&self) {
        let handle = self.thread.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
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
        *self.stop.lock() = true;
        self.wake.notify_all();
    }

    /// Waits one tick; true when asked to stop.
    pub(crate) fn wait(&self, tick: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop {
            self.wake.wait_for(&mut stop, tick);
        }
        *stop
    }
}

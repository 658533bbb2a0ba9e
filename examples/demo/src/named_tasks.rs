//! Spawning the demo's named tasks: with tokio's task `Builder` (names only exist under
//! `--cfg tokio_unstable`, where pollwatch's tracing layer reads them), or as pollwatch watched
//! futures named the same way, which need no flag: always in a build without it, and with
//! `--no-layer` in one with it. Without the `pollwatch` feature, tasks are spawned plainly
//! (named under `--cfg tokio_unstable`).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

#[cfg(feature = "pollwatch")]
use pollwatch::Watch;
use tokio::task::JoinHandle;

/// Set by `--no-layer`: spawn named tasks as watched futures even where tokio can name them.
static WATCHED: AtomicBool = AtomicBool::new(false);

/// Spawns every later named task as a pollwatch watched future (`.watched_named(name)`).
pub fn spawn_watched(on: bool) {
    WATCHED.store(on, Relaxed);
}

/// Whether named tasks are spawned as watched futures.
pub fn spawns_watched() -> bool {
    cfg!(feature = "pollwatch") && (!cfg!(tokio_unstable) || WATCHED.load(Relaxed))
}

/// Spawns `future` as a task named `name`, its site the caller's line.
#[track_caller]
pub fn spawn_named<F>(name: &'static str, future: F) -> io::Result<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[cfg(tokio_unstable)]
    if !spawns_watched() {
        return tokio::task::Builder::new().name(name).spawn(future);
    }
    #[cfg(feature = "pollwatch")]
    return Ok(tokio::spawn(future.watched_named(name)));
    #[cfg(not(feature = "pollwatch"))]
    {
        let _ = name;
        Ok(tokio::spawn(future))
    }
}

//! A test's runtime: the one `#[pollwatch::test]` builds ([`Flavor`]), the poll sources a
//! watched runtime is given in each build, and waiting until those sources see its workers.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::handle::Handle;
use crate::state::State;

/// The runtime `#[pollwatch::test]` runs a test on: `#[tokio::test]`'s `flavor` and
/// `worker_threads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavor {
    /// One thread, the test's own (`flavor = "current_thread"`, the default).
    CurrentThread,
    /// Worker threads, as many as `workers` or tokio's default (one per CPU).
    MultiThread {
        /// `worker_threads`.
        workers: Option<usize>,
    },
}

impl Flavor {
    /// A runtime builder of this flavor, every driver on, as `#[tokio::test]` builds it.
    pub(crate) fn builder(self) -> tokio::runtime::Builder {
        let mut builder = match self {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread { workers } => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                if let Some(workers) = workers {
                    builder.worker_threads(workers);
                }
                builder
            }
        };
        builder.enable_all();
        builder
    }
}

/// Feeds `handle` from `runtime`'s hooks, the ones the build allows (the task hooks under
/// `--cfg tokio_unstable`, the stable worker hooks otherwise), and makes it the current
/// pollwatch of the runtime's threads.
pub(crate) fn hook(
    handle: &Handle,
    runtime: &mut tokio::runtime::Builder,
    location: &'static Location<'static>,
) {
    crate::source::hook_runtime(handle.state(), runtime, location);
    own_current(handle.state(), runtime);
}

/// Makes `state` the current pollwatch of each of `runtime`'s threads: what they wrap with
/// `.watched()` or `pollwatch::spawn` feeds the test's watch, not another test's.
fn own_current(state: &Arc<State>, runtime: &mut tokio::runtime::Builder) {
    let state: Weak<State> = Arc::downgrade(state);
    runtime.on_thread_start(move || crate::source::current::set_for_thread(&state));
}

/// The longest [`settle`] waits for a runtime's workers.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// Waits until each of `runtime`'s workers has parked once: the worker hooks see a worker's
/// busy periods from its first park on (a blocking call before it is not seen).
pub(crate) fn settle(runtime: &tokio::runtime::Runtime) {
    let deadline = Instant::now() + SETTLE_LIMIT;
    while !parked_once(runtime) && Instant::now() < deadline {
        match runtime.handle().runtime_flavor() {
            // Its one worker is the thread in `block_on`: it parks once the future it runs
            // is pending with nothing to do (a wake that comes first makes it only yield to
            // the driver, without its park hooks: then again).
            tokio::runtime::RuntimeFlavor::CurrentThread => {
                runtime.block_on(WokenElsewhere { woken: false })
            }
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
}

/// Whether each worker of `runtime` has parked at least once.
#[cfg(target_has_atomic = "64")]
fn parked_once(runtime: &tokio::runtime::Runtime) -> bool {
    let metrics = runtime.metrics();
    (0..metrics.num_workers()).all(|w| metrics.worker_park_count(w) > 0)
}

/// Without 64-bit atomics tokio counts no parks: workers are taken as started.
#[cfg(not(target_has_atomic = "64"))]
fn parked_once(_runtime: &tokio::runtime::Runtime) -> bool {
    true
}

/// Pending on its first poll, woken by a thread of the runtime's blocking pool (no task, so
/// the runtime parks meanwhile); ready on the next.
struct WokenElsewhere {
    woken: bool,
}

impl Future for WokenElsewhere {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken {
            return Poll::Ready(());
        }
        self.woken = true;
        let waker = cx.waker().clone();
        drop(tokio::task::spawn_blocking(move || waker.wake()));
        Poll::Pending
    }
}

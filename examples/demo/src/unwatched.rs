//! Side runtimes that pollwatch does not watch: the load generator and the slow upstream each
//! run on an OS thread of their own, in a current-thread tokio runtime whose thread has
//! tracing's `NoSubscriber` as its default. tokio creates a task's span with the spawning
//! thread's subscriber, so these runtimes' tasks never reach pollwatch and the report shows
//! only the service. Running elsewhere also keeps the load from hiding the service's stalls:
//! a held service worker cannot slow the client that measures it.

use std::future::Future;
use std::io;
use std::thread::JoinHandle;

use tracing::subscriber::NoSubscriber;

/// Starts the OS thread `name` and runs `make()`'s future to completion on a current-thread
/// runtime there, with no tracing subscriber.
pub fn spawn<M, F>(name: &str, make: M) -> io::Result<JoinHandle<io::Result<F::Output>>>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future,
    F::Output: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            tracing::subscriber::with_default(NoSubscriber::default(), || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(make()))
            })
        })
}

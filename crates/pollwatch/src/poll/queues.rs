//! The run queues of the runtime a thread polls for, read by the watchdog while a stall holds
//! that thread: how many tasks were ready to run behind it.
//!
//! A thread's slot takes them once, at the thread's first poll (a thread-local lookup and a
//! reference count, off the per-poll path), from the runtime it runs in then. A thread that
//! runs one runtime after another (`block_on` on several in turn) keeps the first one's.

use std::thread::ThreadId;

/// A thread's runtime, to read its queues from pollwatch's threads.
#[derive(Clone, Debug)]
pub(crate) struct RunQueues {
    metrics: tokio::runtime::RuntimeMetrics,
    /// The thread that polls: its worker index is looked up at each reading, because a
    /// worker's core moves to another thread in `block_in_place`.
    thread: ThreadId,
}

/// The queues at one reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueDepths {
    /// Tasks in the runtime's global (injection) queue.
    pub(crate) global: u64,
    /// Tasks in the thread's own run queue, where tokio exposes it (`--cfg tokio_unstable`)
    /// and the thread is one of the runtime's workers.
    pub(crate) local: Option<u64>,
    /// The runtime's workers, which share the global queue.
    pub(crate) workers: u32,
}

impl RunQueues {
    /// The queues of the runtime the calling thread runs in, if it runs in one.
    pub(crate) fn of_current_thread() -> Option<Self> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        Some(Self {
            metrics: handle.metrics(),
            thread: std::thread::current().id(),
        })
    }

    /// How many tasks wait now (a few atomic loads).
    pub(crate) fn depths(&self) -> QueueDepths {
        let workers = self.metrics.num_workers();
        QueueDepths {
            global: self.metrics.global_queue_depth() as u64,
            local: local_depth(&self.metrics, self.thread, workers),
            workers: u32::try_from(workers).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(tokio_unstable)]
fn local_depth(
    metrics: &tokio::runtime::RuntimeMetrics,
    thread: ThreadId,
    workers: usize,
) -> Option<u64> {
    let worker = (0..workers).find(|&w| metrics.worker_thread_id(w) == Some(thread))?;
    Some(metrics.worker_local_queue_depth(worker) as u64)
}

#[cfg(not(tokio_unstable))]
fn local_depth(_: &tokio::runtime::RuntimeMetrics, _: ThreadId, _: usize) -> Option<u64> {
    None
}

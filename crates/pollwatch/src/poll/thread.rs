//! Per-thread poll state: one [`ThreadSlot`] for every thread that polls a task (workers,
//! `block_on` callers, `block_in_place` threads), created lazily on its first poll.
//!
//! A slot has a single writer, its thread, and is published to pollwatch's own threads through
//! the layer's slot list (a mutex taken once per thread, at creation). Everything the poll
//! path touches is preallocated at creation, except a site's recorder, allocated the first
//! time this thread polls a task of that site.

use std::cell::RefCell;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Relaxed, Release},
};
use std::sync::{Arc, OnceLock};

use super::recorder::{Recorded, SiteRecorder};
use super::slow_ring::SlowRing;

/// How many task polls may nest on one thread (a `LocalSet` inside `block_on` is 2). Deeper
/// polls are not timed, and are counted.
pub(crate) const MAX_DEPTH: usize = 32;

/// How many other spans (`#[instrument]` spans inside a task) a thread tracks, so a stall can
/// name the innermost one. Deeper ones are not tracked.
pub(crate) const MAX_INNER_SPANS: usize = 16;

/// One entered task span on a thread's stack.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    pub(crate) span: AtomicU64,
    pub(crate) task_id: AtomicU64,
    pub(crate) site: AtomicU32,
    pub(crate) start: AtomicU64,
    /// Time spent in polls nested inside this one, so this poll's own time excludes it.
    pub(crate) nested_ns: AtomicU64,
    /// The thread's inner-span depth when this poll started.
    pub(crate) inner_base: AtomicUsize,
}

/// The last poll this thread finished, kept until the next enter so that `on_close` can
/// relabel it as a drop: `tracing::Instrumented` enters the span once more to drop the
/// future, and that enter is followed directly by the span's close on the same thread.
#[derive(Debug, Default)]
pub(crate) struct LastExit {
    pub(crate) span: AtomicU64,
    pub(crate) task_id: AtomicU64,
    pub(crate) site: AtomicU32,
    pub(crate) bucket: AtomicUsize,
    pub(crate) ns: AtomicU64,
    pub(crate) prev_max_ns: AtomicU64,
    /// Position in the slow ring + 1, or 0 when the poll was not slow or not queued.
    pub(crate) slow_position: AtomicU64,
    pub(crate) slow: AtomicBool,
}

impl LastExit {
    pub(crate) fn recorded(&self) -> Recorded {
        Recorded {
            bucket: self.bucket.load(Relaxed),
            ns: self.ns.load(Relaxed),
            prev_max_ns: self.prev_max_ns.load(Relaxed),
        }
    }
}

/// The state of one polling thread.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct ThreadSlot {
    /// The thread's name, or its `ThreadId`.
    pub(crate) name: String,
    /// The OS thread id, for /proc and signals (0 where unknown).
    pub(crate) tid: i32,
    /// Nesting depth: the number of task spans entered on this thread.
    pub(crate) depth: AtomicUsize,
    pub(crate) frames: [Frame; MAX_DEPTH],
    /// Raw clock reading when the outermost poll started, 0 when the thread is not polling.
    pub(crate) poll_start: AtomicU64,
    /// Bumped at the start of every outermost poll, so each poll is reported once.
    pub(crate) poll_seq: AtomicU64,
    /// The `poll_seq` of the last outermost poll that ended, and how long it held the thread.
    pub(crate) last_outer_seq: AtomicU64,
    pub(crate) last_outer_ns: AtomicU64,
    /// `poll_seq` and duration of the last outermost poll longer than the threshold (written
    /// only by slow polls, so the watchdog can still find a stall's end after faster polls).
    pub(crate) last_slow_seq: AtomicU64,
    pub(crate) last_slow_ns: AtomicU64,
    /// Ids of non-task spans entered inside the current poll, innermost last.
    pub(crate) inner: [AtomicU64; MAX_INNER_SPANS],
    pub(crate) inner_depth: AtomicUsize,
    pub(crate) last_exit: LastExit,
    pub(crate) recorders: Box<[OnceLock<Box<SiteRecorder>>]>,
    pub(crate) slow: SlowRing,
    pub(crate) nested_too_deep: AtomicU64,
    pub(crate) clamped: AtomicU64,
    pub(crate) alive: AtomicBool,
}

impl ThreadSlot {
    pub(crate) fn new(sites: usize) -> Self {
        let current = std::thread::current();
        let name = match current.name() {
            Some(name) => name.to_owned(),
            None => format!("{:?}", current.id()),
        };
        Self {
            name,
            tid: pollwatch_capture::current_tid(),
            depth: AtomicUsize::new(0),
            frames: std::array::from_fn(|_| Frame::default()),
            poll_start: AtomicU64::new(0),
            poll_seq: AtomicU64::new(0),
            last_outer_seq: AtomicU64::new(0),
            last_outer_ns: AtomicU64::new(0),
            last_slow_seq: AtomicU64::new(0),
            last_slow_ns: AtomicU64::new(0),
            inner: std::array::from_fn(|_| AtomicU64::new(0)),
            inner_depth: AtomicUsize::new(0),
            last_exit: LastExit::default(),
            recorders: (0..sites).map(|_| OnceLock::new()).collect(),
            slow: SlowRing::new(),
            nested_too_deep: AtomicU64::new(0),
            clamped: AtomicU64::new(0),
            alive: AtomicBool::new(true),
        }
    }

    /// This thread's recorder for `site`, allocated on the thread's first poll of that site.
    #[inline]
    pub(crate) fn recorder(&self, site: u32) -> Option<&SiteRecorder> {
        let cell = self.recorders.get(site as usize)?;
        Some(cell.get_or_init(|| Box::new(SiteRecorder::new())))
    }

    /// The innermost non-task span entered inside the innermost running poll, if any.
    pub(crate) fn inner_span(&self) -> Option<u64> {
        let depth = self.depth.load(Relaxed);
        if depth == 0 || depth > MAX_DEPTH {
            return None;
        }
        let base = self.frames[depth - 1].inner_base.load(Relaxed);
        let inner = self.inner_depth.load(Relaxed);
        if inner <= base || inner > MAX_INNER_SPANS {
            return None;
        }
        Some(self.inner[inner - 1].load(Relaxed))
    }

    /// This thread's recorder for `site`, if it has polled that site.
    pub(crate) fn existing_recorder(&self, site: u32) -> Option<&SiteRecorder> {
        self.recorders.get(site as usize)?.get().map(|b| &**b)
    }
}

/// Marks the slot dead when its thread exits.
struct Registration {
    layer: u64,
    slot: Arc<ThreadSlot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.slot.poll_start.store(0, Release);
        self.slot.alive.store(false, Release);
    }
}

thread_local! {
    /// This thread's slots, one per pollwatch layer that has seen it poll (usually one).
    static SLOTS: RefCell<Vec<Registration>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's slot for the layer `layer`, if the thread has one. Never
/// allocates; does nothing during thread teardown.
#[inline]
pub(crate) fn with_slot<R>(layer: u64, f: impl FnOnce(&ThreadSlot) -> R) -> Option<R> {
    SLOTS
        .try_with(|slots| {
            let slots = slots.try_borrow().ok()?;
            let found = slots.iter().find(|r| r.layer == layer)?;
            Some(f(&found.slot))
        })
        .ok()
        .flatten()
}

/// Like [`with_slot`], creating the slot with `create` (and handing it to `register`) on the
/// thread's first poll.
#[inline]
pub(crate) fn with_slot_or_create<R>(
    layer: u64,
    create: impl FnOnce() -> Arc<ThreadSlot>,
    f: impl FnOnce(&ThreadSlot) -> R,
) -> Option<R> {
    SLOTS
        .try_with(|slots| {
            {
                let borrowed = slots.try_borrow().ok()?;
                if let Some(found) = borrowed.iter().find(|r| r.layer == layer) {
                    return Some(f(&found.slot));
                }
            }
            let slot = create();
            let result = f(&slot);
            slots
                .try_borrow_mut()
                .ok()?
                .push(Registration { layer, slot });
            Some(result)
        })
        .ok()
        .flatten()
}

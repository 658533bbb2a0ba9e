//! Per-thread poll state: one [`ThreadSlot`] for every thread that polls a task (workers,
//! `block_on` callers, `block_in_place` threads), created lazily on its first poll.
//!
//! A slot has a single writer, its thread, and is published to pollwatch's own threads through
//! the layer's slot list (a mutex taken once per thread, at creation). The thread finds its
//! slot through a thread-local: for the first pollwatch it polled for, a pointer read with no
//! other check (see [`first`]). Everything the poll path touches is preallocated at creation,
//! except a site's recorder, allocated the first time this thread polls a task of that site
//! (and its counters, a power of two at a time: see [`super::recorder`]).

use std::cell::{Cell, RefCell};
use std::num::NonZeroU64;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, OnceLock};

use super::queues::RunQueues;
use super::recorder::{Recorded, SiteRecorder};
#[cfg(tokio_unstable)]
use super::site_cache::SiteCache;
use super::slow_ring::{SlowRecord, SlowRing};
use super::TaskInfo;
use crate::sites::SiteId;

/// How many task polls may nest on one thread (a `LocalSet` inside `block_on` is 2). Deeper
/// polls are not timed, and are counted.
pub(super) const MAX_DEPTH: usize = 32;

/// How many other spans (`#[instrument]` spans inside a task) a thread tracks, so a stall can
/// name the innermost one. Deeper ones are not tracked.
pub(super) const MAX_INNER_SPANS: usize = 16;

/// How many of a thread's last slow polls (outermost or nested) keep their length, so that a
/// stall's end (and whether a stack was taken inside it) is known even after more slow polls.
pub(crate) const RECENT_SLOW: usize = 8;

/// The end of one slow poll: the sequence number of the outermost poll it ran in (0: none),
/// its own raw start (polls nested in one outermost poll share the sequence number) and its
/// length, from its start to its end.
#[derive(Debug, Default)]
pub(super) struct SlowEnd {
    seq: AtomicU64,
    start: AtomicU64,
    ns: AtomicU64,
}

/// One entered task span on a thread's stack (48 bytes, in declaration order).
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct Frame {
    pub(super) span: AtomicU64,
    pub(super) task_id: AtomicU64,
    pub(super) start: AtomicU64,
    /// Time spent in polls nested inside this one, so this poll's own time excludes it.
    pub(super) nested_ns: AtomicU64,
    /// The thread's inner-span depth when this poll started (0 for the outermost frame,
    /// whose polls start with none).
    pub(super) inner_base: AtomicUsize,
    pub(super) site: AtomicU32,
    /// How fine the source that gave this poll its site is (`poll::fineness`): a coarser
    /// source's enter folded into it leaves the site alone.
    pub(super) named_by: AtomicU8,
}

impl Frame {
    /// Starts poll `span` of `task` in this frame at raw time `now`, named by a source of
    /// fineness `named_by`. Its `inner_base` is the caller's to set (the outermost frame's
    /// is always 0).
    #[inline(always)]
    pub(super) fn open(&self, span: u64, task: TaskInfo, named_by: u8, now: u64) {
        self.span.store(span, Relaxed);
        self.task_id.store(task.task_id, Relaxed);
        self.site.store(task.site.index(), Relaxed);
        self.named_by.store(named_by, Relaxed);
        self.start.store(now, Relaxed);
        self.nested_ns.store(0, Relaxed);
    }
}

/// The last poll this thread finished, kept until the next enter so that `on_close` can
/// relabel it as a drop: `tracing::Instrumented` enters the span once more to drop the
/// future, and that enter is followed directly by the span's close on the same thread. Its
/// span is [`ThreadSlot::last_exit_span`].
#[derive(Debug, Default)]
pub(super) struct LastExit {
    pub(super) task_id: AtomicU64,
    pub(super) site: AtomicU32,
    pub(super) bucket: AtomicUsize,
    pub(super) ns: AtomicU64,
    pub(super) prev_max_ns: AtomicU64,
    /// Position in the slow ring + 1, or 0 when the poll was not slow or not queued.
    pub(super) slow_position: AtomicU64,
    pub(super) slow: AtomicBool,
}

impl LastExit {
    pub(super) fn recorded(&self) -> Recorded {
        Recorded {
            bucket: self.bucket.load(Relaxed),
            ns: self.ns.load(Relaxed),
            prev_max_ns: self.prev_max_ns.load(Relaxed),
        }
    }
}

/// The state of one polling thread.
///
/// Laid out in declaration order (`repr(C)`): what every poll reads and writes comes first,
/// the slot's header in the first cache line and the outermost frame in the next, so a poll
/// touches few lines of it.
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct ThreadSlot {
    /// Nesting depth: the number of task spans entered on this thread.
    pub(super) depth: AtomicUsize,
    /// Raw clock reading when the outermost poll started, 0 when the thread is not polling.
    pub(super) poll_start: AtomicU64,
    /// Bumped at the start of every outermost poll, so each poll is reported once.
    pub(super) poll_seq: AtomicU64,
    pub(super) inner_depth: AtomicUsize,
    /// The span of [`last_exit`](Self::last_exit), 0 when there is none: cleared by every
    /// enter, so kept on the line every poll writes rather than with the rest of it.
    pub(super) last_exit_span: AtomicU64,
    pub(super) recorders: Box<[OnceLock<Box<SiteRecorder>>]>,
    pub(super) frames: [Frame; MAX_DEPTH],
    pub(super) last_exit: LastExit,
    /// The sites of the spawn locations of the tasks this thread polled (runtime hooks).
    #[cfg(tokio_unstable)]
    pub(super) sites: SiteCache,
    /// The thread's name, or its `ThreadId`.
    pub(super) name: String,
    /// The OS thread id, for /proc and signals (0 where unknown).
    pub(super) tid: i32,
    /// The thread's index among its runtime's workers when it first polled, if it was one.
    pub(super) worker: Option<usize>,
    /// `poll_seq`, start and duration of the last [`RECENT_SLOW`] polls longer than the
    /// threshold, outermost or nested (written only by slow polls, so the watchdog can still
    /// find a stall's end after faster polls and a few more slow ones).
    pub(super) recent_slow: [SlowEnd; RECENT_SLOW],
    /// Where the next slow poll's end goes in `recent_slow` (the writer's own counter).
    pub(super) recent_slow_next: AtomicUsize,
    /// Ids of non-task spans entered inside the current poll, innermost last.
    pub(super) inner: [AtomicU64; MAX_INNER_SPANS],
    pub(super) slow: SlowRing,
    pub(super) nested_too_deep: AtomicU64,
    pub(super) clamped: AtomicU64,
    pub(super) alive: AtomicBool,
    /// The run queues of the runtime the thread first polled in, when it polled in one.
    pub(super) queues: Option<RunQueues>,
}

impl ThreadSlot {
    pub(super) fn new(sites: usize) -> Self {
        let current = std::thread::current();
        let name = match current.name() {
            Some(name) => name.to_owned(),
            None => format!("{:?}", current.id()),
        };
        let mut slot = Self::for_thread(name, pollwatch_capture::current_tid(), sites);
        slot.queues = RunQueues::of_current_thread();
        // tokio answers inside its park and unpark hooks too: the worker hooks' threads are
        // named by worker as well.
        slot.worker = tokio::runtime::worker_index();
        slot
    }

    /// The slot a reclaimed index holds until a new thread takes it: no recorders, never
    /// polling (one is shared by every free index).
    pub(super) fn reclaimed() -> Arc<Self> {
        let slot = Self::for_thread("<exited>".to_owned(), 0, 0);
        slot.alive.store(false, Release);
        Arc::new(slot)
    }

    fn for_thread(name: String, tid: i32, sites: usize) -> Self {
        Self {
            name,
            tid,
            worker: None,
            depth: AtomicUsize::new(0),
            frames: std::array::from_fn(|_| Frame::default()),
            poll_start: AtomicU64::new(0),
            poll_seq: AtomicU64::new(0),
            recent_slow: std::array::from_fn(|_| SlowEnd::default()),
            recent_slow_next: AtomicUsize::new(0),
            inner: std::array::from_fn(|_| AtomicU64::new(0)),
            inner_depth: AtomicUsize::new(0),
            last_exit_span: AtomicU64::new(0),
            last_exit: LastExit::default(),
            recorders: (0..sites).map(|_| OnceLock::new()).collect(),
            slow: SlowRing::new(),
            nested_too_deep: AtomicU64::new(0),
            clamped: AtomicU64::new(0),
            alive: AtomicBool::new(true),
            queues: None,
            #[cfg(tokio_unstable)]
            sites: SiteCache::default(),
        }
    }

    /// This thread's recorder for `site`, allocated on the thread's first poll of that site.
    #[inline]
    pub(super) fn recorder(&self, site: u32) -> Option<&SiteRecorder> {
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

    /// This thread's recorder for raw site index `site`, if it has polled that site.
    pub(super) fn recorder_if_polled(&self, site: u32) -> Option<&SiteRecorder> {
        self.recorders.get(site as usize)?.get().map(|b| &**b)
    }

    /// This thread's recorder for `site`, if it has polled that site.
    #[inline]
    pub(crate) fn existing_recorder(&self, site: SiteId) -> Option<&SiteRecorder> {
        self.recorders
            .get(site.index() as usize)?
            .get()
            .map(|b| &**b)
    }

    // The slot protocol, as pollwatch's own threads read it. The poll path (the only writer)
    // stores `poll_start` last with `Release` when a poll starts and zeroes it when the
    // outermost poll ends; `poll_seq` names each outermost poll.

    /// The run queues of the runtime the thread polls for, when it runs in one.
    pub(crate) fn queues(&self) -> Option<&RunQueues> {
        self.queues.as_ref()
    }

    /// The thread's name, or its `ThreadId`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The thread's index among its runtime's workers when it first polled, if it was one.
    pub(crate) fn worker_index(&self) -> Option<usize> {
        self.worker
    }

    /// The OS thread id, for `/proc` and signals (0 where unknown).
    pub(crate) fn tid(&self) -> i32 {
        self.tid
    }

    /// Whether the thread still runs.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Acquire)
    }

    /// Whether this is a reclaimed index's empty slot.
    pub(crate) fn is_reclaimed(&self) -> bool {
        self.recorders.is_empty()
    }

    /// Whether the thread exited and the reporter has taken every slow poll it queued: what
    /// it recorded can be folded into the reclaimed slots' sums.
    pub(super) fn can_be_reclaimed(&self) -> bool {
        !self.is_alive()
            && !self.is_reclaimed()
            && self.slow.is_empty()
            && self.poll_start.load(Acquire) == 0
    }

    /// How long outermost poll `seq` (started at `start`) held the thread, if it ended and is
    /// still on record. The watchdog follows only polls that held their thread past the
    /// threshold, and each of those records its end when it ends: it is one of the thread's
    /// last [`RECENT_SLOW`] slow polls unless that many more have ended since.
    pub(crate) fn finished_ns(&self, seq: u64, start: u64) -> Option<u64> {
        self.slow_poll_ns(seq, start)
    }

    /// How long the poll that started at `start` in outermost poll `seq` lasted, from its
    /// start to its end, if it is one of the thread's last [`RECENT_SLOW`] slow polls
    /// (outermost or nested). Each entry's sequence number and start are read on both sides
    /// of its length, so a length being rewritten for a later poll (also one nested in the
    /// same outermost poll) is never taken for this one's.
    pub(crate) fn slow_poll_ns(&self, seq: u64, start: u64) -> Option<u64> {
        self.recent_slow.iter().find_map(|end| {
            let names =
                |end: &SlowEnd| end.seq.load(Acquire) == seq && end.start.load(Acquire) == start;
            if !names(end) {
                return None;
            }
            let ns = end.ns.load(Acquire);
            names(end).then_some(ns)
        })
    }

    /// Records that the poll that started at `start` in outermost poll `seq` was slow and
    /// held the thread `ns` from its start to its end. Owner thread only.
    #[inline]
    pub(super) fn slow_poll_ended(&self, seq: u64, start: u64, ns: u64) {
        let next = self.recent_slow_next.load(Relaxed);
        self.recent_slow_next.store(next.wrapping_add(1), Relaxed);
        let end = &self.recent_slow[next % RECENT_SLOW];
        end.seq.store(0, Release);
        end.start.store(start, Release);
        end.ns.store(ns, Release);
        end.seq.store(seq, Release);
    }

    /// The innermost poll running on this thread now (the one a stall blames), if any: the
    /// poll whose own time, without the polls nested inside it, holds the thread.
    pub(crate) fn innermost(&self) -> Option<InnerPoll> {
        let seq = self.poll_seq.load(Acquire);
        let depth = self.depth.load(Acquire);
        if depth == 0 || depth > MAX_DEPTH {
            return None;
        }
        let frame = &self.frames[depth - 1];
        let poll = InnerPoll {
            seq,
            depth,
            start: frame.start.load(Relaxed),
            nested_ns: frame.nested_ns.load(Relaxed),
            worker: super::is_worker(frame.span.load(Relaxed)),
            task: TaskInfo {
                task_id: frame.task_id.load(Relaxed),
                site: SiteId::from_index(frame.site.load(Relaxed)),
            },
        };
        // Read again: a poll that started or ended meanwhile is looked at next time.
        let settled = self.depth.load(Acquire) == depth
            && self.poll_seq.load(Acquire) == seq
            && self.poll_start.load(Acquire) != 0;
        settled.then_some(poll)
    }

    /// Whether `poll` (from [`innermost`](Self::innermost)) is still being polled, innermost
    /// or with polls nested inside it.
    pub(crate) fn still_polling(&self, poll: &InnerPoll) -> bool {
        self.poll_seq.load(Acquire) == poll.seq
            && self.depth.load(Acquire) >= poll.depth
            && self.frames[poll.depth - 1].start.load(Relaxed) == poll.start
    }

    /// Takes the finished slow polls queued by this thread (see [`SlowRing::drain`]).
    pub(crate) fn drain_slow(&self, settled: impl Fn(u64) -> bool, each: impl FnMut(SlowRecord)) {
        self.slow.drain(settled, each);
    }

    /// Slow polls not queued for the reporter because the thread's queue was full.
    pub(crate) fn slow_polls_lost(&self) -> u64 {
        self.slow.dropped()
    }

    /// Polls nested deeper than [`MAX_DEPTH`], not timed.
    pub(crate) fn polls_nested_too_deep(&self) -> u64 {
        self.nested_too_deep.load(Relaxed)
    }

    /// Poll times clamped to the histogram's upper bound.
    pub(crate) fn values_clamped(&self) -> u64 {
        self.clamped.load(Relaxed)
    }
}

/// The innermost poll running on a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InnerPoll {
    /// The sequence number of the outermost poll it runs in.
    pub(crate) seq: u64,
    /// Its nesting depth, 1 for an outermost poll.
    pub(crate) depth: usize,
    /// Its raw start: with `seq`, it names this poll among the thread's.
    pub(crate) start: u64,
    /// The time of the polls nested in it that have ended.
    pub(crate) nested_ns: u64,
    /// Whether it is a worker's busy period (a worker-level poll, of no task): judged by the
    /// call its thread sleeps in, not by its length.
    pub(crate) worker: bool,
    pub(crate) task: TaskInfo,
}

impl InnerPoll {
    /// How long it has held the thread by itself so far: since its start, without the polls
    /// nested in it.
    pub(crate) fn own_ns(&self, clock: &super::clock::Clock) -> u64 {
        clock.since_ns(self.start).saturating_sub(self.nested_ns)
    }
}

/// Keeps a thread's slot for one layer, and marks it dead when the thread exits.
struct Registration {
    layer: NonZeroU64,
    slot: Arc<ThreadSlot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The pointer to this slot goes first, while the slot is still kept.
        let _ = FIRST.try_with(|first| {
            if first.get().1 == Arc::as_ptr(&self.slot) {
                first.set((0, std::ptr::null()));
            }
        });
        self.slot.poll_start.store(0, Release);
        self.slot.alive.store(false, Release);
    }
}

thread_local! {
    /// This thread's slots, one per pollwatch layer that has seen it poll (usually one).
    static SLOTS: RefCell<Vec<Registration>> = const { RefCell::new(Vec::new()) };

    /// The layer id and slot of this thread's first registration in [`SLOTS`], while that
    /// registration keeps the slot (0 and null before and after). A thread-local with nothing to
    /// drop: reading it is one load with no state to check, where [`SLOTS`] (which drops
    /// its registrations when the thread exits) checks whether it is still alive and counts
    /// a borrow.
    static FIRST: Cell<(u64, *const ThreadSlot)> = const { Cell::new((0, std::ptr::null())) };
}

/// Runs `f` with this thread's slot for the layer `layer`, if the thread has one. Never
/// allocates; does nothing during thread teardown.
#[inline(always)]
pub(super) fn with_slot<R>(layer: NonZeroU64, f: impl FnOnce(&ThreadSlot) -> R) -> Option<R> {
    let scope = Scope::default();
    match first(layer, &scope) {
        Some(slot) => Some(f(slot)),
        None => with_later(layer, None, f),
    }
}

/// Like [`with_slot`], creating the slot with `create` (and registering it) on the thread's
/// first poll.
#[inline(always)]
pub(super) fn with_slot_or_create<R>(
    layer: NonZeroU64,
    create: impl Fn() -> Arc<ThreadSlot>,
    f: impl FnOnce(&ThreadSlot) -> R,
) -> Option<R> {
    let scope = Scope::default();
    match first(layer, &scope) {
        Some(slot) => Some(f(slot)),
        None => with_later(layer, Some(&create), f),
    }
}

/// What a slot reference from [`first`] borrows: a local of the poll-path call that reads it,
/// which cannot leave its thread (neither `Send` nor `Sync`).
#[derive(Default)]
pub(super) struct Scope(std::marker::PhantomData<*const ()>);

/// This thread's slot for `layer` when `layer` is the first the thread polled for (the common
/// case: one pollwatch in the process), borrowed for as long as `scope`: one thread-local
/// read, with no state to check and no reference count to change. `None` otherwise (see
/// [`with_slot`]).
#[inline(always)]
pub(super) fn first(layer: NonZeroU64, _scope: &Scope) -> Option<&ThreadSlot> {
    let (first_layer, first) = FIRST.try_with(Cell::get).ok()?;
    if first_layer != layer.get() {
        return None;
    }
    // SAFETY: `FIRST` holds a layer id (never 0) exactly when it holds a pointer, so `first`
    // is not null here. It is non-null only while the `Registration` it was taken from is in this
    // thread's `SLOTS`, holding an `Arc` of the slot: set when the registration is pushed, and
    // cleared by its `drop` (when the thread's thread-locals are destroyed) before that `Arc`
    // is released. The reference lives no longer than `scope`, a local of a poll-path call on
    // this thread, and nothing on the poll path drops a registration: the slot outlives it.
    #[allow(unsafe_code)]
    let slot = unsafe { &*first };
    Some(slot)
}

/// [`with_slot`] for a layer other than the thread's first, or a thread with no slot yet:
/// out of line, so that the poll path's inline part keeps no `Arc` to release.
#[cold]
#[inline(never)]
fn with_later<R>(
    layer: NonZeroU64,
    create: Option<&dyn Fn() -> Arc<ThreadSlot>>,
    f: impl FnOnce(&ThreadSlot) -> R,
) -> Option<R> {
    let slot = later_slot(layer, create)?;
    Some(f(&slot))
}

/// This thread's slot for a layer other than its first, or for a thread with no slot yet:
/// registered with `create` when there is one to call and the thread has none for `layer`.
fn later_slot(
    layer: NonZeroU64,
    create: Option<&dyn Fn() -> Arc<ThreadSlot>>,
) -> Option<Arc<ThreadSlot>> {
    SLOTS
        .try_with(|slots| {
            let mut slots = slots.try_borrow_mut().ok()?;
            if let Some(found) = slots.iter().find(|r| r.layer == layer) {
                return Some(found.slot.clone());
            }
            let slot = create?();
            if slots.is_empty() {
                let _ = FIRST.try_with(|first| first.set((layer.get(), Arc::as_ptr(&slot))));
            }
            slots.push(Registration {
                layer,
                slot: slot.clone(),
            });
            Some(slot)
        })
        .ok()
        .flatten()
}

//! The poll path: what happens when a task poll starts and ends, whichever poll source saw it.
//!
//! **The poll-source seam.** A *poll source* turns what it observes into four calls on
//! [`PollPath`], and nothing else:
//!
//! | call | when |
//! |---|---|
//! | [`PollPath::enter`]`(poll, task)` | a poll (or drop) of `task` starts on this thread |
//! | [`PollPath::exit`]`(poll)` | the poll `poll` ends on this thread (other ids are ignored) |
//! | [`PollPath::close`]`(poll, task)` | the task is gone; relabels a last enter that was its drop |
//! | [`PollPath::enter_inner`]`(span)` | a non-task span was entered inside a poll (optional) |
//!
//! `poll` is any nonzero id the source chooses that stays the same from `enter` to `exit`
//! (the tracing layer uses the span id), and [`TaskInfo`] carries the task id and its
//! interned [`SiteId`](crate::sites::SiteId) (interned once per task, at spawn, never here).
//! Everything behind the seam (the slots, the watchdog, the reporter, reports, console and
//! metrics) sees only what these calls record, so a new source (tokio's runtime hooks,
//! wrapped futures) plugs in beside [`crate::source::layer`] without touching them.
//!
//! Budget: a clock read each way (the TSC, inline), one thread-local read, a few relaxed
//! stores into the thread's own slot and recorder; the common enter and exit are inline. No
//! lock, no allocation after the thread's first poll of a site in a given power of two of
//! poll time and its 32nd (the site's hot counters, see [`recorder`]: at most 39 per site and
//! thread, ever), no formatting, no I/O, no channel send.
//! Everything else happens on pollwatch's own threads, which read the slots through
//! [`ThreadSlot`]'s methods.
//!
//! Nesting: the thread keeps a stack of entered task polls. A poll's recorded time is its own
//! time, without the polls nested inside it, so no time is counted twice; the thread is held
//! from the outermost enter, which is what the slot's running poll shows.

pub(crate) mod clock;
pub(crate) mod queues;
pub(crate) mod recorder;
pub(crate) mod retired;
#[cfg(tokio_unstable)]
pub(crate) mod site_cache;
pub(crate) mod slow_ring;
pub(crate) mod thread;

use std::num::NonZeroU64;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;

use parking_lot::Mutex;

use self::clock::{Clock, Limit};
use self::recorder::{Recorded, SiteTotals, MAX_VALUE_NS};
use self::retired::Retired;
use self::thread::{ThreadSlot, MAX_DEPTH};
use crate::sites::SiteId;

/// The bit the runtime-hooks source sets in its poll ids (the task id): no span id has it, so
/// the tracing layer's ids and the hooks' never meet.
pub(crate) const HOOK_POLL: u64 = 1 << 63;

/// The bit the watched-futures source sets in its poll ids (a number per watched future, below
/// this bit): no span id or hook id has it, so their ids never meet.
pub(crate) const WATCH_POLL: u64 = 1 << 62;

/// The bit the worker-hooks source sets in its poll ids (a number per runtime, below this
/// bit): a worker's busy period, from tokio's `on_thread_unpark` to `on_thread_park`, is a
/// *worker-level poll* of no task. It is never folded into, nor folds, another poll: the
/// finer sources' polls nest in it. It is not judged by its length (a busy worker under load
/// runs for long, rightly) but by the call its thread sleeps in (`watchdog/worker.rs`).
pub(crate) const WORKER_POLL: u64 = 1 << 61;

/// Whether poll id `span` is a worker-level poll (see [`WORKER_POLL`]).
#[inline]
pub(crate) fn is_worker(span: u64) -> bool {
    span & (HOOK_POLL | WATCH_POLL | WORKER_POLL) == WORKER_POLL
}

/// Whether poll id `span` is the tracing layer's (no source bit): only its polls can turn
/// out to be drops ([`PollPath::close`]), so only its exits are kept as the thread's last.
#[inline]
fn is_layer_poll(span: u64) -> bool {
    span & (HOOK_POLL | WATCH_POLL | WORKER_POLL) == 0
}

/// The task a poll belongs to, as a poll source hands it to the poll path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskInfo {
    /// tokio's task id.
    pub(crate) task_id: u64,
    /// The interned spawn site.
    pub(crate) site: SiteId,
}

pub(crate) use pollwatch_judge::verdict::PollKind;

/// One poll of one thread: the thread's slot (its index in the slot list), the sequence
/// number of the outermost poll it runs in, and its own raw start (polls nested in one
/// outermost poll differ by it). Stalls, their end and their slow-poll record are matched by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PollKey {
    pub(crate) slot: usize,
    pub(crate) seq: u64,
    pub(crate) start: u64,
}

/// How much a site recorded, cheaply: enough to tell whether it changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Activity {
    pub(crate) busy_ns: u64,
    pub(crate) drops: u64,
}

/// The per-layer state the poll path needs: what every poll reads, on cache lines nothing
/// writes after the layer is built (the slot table's lock, taken by pollwatch's own threads,
/// is on lines of its own).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct PollPath {
    /// Distinguishes this layer's thread-local slots from another layer's in the same process.
    layer_id: NonZeroU64,
    pub(crate) clock: Clock,
    pub(crate) threshold_ns: u64,
    /// The longest poll the inline exit records: the threshold, or the histogram's bound if
    /// that is lower (longer polls are slow, or clamped).
    fast_limit: Limit,
    /// Recorder array length: the site bound plus the overflow site.
    site_slots: usize,
    slots: OwnLines<Mutex<SlotTable>>,
}

/// A value on cache lines of its own: what other threads write stays off the poll path's
/// lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct OwnLines<T>(T);

impl<T> std::ops::Deref for OwnLines<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Every thread's slot by index ([`PollKey::slot`]), and what reclaimed slots recorded.
#[derive(Debug, Default)]
struct SlotTable {
    list: Vec<Arc<ThreadSlot>>,
    /// Indexes of reclaimed slots, for the next new threads.
    free: Vec<usize>,
    retired: Arc<Retired>,
}

/// A consistent view of the slots: every index's slot (a reclaimed one is an empty slot that
/// never polls) and what the reclaimed ones recorded, read under one lock so that nothing is
/// counted twice or missed.
#[derive(Clone, Debug)]
pub(crate) struct Slots {
    list: Vec<Arc<ThreadSlot>>,
    retired: Arc<Retired>,
}

impl std::ops::Deref for Slots {
    type Target = [Arc<ThreadSlot>];

    fn deref(&self) -> &Self::Target {
        &self.list
    }
}

impl Slots {
    /// What reclaimed slots recorded.
    pub(crate) fn retired(&self) -> &Retired {
        &self.retired
    }

    /// Threads that have polled: those with a slot, and those whose slot was reclaimed.
    pub(crate) fn threads(&self) -> u64 {
        self.list.iter().filter(|s| !s.is_reclaimed()).count() as u64 + self.retired.threads
    }
}

/// Distinguishes layers within one process (each has its own thread-local slots).
static NEXT_LAYER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl PollPath {
    /// A poll path with recorders for `site_slots` sites, timed by `clock`.
    pub(crate) fn new(clock: Clock, threshold_ns: u64, site_slots: usize) -> Self {
        Self {
            layer_id: NonZeroU64::new(NEXT_LAYER_ID.fetch_add(1, Relaxed))
                .unwrap_or(NonZeroU64::MIN),
            fast_limit: clock.limit(threshold_ns.min(MAX_VALUE_NS)),
            clock,
            threshold_ns,
            site_slots,
            slots: OwnLines::default(),
        }
    }

    /// This poll path's id: distinguishes its per-thread state from another's in one process.
    pub(crate) fn id(&self) -> u64 {
        self.layer_id.get()
    }

    /// The slots of every thread that has polled a task so far (a slot's index here is
    /// [`PollKey::slot`]), with what reclaimed slots recorded.
    pub(crate) fn slot_list(&self) -> Slots {
        let table = self.slots.lock();
        Slots {
            list: table.list.clone(),
            retired: table.retired.clone(),
        }
    }

    fn create_slot(&self) -> Arc<ThreadSlot> {
        let slot = Arc::new(ThreadSlot::new(self.site_slots));
        let mut table = self.slots.lock();
        match table.free.pop() {
            Some(index) => table.list[index] = slot.clone(),
            None => table.list.push(slot.clone()),
        }
        slot
    }

    /// Reclaims the slots of threads that exited once the reporter has taken their slow
    /// polls: folds what they recorded into the [`Retired`] sums and frees their indexes.
    /// Returns how many were reclaimed.
    pub(crate) fn reclaim_exited(&self) -> usize {
        let mut table = self.slots.lock();
        let exited: Vec<usize> = (0..table.list.len())
            .filter(|&i| table.list[i].can_be_reclaimed())
            .collect();
        if exited.is_empty() {
            return 0;
        }
        let mut retired = Retired::clone(&table.retired);
        let reclaimed = ThreadSlot::reclaimed();
        for &index in &exited {
            retired.absorb(&table.list[index], self.site_slots);
            table.list[index] = reclaimed.clone();
            table.free.push(index);
        }
        table.retired = Arc::new(retired);
        exited.len()
    }

    /// One site's measurements summed over every thread in `slots`: the one merge of the
    /// per-thread recorders, which reports, console resources and metrics all use.
    pub(crate) fn merge_site(slots: &Slots, site: SiteId) -> SiteTotals {
        let mut merged = SiteTotals::default();
        for recorder in slots.iter().filter_map(|s| s.existing_recorder(site)) {
            recorder.merge_into(&mut merged);
        }
        slots.retired.merge_into(site, &mut merged);
        merged
    }

    /// How much `site` recorded over every thread in `slots`, without merging buckets.
    pub(crate) fn site_activity(slots: &Slots, site: SiteId) -> Activity {
        let (busy_ns, drops) = slots.retired.activity(site);
        let mut activity = Activity { busy_ns, drops };
        for recorder in slots.iter().filter_map(|s| s.existing_recorder(site)) {
            activity.busy_ns += recorder.busy_ns();
            activity.drops += recorder.drops();
        }
        activity
    }

    /// A task span was entered: a poll (or a drop) starts.
    ///
    /// Two sources seeing one poll count it once, at the finer source's site: when the
    /// innermost poll on this thread is one of the same task that another source entered
    /// (see [`folds_into`]), the second enter starts nothing, gives that poll its site if it is
    /// at least as fine as the one that named it ([`fineness`]), and its exit is then ignored.
    #[inline]
    pub(crate) fn enter(&self, span: u64, task: TaskInfo) {
        let now = self.clock.now();
        let scope = thread::Scope::default();
        match thread::first(self.layer_id, &scope) {
            Some(slot) => Self::enter_on(slot, span, task, fineness(span), now),
            None => self.enter_later(span, task, now),
        }
    }

    /// [`enter`](Self::enter) on a thread whose first pollwatch is another, or that has no
    /// slot yet.
    #[cold]
    #[inline(never)]
    fn enter_later(&self, span: u64, task: TaskInfo, now: u64) {
        thread::with_slot_or_create(
            self.layer_id,
            || self.create_slot(),
            |slot| Self::enter_on(slot, span, task, fineness(span), now),
        );
    }

    /// Like [`enter`](Self::enter), for the runtime hooks' poll (id `HOOK_POLL | task_id`)
    /// of task `task_id` spawned at `location`: the site from the thread's slot
    /// ([`site_cache`]), interned with `intern` on a miss. What the runtime hooks call on
    /// every poll: one thread-local access. `TSC` is what the clock's
    /// [`reads_tsc`](Clock::reads_tsc) says, chosen when the hooks are set.
    #[cfg(tokio_unstable)]
    #[inline(always)]
    pub(crate) fn enter_spawned<const TSC: bool>(
        &self,
        task_id: u64,
        location: &'static std::panic::Location<'static>,
        intern: impl FnOnce(&'static std::panic::Location<'static>) -> SiteId,
    ) {
        let now = self.clock.now_in::<TSC>();
        let scope = thread::Scope::default();
        let site = thread::first(self.layer_id, &scope)
            .and_then(|slot| Some((slot, slot.sites.get(location)?)));
        let Some((slot, site)) = site else {
            // Out of line, and a tail call: the common path keeps no registers to restore.
            return self.enter_spawned_else(task_id, location, intern, now);
        };
        let task = TaskInfo { task_id, site };
        Self::enter_on(slot, HOOK_POLL | task_id, task, fineness(HOOK_POLL), now);
    }

    /// [`enter_spawned`](Self::enter_spawned) on a thread whose first pollwatch is another,
    /// that has no slot yet, or whose slot has not cached `location`'s site.
    #[cfg(tokio_unstable)]
    #[cold]
    #[inline(never)]
    fn enter_spawned_else(
        &self,
        task_id: u64,
        location: &'static std::panic::Location<'static>,
        intern: impl FnOnce(&'static std::panic::Location<'static>) -> SiteId,
        now: u64,
    ) {
        thread::with_slot_or_create(
            self.layer_id,
            || self.create_slot(),
            |slot| {
                let site = slot.sites.site(location, || intern(location));
                let task = TaskInfo { task_id, site };
                Self::enter_on(slot, HOOK_POLL | task_id, task, fineness(HOOK_POLL), now);
            },
        );
    }

    /// [`enter`](Self::enter) on this thread's `slot`, at raw time `now`: inline when it is
    /// the thread's outermost poll (a worker polling a task), else [`enter_nested`].
    ///
    /// [`enter_nested`]: Self::enter_nested
    #[inline(always)]
    fn enter_on(slot: &ThreadSlot, span: u64, task: TaskInfo, named_by: u8, now: u64) {
        let depth = slot.depth.load(Relaxed);
        if depth != 0 {
            Self::enter_nested(slot, span, task, now, depth);
            return;
        }
        slot.frames[0].open(span, task, named_by, now);
        slot.inner_depth.store(0, Relaxed);
        slot.last_exit_span.store(0, Relaxed);
        slot.depth.store(1, Release);
        slot.poll_seq
            .store(slot.poll_seq.load(Relaxed).wrapping_add(1), Relaxed);
        slot.poll_start.store(now, Release);
    }

    /// An enter on a thread already polling (`depth` deep): a second source's enter of the
    /// same poll folds into it, anything else nests.
    #[inline(never)]
    fn enter_nested(slot: &ThreadSlot, span: u64, task: TaskInfo, now: u64, depth: usize) {
        if depth <= MAX_DEPTH {
            let top = &slot.frames[depth - 1];
            let (top_span, top_task) = (top.span.load(Relaxed), top.task_id.load(Relaxed));
            if folds_into(span, task.task_id, top_span, top_task) {
                if fineness(span) >= top.named_by.load(Relaxed) {
                    top.site.store(task.site.index(), Relaxed);
                    top.named_by.store(fineness(span), Relaxed);
                }
                return;
            }
        }
        slot.last_exit_span.store(0, Relaxed);
        if depth >= MAX_DEPTH {
            slot.nested_too_deep
                .store(slot.nested_too_deep.load(Relaxed) + 1, Relaxed);
            return;
        }
        let frame = &slot.frames[depth];
        frame.open(span, task, fineness(span), now);
        frame
            .inner_base
            .store(slot.inner_depth.load(Relaxed), Relaxed);
        slot.depth.store(depth + 1, Release);
    }

    /// A span was exited. Spans other than the thread's innermost task span are ignored,
    /// with no registry lookup.
    #[inline(always)]
    pub(crate) fn exit(&self, span: u64) {
        if self.clock.reads_tsc() {
            self.exit_in::<true>(span);
        } else {
            self.exit_other_clock(span);
        }
    }

    /// [`exit`](Self::exit) where the clock is not the time-stamp counter: out of line, so
    /// that a caller inlining `exit` (a watched future's poll) carries one exit, not two.
    #[inline(never)]
    fn exit_other_clock(&self, span: u64) {
        self.exit_in::<false>(span);
    }

    /// [`exit`](Self::exit) with `TSC` what the clock's [`reads_tsc`](Clock::reads_tsc)
    /// says: what the runtime hooks call, chosen when they are set.
    #[inline(always)]
    pub(crate) fn exit_in<const TSC: bool>(&self, span: u64) {
        let now = self.clock.now_in::<TSC>();
        let scope = thread::Scope::default();
        let Some(slot) = thread::first(self.layer_id, &scope) else {
            return self.exit_later(span, now);
        };
        if !self.exit_outermost::<TSC>(slot, span, now) {
            self.exit_on(slot, span, now);
        }
    }

    /// [`exit`](Self::exit) on a thread whose first pollwatch is another, or that has no
    /// slot.
    #[cold]
    #[inline(never)]
    fn exit_later(&self, span: u64, now: u64) {
        thread::with_slot(self.layer_id, |slot| self.exit_on(slot, span, now));
    }

    /// The common exit, inline: `span` is the thread's outermost poll, it held the thread no
    /// longer than the threshold and less than 1 ms, and this thread has polled its site often
    /// (its recorder has its hot counters). Returns false, having changed nothing, otherwise.
    #[inline(always)]
    fn exit_outermost<const TSC: bool>(&self, slot: &ThreadSlot, span: u64, now: u64) -> bool {
        let frame = &slot.frames[0];
        if slot.depth.load(Relaxed) != 1 || frame.span.load(Relaxed) != span {
            return false;
        }
        let start = frame.start.load(Relaxed);
        let Some(total_ns) = self.clock.within_in::<TSC>(start, now, self.fast_limit) else {
            return false;
        };
        // A branch, not a conditional move, on what was known before the clock read: the
        // bucket's address does not wait for it (nested polls are rare here).
        let nested_ns = frame.nested_ns.load(Relaxed);
        let own_ns = if nested_ns == 0 {
            total_ns
        } else {
            total_ns.saturating_sub(nested_ns)
        };
        let site = frame.site.load(Relaxed);
        let Some(recorded) = slot
            .existing_recorder(SiteId::from_index(site))
            .and_then(|recorder| recorder.record_fast(own_ns))
        else {
            return false;
        };
        // The inner-span depth is reset by the next enter (nothing reads it between polls).
        slot.depth.store(0, Release);
        slot.poll_start.store(0, Release);
        if is_layer_poll(span) {
            last_exit(
                slot,
                span,
                frame.task_id.load(Relaxed),
                site,
                recorded,
                false,
                0,
            );
        }
        true
    }

    /// Any other exit: nested polls, slow polls, polls of 1 ms or more, a thread's first
    /// polls of a site.
    #[inline(never)]
    fn exit_on(&self, slot: &ThreadSlot, span: u64, now: u64) {
        let depth = slot.depth.load(Relaxed);
        if depth == 0 || depth > MAX_DEPTH {
            return;
        }
        let frame = &slot.frames[depth - 1];
        if frame.span.load(Relaxed) != span {
            exit_inner(slot, span);
            return;
        }
        let start = frame.start.load(Relaxed);
        let total_ns = self.clock.delta_ns(start, now);
        let mut own_ns = total_ns.saturating_sub(frame.nested_ns.load(Relaxed));
        // A worker's busy period is recorded (its own time, at its site) but never slow.
        let by_length = !is_worker(span);
        // Any poll that held the thread past the threshold, nested ones too (a watched
        // future in a worker's busy period): the watchdog may find it ended before it
        // looks at the stack it captured, and keeps that stack if it was stored first.
        // Recorded before the poll is seen to end, so a watchdog that sees it ended finds
        // its record.
        if by_length && total_ns > self.threshold_ns {
            slot.slow_poll_ended(slot.poll_seq.load(Relaxed), start, total_ns);
        }
        slot.inner_depth
            .store(frame.inner_base.load(Relaxed), Relaxed);
        slot.depth.store(depth - 1, Release);
        if depth == 1 {
            slot.poll_start.store(0, Release);
        } else {
            let parent = &slot.frames[depth - 2];
            parent
                .nested_ns
                .store(parent.nested_ns.load(Relaxed) + total_ns, Relaxed);
        }
        if own_ns > MAX_VALUE_NS {
            own_ns = MAX_VALUE_NS;
            slot.clamped.store(slot.clamped.load(Relaxed) + 1, Relaxed);
        }
        let site = frame.site.load(Relaxed);
        let task_id = frame.task_id.load(Relaxed);
        let Some(recorder) = slot.recorder(site) else {
            return;
        };
        let slow = by_length && own_ns > self.threshold_ns;
        let recorded = recorder.record(own_ns, slow);
        let slow_position = if slow {
            let site = SiteId::from_index(site);
            let span = (start, now);
            slot.slow
                .push(task_id, slot.poll_seq.load(Relaxed), site, own_ns, span)
                .map_or(0, |p| p + 1)
        } else {
            0
        };
        if !is_layer_poll(span) {
            return;
        }
        last_exit(slot, span, task_id, site, recorded, slow, slow_position);
    }

    /// A span that is not a task span was entered: inside a poll, remember it, so a stall
    /// can name the innermost span (an `#[instrument]`ed handler).
    #[inline]
    pub(crate) fn enter_inner(&self, span: u64) {
        thread::with_slot(self.layer_id, |slot| {
            if slot.depth.load(Relaxed) == 0 {
                return;
            }
            let inner = slot.inner_depth.load(Relaxed);
            if inner < thread::MAX_INNER_SPANS {
                slot.inner[inner].store(span, Relaxed);
            }
            slot.inner_depth.store(inner + 1, Relaxed);
        });
    }

    /// A task span closed. If the last thing this thread did was exit that span, that enter
    /// was `Instrumented` dropping the future, not a poll: relabel it as a drop.
    pub(crate) fn close(&self, span: u64, task: TaskInfo) {
        thread::with_slot(self.layer_id, |slot| {
            let last = &slot.last_exit;
            let last_span = &slot.last_exit_span;
            if last_span.load(Relaxed) != span || last.task_id.load(Relaxed) != task.task_id {
                return;
            }
            last_span.store(0, Relaxed);
            let slow = last.slow.load(Relaxed);
            if let Some(recorder) = slot.recorder_if_polled(last.site.load(Relaxed)) {
                recorder.relabel_as_drop(last.recorded(), slow);
            }
            let position = last.slow_position.load(Relaxed);
            if position > 0 {
                slot.slow.mark_drop(position - 1);
            }
        });
    }
}

/// Whether an enter of poll `span` of task `task_id` is the innermost poll already on the
/// thread (poll `top` of task `top_task`), seen by a second source: then it names that poll
/// rather than starting one nested in it.
///
/// - The layer's enter (no tag bit) folds into the hooks' poll (`HOOK_POLL`) of its task.
/// - A watched future's enter (`WATCH_POLL`) folds into any poll of its task (hooks, layer, or
///   a watched future it is polled inside: `pollwatch::spawn(async { f.watched().await })`
///   is one poll at `f`'s site); a watched future outside any task (task 0: a `block_on` root
///   future) folds into the layer's poll of the `block_on` future it runs in.
///
/// A worker-level poll ([`WORKER_POLL`]) neither folds nor is folded into: it is a busy
/// period of the thread, of no task, and the polls inside it nest in it.
#[inline]
fn folds_into(span: u64, task_id: u64, top: u64, top_task: u64) -> bool {
    if is_worker(span) || is_worker(top) {
        false
    } else if span & WATCH_POLL != 0 {
        top_task == task_id || (task_id == 0 && top & WATCH_POLL == 0)
    } else {
        span & HOOK_POLL == 0 && top & HOOK_POLL != 0 && top_task == task_id
    }
}

/// How finely the source of poll id `span` names a poll: runtime hooks (the spawn location),
/// then the tracing layer (with the task's name), then a watched future (where it was
/// wrapped). A folded enter renames the poll only when it is at least as fine as the source
/// that named it: the layer's enter to drop a task's future does not take its last poll back
/// from the watched future that named it.
#[inline]
fn fineness(span: u64) -> u8 {
    if span & WATCH_POLL != 0 {
        2
    } else if span & HOOK_POLL != 0 {
        0
    } else {
        1
    }
}

/// Keeps the layer's poll `span` that just ended as the thread's last (see
/// [`PollPath::close`]).
#[inline(always)]
fn last_exit(
    slot: &ThreadSlot,
    span: u64,
    task_id: u64,
    site: u32,
    recorded: Recorded,
    slow: bool,
    slow_position: u64,
) {
    let last = &slot.last_exit;
    last.task_id.store(task_id, Relaxed);
    last.site.store(site, Relaxed);
    last.bucket.store(recorded.bucket, Relaxed);
    last.ns.store(recorded.ns, Relaxed);
    last.prev_max_ns.store(recorded.prev_max_ns, Relaxed);
    last.slow.store(slow, Relaxed);
    last.slow_position.store(slow_position, Relaxed);
    slot.last_exit_span.store(span, Relaxed);
}

/// Pops `span` from the thread's inner-span stack if it is the innermost.
#[inline]
fn exit_inner(slot: &ThreadSlot, span: u64) {
    let inner = slot.inner_depth.load(Relaxed);
    if inner == 0 {
        return;
    }
    let base = slot.frames[slot
        .depth
        .load(Relaxed)
        .saturating_sub(1)
        .min(MAX_DEPTH - 1)]
    .inner_base
    .load(Relaxed);
    if inner <= base {
        return;
    }
    if inner > thread::MAX_INNER_SPANS || slot.inner[inner - 1].load(Relaxed) == span {
        slot.inner_depth.store(inner - 1, Relaxed);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const THRESHOLD_NS: u64 = 10_000_000;

    /// A poll path on a mock clock (advance it with the returned `Mock`).
    pub(crate) fn path() -> (PollPath, Arc<quanta::Mock>) {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(1_000u64);
        let path = PollPath::new(Clock::from_quanta(clock), THRESHOLD_NS, 4);
        (path, mock)
    }

    fn totals(path: &PollPath, site: u32) -> SiteTotals {
        PollPath::merge_site(&path.slot_list(), SiteId::from_index(site))
    }

    pub(crate) fn task(task_id: u64, site: u32) -> TaskInfo {
        TaskInfo {
            task_id,
            site: SiteId::from_index(site),
        }
    }

    #[test]
    fn a_poll_exactly_at_the_threshold_is_not_slow_and_one_nanosecond_more_is() {
        let (path, mock) = path();
        path.enter(1, task(1, 0));
        mock.increment(THRESHOLD_NS);
        path.exit(1);
        assert_eq!(totals(&path, 0).slow_polls, 0);
        path.enter(1, task(1, 0));
        mock.increment(THRESHOLD_NS + 1);
        path.exit(1);
        let t = totals(&path, 0);
        assert_eq!((t.polls(), t.slow_polls), (2, 1));
        assert_eq!(t.max_ns, THRESHOLD_NS + 1);
    }

    #[test]
    fn nested_polls_count_their_time_once() {
        let (path, mock) = path();
        path.enter(10, task(1, 0)); // block_on
        mock.increment(1_000u64);
        path.enter(11, task(2, 1)); // a local task inside it
        mock.increment(20_000_000u64);
        path.exit(11);
        mock.increment(2_000u64);
        path.exit(10);
        let outer = totals(&path, 0);
        let inner = totals(&path, 1);
        assert_eq!(outer.busy_ns, 3_000);
        assert_eq!(outer.slow_polls, 0, "the outer poll is not blamed");
        assert_eq!(inner.busy_ns, 20_000_000);
        assert_eq!(inner.slow_polls, 1, "the innermost task is blamed");
    }

    #[test]
    fn an_outer_poll_ended_inline_counts_its_own_time_without_the_nested_one() {
        let (path, mock) = path();
        // The thread's first polls of the site go through the general path, and give the
        // site its hot counters: the outer polls after them end inline.
        for _ in 0..recorder::HOT_AFTER {
            path.enter(10, task(1, 0));
            mock.increment(7_000u64);
            path.exit(10);
        }
        for _ in 0..2 {
            path.enter(10, task(1, 0));
            mock.increment(1_000u64);
            path.enter(11, task(2, 1));
            mock.increment(5_000u64);
            path.exit(11);
            mock.increment(1_000u64);
            path.exit(10);
        }
        let (outer, inner) = (totals(&path, 0), totals(&path, 1));
        let first = recorder::HOT_AFTER;
        assert_eq!(
            (outer.polls(), outer.busy_ns, outer.max_ns),
            (first + 2, first * 7_000 + 4_000, 7_000)
        );
        assert_eq!(outer.buckets[recorder::bucket_index(2_000)], 2);
        assert_eq!((inner.polls(), inner.busy_ns), (2, 10_000));
    }

    #[test]
    fn the_innermost_span_inside_a_poll_is_tracked() {
        let (path, _mock) = path();
        path.enter_inner(50); // outside any poll: ignored
        path.enter(1, task(1, 0));
        path.enter_inner(60);
        path.enter_inner(61);
        let slot = path.slot_list()[0].clone();
        assert_eq!(slot.inner_span(), Some(61));
        path.exit(61);
        assert_eq!(slot.inner_span(), Some(60));
        path.enter(2, task(2, 0));
        assert_eq!(
            slot.inner_span(),
            None,
            "a nested task starts with no inner span"
        );
        path.exit(2);
        assert_eq!(slot.inner_span(), Some(60));
        path.exit(1);
        assert_eq!(slot.inner_span(), None);
    }

    #[test]
    fn exits_of_other_spans_are_ignored() {
        let (path, mock) = path();
        path.enter(1, task(1, 0));
        path.exit(99);
        mock.increment(5_000u64);
        path.exit(1);
        assert_eq!(totals(&path, 0).polls(), 1);
        assert_eq!(totals(&path, 0).busy_ns, 5_000);
    }

    #[test]
    fn an_enter_followed_by_close_is_a_drop_not_a_poll() {
        let (path, mock) = path();
        path.enter(1, task(7, 0));
        mock.increment(100u64);
        path.exit(1);
        path.enter(1, task(7, 0));
        mock.increment(30_000_000u64);
        path.exit(1);
        path.close(1, task(7, 0));
        let t = totals(&path, 0);
        assert_eq!((t.polls(), t.busy_ns, t.max_ns), (1, 100, 100));
        assert_eq!((t.drops, t.drop_ns, t.slow_polls), (1, 30_000_000, 0));
        let slot = path.slot_list()[0].clone();
        let mut seen = Vec::new();
        slot.drain_slow(|_| true, |r| seen.push(r));
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].kind,
            PollKind::Drop,
            "the slow record is labelled a drop"
        );
    }

    #[test]
    fn a_close_after_another_enter_does_not_relabel() {
        let (path, mock) = path();
        path.enter(1, task(7, 0));
        mock.increment(100u64);
        path.exit(1);
        path.enter(2, task(8, 0));
        path.exit(2);
        path.close(1, task(7, 0));
        assert_eq!(totals(&path, 0).polls(), 2);
        assert_eq!(totals(&path, 0).drops, 0);
    }

    #[test]
    fn a_watched_future_inside_a_poll_of_its_task_names_that_poll_and_counts_once() {
        let (path, mock) = path();
        for outer in [HOOK_POLL | 7, 3] {
            // A hook's poll or a layer's span of task 7; a watched future in it, twice.
            path.enter(outer, task(7, 0));
            path.enter(WATCH_POLL | 1, task(7, 1));
            mock.increment(1_000u64);
            path.exit(WATCH_POLL | 1);
            path.enter(WATCH_POLL | 2, task(7, 2));
            mock.increment(2_000u64);
            path.exit(WATCH_POLL | 2);
            path.exit(outer);
        }
        assert_eq!(
            totals(&path, 0).polls(),
            0,
            "the task's own site lost both polls"
        );
        assert_eq!(totals(&path, 1).polls(), 0);
        let named = totals(&path, 2);
        assert_eq!(
            (named.polls(), named.busy_ns),
            (2, 6_000),
            "the last one named each poll"
        );
    }

    #[test]
    fn watched_futures_of_one_task_are_one_poll_and_of_another_nest() {
        let (path, mock) = path();
        // `pollwatch::spawn(async { inner.watched().await })` in task 7.
        path.enter(WATCH_POLL | 1, task(7, 0));
        path.enter(WATCH_POLL | 2, task(7, 1));
        mock.increment(1_000u64);
        path.exit(WATCH_POLL | 2);
        path.exit(WATCH_POLL | 1);
        assert_eq!((totals(&path, 0).polls(), totals(&path, 1).polls()), (0, 1));
        // A watched `block_on` root future (no task) and a local task's watched future in it.
        path.enter(WATCH_POLL | 3, task(0, 2));
        mock.increment(1_000u64);
        path.enter(WATCH_POLL | 4, task(8, 3));
        mock.increment(5_000u64);
        path.exit(WATCH_POLL | 4);
        path.exit(WATCH_POLL | 3);
        assert_eq!(
            (totals(&path, 2).polls(), totals(&path, 2).busy_ns),
            (1, 1_000)
        );
        assert_eq!(
            (totals(&path, 3).polls(), totals(&path, 3).busy_ns),
            (1, 5_000)
        );
    }

    #[test]
    fn a_watched_future_outside_any_task_names_the_layer_s_block_on_poll() {
        let (path, mock) = path();
        path.enter(5, task(42, 0)); // the layer's `block_on` span
        path.enter(WATCH_POLL | 1, task(0, 1)); // `try_id()` is None there
        mock.increment(1_000u64);
        path.exit(WATCH_POLL | 1);
        path.exit(5);
        assert_eq!((totals(&path, 0).polls(), totals(&path, 1).polls()), (0, 1));
        assert_eq!(path.slot_list()[0].depth.load(Relaxed), 0);
    }

    #[test]
    fn a_worker_busy_period_holds_finer_polls_nested_and_is_never_slow() {
        let (path, mock) = path();
        let worker = WORKER_POLL | 1;
        // Each poll's (seq, start), as the watchdog names it.
        let mut busy_periods = Vec::new();
        let mut nested = Vec::new();
        for _ in 0..2 {
            // Unparked: a hook poll, a watched future alone (`pollwatch::spawn`), a layer span.
            path.enter(worker, task(0, 0));
            let named = |p: thread::InnerPoll| (p.seq, p.start);
            busy_periods.push(named(path.slot_list()[0].innermost().unwrap()));
            mock.increment(1_000u64);
            for (poll, site) in [(HOOK_POLL | 7, 1), (WATCH_POLL | 3, 2), (5, 3)] {
                path.enter(poll, task(7, site));
                nested.push(named(path.slot_list()[0].innermost().unwrap()));
                mock.increment(30 * 1_000_000u64);
                path.exit(poll);
            }
            mock.increment(50 * 1_000_000u64);
            path.exit(worker);
        }
        let busy = totals(&path, 0);
        assert_eq!(
            (busy.polls(), busy.busy_ns, busy.slow_polls),
            (2, 2 * (1_000 + 50_000_000), 0),
            "two busy periods, without the polls in them, never slow"
        );
        for site in 1..=3 {
            let polls = totals(&path, site);
            assert_eq!((polls.polls(), polls.slow_polls), (2, 2), "site {site}");
        }
        let slot = path.slot_list()[0].clone();
        let mut slow = Vec::new();
        slot.drain_slow(|_| true, |r| slow.push(r.site.index()));
        assert_eq!(
            slow,
            [1, 2, 3, 1, 2, 3],
            "only the finer polls are slow polls"
        );
        for (seq, start) in busy_periods {
            assert_eq!(
                slot.slow_poll_ns(seq, start),
                None,
                "a busy period is never slow"
            );
        }
        for (seq, start) in nested {
            assert_eq!(
                slot.slow_poll_ns(seq, start),
                Some(30_000_000),
                "a nested slow poll's end is on record"
            );
        }
    }

    #[test]
    fn a_worker_poll_neither_folds_nor_is_folded_into() {
        let (path, _mock) = path();
        // A watched future outside any task on a worker: nested, not folded.
        path.enter(WORKER_POLL | 1, task(0, 0));
        path.enter(WATCH_POLL | 1, task(0, 1));
        let slot = path.slot_list()[0].clone();
        let inner = slot.innermost().unwrap();
        assert_eq!(
            (inner.depth, inner.worker, inner.task.site.index()),
            (2, false, 1)
        );
        path.exit(WATCH_POLL | 1);
        let outer = slot.innermost().unwrap();
        assert_eq!((outer.depth, outer.worker), (1, true));
        path.exit(WORKER_POLL | 1);
        assert_eq!((totals(&path, 0).polls(), totals(&path, 1).polls()), (1, 1));
        assert!(!is_worker(HOOK_POLL | WORKER_POLL) && !is_worker(WATCH_POLL | WORKER_POLL));
    }

    #[test]
    fn nesting_deeper_than_the_stack_is_counted_not_timed() {
        let (path, _mock) = path();
        for span in 0..(MAX_DEPTH as u64 + 2) {
            path.enter(span + 1, task(span, 0));
        }
        for span in (0..(MAX_DEPTH as u64 + 2)).rev() {
            path.exit(span + 1);
        }
        let slot = path.slot_list()[0].clone();
        assert_eq!(slot.polls_nested_too_deep(), 2);
        assert_eq!(totals(&path, 0).polls(), MAX_DEPTH as u64);
        assert_eq!(slot.depth.load(Relaxed), 0);
    }
}

//! A per-thread queue of finished slow polls, from the polling thread (the only writer) to
//! the reporter thread (the only reader). Fixed capacity, preallocated, lock free; when full,
//! a slow poll is still counted in its site but not reported as an event, and the loss is
//! counted.

use std::sync::atomic::{
    AtomicU32, AtomicU64, AtomicU8,
    Ordering::{Acquire, Relaxed, Release},
};

use super::PollKind;
use crate::sites::SiteId;

/// Slow polls a thread can hold for the reporter. A thread can finish at most one slow poll
/// per threshold period, and the reporter drains every tick, so this is ample.
pub(crate) const CAPACITY: usize = 64;

const EMPTY: u8 = 0;
const POLL: u8 = 1;
const DROP: u8 = 2;
const TAKEN: u8 = 3;

#[derive(Debug)]
struct Entry {
    task_id: AtomicU64,
    seq: AtomicU64,
    site: AtomicU32,
    ns: AtomicU64,
    started_at: AtomicU64,
    ended_at: AtomicU64,
    state: AtomicU8,
}

/// A slow poll as the reporter reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlowRecord {
    pub(crate) task_id: u64,
    /// The thread's `poll_seq` of the outermost poll this one ran in.
    pub(crate) seq: u64,
    pub(crate) site: SiteId,
    pub(crate) ns: u64,
    /// Raw clock reading at the start of the poll (with `seq`, it names the poll).
    pub(crate) started_at: u64,
    /// Raw clock reading at the end of the poll.
    pub(crate) ended_at: u64,
    /// A poll, or the future's drop.
    pub(crate) kind: PollKind,
}

#[derive(Debug)]
pub(crate) struct SlowRing {
    entries: Box<[Entry]>,
    head: AtomicU64,
    tail: AtomicU64,
    dropped: AtomicU64,
}

impl SlowRing {
    pub(crate) fn new() -> Self {
        Self {
            entries: (0..CAPACITY).map(|_| Entry::default()).collect(),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether every queued slow poll has been taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Acquire) == self.tail.load(Acquire)
    }

    /// Writer side: queues a slow poll; returns its position, or `None` (counted) when full.
    pub(crate) fn push(
        &self,
        task_id: u64,
        seq: u64,
        site: SiteId,
        ns: u64,
        (started_at, ended_at): (u64, u64),
    ) -> Option<u64> {
        let head = self.head.load(Relaxed);
        if head.wrapping_sub(self.tail.load(Acquire)) >= CAPACITY as u64 {
            self.dropped.store(self.dropped.load(Relaxed) + 1, Relaxed);
            return None;
        }
        let entry = &self.entries[(head % CAPACITY as u64) as usize];
        entry.task_id.store(task_id, Relaxed);
        entry.seq.store(seq, Relaxed);
        entry.site.store(site.index(), Relaxed);
        entry.ns.store(ns, Relaxed);
        entry.started_at.store(started_at, Relaxed);
        entry.ended_at.store(ended_at, Relaxed);
        entry.state.store(POLL, Relaxed);
        self.head.store(head + 1, Release);
        Some(head)
    }

    /// Writer side: the poll queued at `position` turned out to be the future's drop.
    /// Does nothing if the reporter already took it.
    pub(crate) fn mark_drop(&self, position: u64) {
        let entry = &self.entries[(position % CAPACITY as u64) as usize];
        let _ = entry.state.compare_exchange(POLL, DROP, Relaxed, Relaxed);
    }

    /// Reader side: takes queued slow polls, oldest first, while `settled(ended_at)` holds.
    /// Younger ones stay queued, so that a drop that closes its span right after the poll is
    /// labelled a drop before it is reported.
    pub(crate) fn drain(&self, settled: impl Fn(u64) -> bool, mut each: impl FnMut(SlowRecord)) {
        let head = self.head.load(Acquire);
        let mut tail = self.tail.load(Relaxed);
        while tail != head {
            let entry = &self.entries[(tail % CAPACITY as u64) as usize];
            let ended_at = entry.ended_at.load(Relaxed);
            if !settled(ended_at) {
                break;
            }
            let record = SlowRecord {
                task_id: entry.task_id.load(Relaxed),
                seq: entry.seq.load(Relaxed),
                site: SiteId::from_index(entry.site.load(Relaxed)),
                ns: entry.ns.load(Relaxed),
                started_at: entry.started_at.load(Relaxed),
                ended_at,
                kind: PollKind::Poll,
            };
            let state = entry.state.swap(TAKEN, Relaxed);
            tail += 1;
            self.tail.store(tail, Release);
            match state {
                POLL => each(record),
                DROP => each(SlowRecord {
                    kind: PollKind::Drop,
                    ..record
                }),
                _ => {}
            }
        }
    }

    /// Slow polls that found the queue full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            task_id: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            site: AtomicU32::new(0),
            ns: AtomicU64::new(0),
            started_at: AtomicU64::new(0),
            ended_at: AtomicU64::new(0),
            state: AtomicU8::new(EMPTY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: SiteId = SiteId::from_index(1);

    #[test]
    fn records_come_out_in_order_and_a_full_ring_counts_its_losses() {
        let ring = SlowRing::new();
        for i in 0..CAPACITY as u64 + 3 {
            ring.push(i, 0, SITE, 100, (1, 10 + i));
        }
        assert_eq!(ring.dropped(), 3);
        let mut seen = Vec::new();
        ring.drain(|_| true, |r| seen.push(r.task_id));
        assert_eq!(seen, (0..CAPACITY as u64).collect::<Vec<_>>());
        assert!(
            ring.push(99, 0, SITE, 100, (1, 500)).is_some(),
            "drained ring accepts again"
        );
    }

    #[test]
    fn unsettled_records_wait_and_a_drop_mark_relabels_them() {
        let ring = SlowRing::new();
        let position = ring.push(7, 0, SITE, 100, (1, 1_000)).unwrap();
        let mut seen = Vec::new();
        ring.drain(|at| at < 1_000, |r| seen.push(r));
        assert!(
            seen.is_empty(),
            "a record ending at the cut-off is not settled"
        );
        ring.mark_drop(position);
        ring.drain(|at| at < 1_001, |r| seen.push(r));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].kind, PollKind::Drop);
    }
}

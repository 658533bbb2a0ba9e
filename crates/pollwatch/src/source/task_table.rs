//! The tracing layer's task spans by span id, read on every poll's enter without the registry:
//! a fixed-size open-addressing table of atomics, written when a task span opens and closes.
//!
//! With it, entering a task span costs a hash and one or two relaxed loads from one cache line
//! (an entry holds the span id and its task side by side): no registry lookup, no span
//! reference count, no read lock on the span's extensions. A span not in the
//! table (not a task span, or a task span that found no free entry) is looked up in the
//! registry as before, so a full table costs speed, never correctness.
//!
//! Safety of the protocol: an entry is claimed (`EMPTY` or `GONE` to `BUSY`), filled, then
//! published with the span id (`Release`), and only by the thread that opened the span; every
//! enter of that span happens after it opened, and it closes only after its last exit, so a
//! reader that finds its id finds its info. Entries never move and never go back to `EMPTY`,
//! so a probe that meets `EMPTY` knows the id is absent. Registry span ids carry the slab
//! slot's generation: a closed span's id is not given to the next span in its slot.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use crate::poll::TaskInfo;
use crate::sites::SiteId;

/// Entries (a power of two): 1 MiB. Beyond about half as many live tasks, probes lengthen
/// and some tasks are looked up in the registry instead.
const ENTRIES: usize = 1 << 16;
/// The longest probe; a span not found within it is looked up in the registry.
const MAX_PROBE: usize = 16;

const EMPTY: u64 = 0;
/// A closed span's entry, free to claim again.
const GONE: u64 = u64::MAX;
/// An entry being filled.
const BUSY: u64 = u64::MAX - 1;

/// Bits of the packed info that hold the site index (the site table holds at most 65,536).
const SITE_BITS: u32 = 24;

pub(crate) struct TaskTable {
    entries: Box<[Entry]>,
}

/// A span id and its packed task, on one cache line.
#[derive(Default)]
#[repr(C, align(16))]
struct Entry {
    span: AtomicU64,
    info: AtomicU64,
}

impl std::fmt::Debug for TaskTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskTable").finish_non_exhaustive()
    }
}

impl Default for TaskTable {
    fn default() -> Self {
        Self {
            entries: (0..ENTRIES).map(|_| Entry::default()).collect(),
        }
    }
}

fn first_index(span: u64) -> usize {
    // Fibonacci hashing: registry ids differ in low and high bits alike.
    (span.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - ENTRIES.trailing_zeros())) as usize
}

fn pack(task: TaskInfo) -> Option<u64> {
    let site = u64::from(task.site.index());
    (task.task_id < 1 << (64 - SITE_BITS) && site < 1 << SITE_BITS)
        .then_some(task.task_id << SITE_BITS | site)
}

fn unpack(info: u64) -> TaskInfo {
    TaskInfo {
        task_id: info >> SITE_BITS,
        site: SiteId::from_index((info & ((1 << SITE_BITS) - 1)) as u32),
    }
}

impl TaskTable {
    /// Remembers the task of the span `span` that just opened on this thread. Returns false
    /// when there was no room (the span is then looked up in the registry).
    pub(crate) fn insert(&self, span: u64, task: TaskInfo) -> bool {
        let Some(info) = pack(task) else {
            return false;
        };
        if span == EMPTY || span >= BUSY {
            return false;
        }
        let first = first_index(span);
        for probe in 0..MAX_PROBE {
            let at = (first + probe) & (ENTRIES - 1);
            let entry = &self.entries[at];
            let current = entry.span.load(Relaxed);
            if current != EMPTY && current != GONE {
                continue;
            }
            if entry
                .span
                .compare_exchange(current, BUSY, Acquire, Relaxed)
                .is_ok()
            {
                entry.info.store(info, Relaxed);
                entry.span.store(span, Release);
                return true;
            }
        }
        false
    }

    /// The task of the open span `span`, if it is in the table.
    #[inline]
    pub(crate) fn get(&self, span: u64) -> Option<TaskInfo> {
        let first = first_index(span);
        for probe in 0..MAX_PROBE {
            let at = (first + probe) & (ENTRIES - 1);
            let entry = &self.entries[at];
            match entry.span.load(Acquire) {
                found if found == span => return Some(unpack(entry.info.load(Relaxed))),
                EMPTY => return None,
                _ => {}
            }
        }
        None
    }

    /// Forgets the span `span`, which is closing.
    pub(crate) fn remove(&self, span: u64) {
        let first = first_index(span);
        for probe in 0..MAX_PROBE {
            let at = (first + probe) & (ENTRIES - 1);
            match self.entries[at].span.load(Relaxed) {
                found if found == span => {
                    self.entries[at].span.store(GONE, Release);
                    return;
                }
                EMPTY => return,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(task_id: u64, site: u32) -> TaskInfo {
        TaskInfo {
            task_id,
            site: SiteId::from_index(site),
        }
    }

    #[test]
    fn spans_are_found_until_they_close() {
        let table = TaskTable::default();
        assert!(table.insert(7, task(3, 2)));
        assert!(table.insert(8, task(4, 65_535)));
        assert_eq!(table.get(7), Some(task(3, 2)));
        assert_eq!(table.get(8), Some(task(4, 65_535)));
        assert_eq!(table.get(9), None);
        table.remove(7);
        assert_eq!(table.get(7), None);
        assert_eq!(table.get(8), Some(task(4, 65_535)));
        // The closed span's entry is used again.
        assert!(table.insert(7, task(5, 1)));
        assert_eq!(table.get(7), Some(task(5, 1)));
    }

    #[test]
    fn colliding_spans_probe_past_each_other_and_past_closed_ones() {
        let table = TaskTable::default();
        // Ids that land on the same first entry.
        let base = 12_345u64;
        let colliding: Vec<u64> = (1..u64::MAX)
            .map(|k| base + k)
            .filter(|&id| first_index(id) == first_index(base))
            .take(MAX_PROBE - 1)
            .collect();
        assert!(table.insert(base, task(1, 1)));
        for (i, &id) in colliding.iter().enumerate() {
            assert!(table.insert(id, task(i as u64 + 2, 1)));
        }
        table.remove(base);
        for (i, &id) in colliding.iter().enumerate() {
            assert_eq!(
                table.get(id),
                Some(task(i as u64 + 2, 1)),
                "past a closed one"
            );
        }
        // The probe is full: one more colliding span does not fit once the hole is taken.
        assert!(table.insert(base, task(1, 1)));
        let one_more = (colliding.last().unwrap() + 1..u64::MAX)
            .find(|&id| first_index(id) == first_index(base))
            .unwrap();
        assert!(
            !table.insert(one_more, task(99, 1)),
            "falls back to the registry"
        );
        assert_eq!(table.get(one_more), None);
    }

    #[test]
    fn tasks_that_do_not_pack_are_left_to_the_registry() {
        let table = TaskTable::default();
        assert!(!table.insert(1, task(1 << 40, 0)));
        assert!(!table.insert(GONE, task(1, 0)));
        assert!(!table.insert(EMPTY, task(1, 0)));
    }
}

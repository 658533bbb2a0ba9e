//! Finding a process's tokio workers from outside: every thread whose stack runs tokio's
//! scheduler (a multi-thread runtime's worker, or a current-thread runtime's `block_on`),
//! whatever its name (services rename their threads, and tokio's blocking-pool threads share
//! the workers' default name). Each thread is read when first seen; threads are listed again
//! every second, to find runtimes started later and forget threads that exited. A thread
//! named like a worker is read again at each listing: `block_in_place` hands a worker's role
//! to a thread of the blocking pool, which the runtime names as it names its workers.

use std::collections::{BTreeMap, BTreeSet};

use pollwatch_capture::remote::{Process, RemoteStack};
use pollwatch_capture::Tid;

use super::stack::Stack;

/// A worker thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Worker {
    pub(crate) tid: Tid,
    pub(crate) name: String,
    /// Its place among the workers found, in order of discovery.
    pub(crate) index: usize,
}

/// The workers found so far, and the threads looked at and found not to be workers.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    pub(crate) found: BTreeMap<Tid, Worker>,
    others: BTreeSet<Tid>,
    next_index: usize,
    /// Threads whose stack could not be read (yet): tried again at the next listing.
    pub(crate) unreadable: usize,
}

impl Workers {
    /// Lists the process's threads: reads the stack of each thread not seen before, and
    /// forgets those that exited. Returns the workers found by this listing.
    pub(crate) fn refresh(
        &mut self,
        process: &mut Process,
        symbolize: &mut dyn FnMut(&mut Process, &RemoteStack) -> Stack,
    ) -> Vec<Worker> {
        let threads = process.threads();
        let alive: BTreeSet<Tid> = threads.iter().map(|t| t.tid).collect();
        self.found.retain(|tid, _| alive.contains(tid));
        self.others.retain(|tid| alive.contains(tid));
        self.unreadable = 0;
        let mut new = Vec::new();
        let worker_names: BTreeSet<String> = self.found.values().map(|w| w.name.clone()).collect();
        for thread in threads {
            let seen_other =
                self.others.contains(&thread.tid) && !worker_names.contains(&thread.name);
            if self.found.contains_key(&thread.tid) || seen_other {
                continue;
            }
            // A stack not read whole (a thread whose stack was mapped after the process's map
            // was read: the map is read again for the next try) is tried again next time.
            let raw = match process.stack(thread.tid) {
                Ok(raw) if raw.addresses.len() > 1 => raw,
                _ => {
                    self.unreadable += 1;
                    continue;
                }
            };
            let stack = symbolize(process, &raw);
            if stack.runs_a_scheduler() {
                let worker = Worker {
                    tid: thread.tid,
                    name: thread.name,
                    index: self.next_index,
                };
                self.next_index += 1;
                self.found.insert(worker.tid, worker.clone());
                new.push(worker);
            } else {
                self.others.insert(thread.tid);
            }
        }
        new
    }
}

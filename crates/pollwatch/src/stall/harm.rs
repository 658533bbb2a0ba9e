//! Harm: how much a stall delayed other work. While the watchdog follows a stall it reads the
//! held thread's runtime queues at every tick ([`crate::poll::queues`]) and adds them up here
//! into a [`Harm`]: the most tasks that waited, and the scheduling delay they were dealt.
//!
//! The estimate, in task-nanoseconds: at each look, the ready tasks the held worker stands
//! in front of are its own queue plus its share of the global queue (the global queue's
//! depth over the workers, which all take from it); each is delayed for the time since the
//! previous look (the first look: since the stall began), and the last look's count stands
//! for the rest of the stall.

use pollwatch_report::Harm;

use crate::poll::queues::QueueDepths;

/// A followed stall's harm so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct HarmTally {
    looks: u32,
    workers: u32,
    global_max: u64,
    local_max: Option<u64>,
    /// The stall's own time at the last look.
    last_ns: u64,
    /// The ready tasks the held worker stood in front of at the last look.
    last_ready: f64,
    /// Task-nanoseconds so far.
    delay: f64,
}

impl HarmTally {
    /// A look at `depths` when the stall had held its thread for `at_ns`.
    pub(crate) fn look(&mut self, depths: QueueDepths, at_ns: u64) {
        let ready = ready(depths);
        self.delay += ready * at_ns.saturating_sub(self.last_ns) as f64;
        self.last_ns = self.last_ns.max(at_ns);
        self.last_ready = ready;
        self.looks = self.looks.saturating_add(1);
        self.workers = depths.workers;
        self.global_max = self.global_max.max(depths.global);
        if let Some(local) = depths.local {
            self.local_max = Some(self.local_max.unwrap_or(0).max(local));
        }
    }

    /// The harm so far.
    pub(crate) fn so_far(&self) -> Harm {
        self.harm(self.delay)
    }

    /// The harm of the stall that ended after holding its thread for `total_ns`: the last
    /// look's ready tasks stand for the time after it.
    pub(crate) fn ended(&self, total_ns: u64) -> Harm {
        let rest = total_ns.saturating_sub(self.last_ns) as f64;
        self.harm(self.delay + self.last_ready * rest)
    }

    fn harm(&self, delay: f64) -> Harm {
        Harm {
            looks: self.looks,
            workers: self.workers,
            global_queue_max: self.global_max,
            local_queue_max: self.local_max,
            // Rounded to whole task-nanoseconds; `as` saturates.
            delay_task_ns: delay.round() as u64,
            // Told by the stall's stack or site, on the reporter thread.
            local_set: false,
        }
    }
}

/// The ready tasks a held worker stands in front of: its own queue and its share of the
/// global one.
fn ready(depths: QueueDepths) -> f64 {
    depths.local.unwrap_or(0) as f64 + depths.global as f64 / f64::from(depths.workers.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn depths(global: u64, local: Option<u64>, workers: u32) -> QueueDepths {
        QueueDepths {
            global,
            local,
            workers,
        }
    }

    #[test]
    fn each_look_counts_for_the_time_since_the_one_before_and_the_last_for_the_rest() {
        let mut tally = HarmTally::default();
        // 10 tasks in the worker's queue at 20 ms (since the start), 4 at 40 ms, then the
        // stall ends at 100 ms.
        tally.look(depths(0, Some(10), 1), 20 * MS);
        tally.look(depths(0, Some(4), 1), 40 * MS);
        assert_eq!(tally.so_far().delay_task_ns, (10 * 20 + 4 * 20) * MS);
        let harm = tally.ended(100 * MS);
        assert_eq!(harm.delay_task_ns, (10 * 20 + 4 * 20 + 4 * 60) * MS);
        assert_eq!((harm.looks, harm.local_queue_max), (2, Some(10)));
    }

    #[test]
    fn a_worker_stands_in_front_of_its_share_of_the_global_queue() {
        let mut tally = HarmTally::default();
        tally.look(depths(8, Some(1), 4), 10 * MS);
        let harm = tally.ended(10 * MS);
        assert_eq!(harm.delay_task_ns, (1 + 8 / 4) * 10 * MS);
        assert_eq!((harm.global_queue_max, harm.workers), (8, 4));
    }

    #[test]
    fn without_a_local_queue_only_the_global_share_counts_and_local_is_unknown() {
        let mut tally = HarmTally::default();
        tally.look(depths(3, None, 1), 30 * MS);
        let harm = tally.ended(60 * MS);
        assert_eq!(harm.delay_task_ns, 3 * 60 * MS);
        assert_eq!(harm.local_queue_max, None);
    }
}

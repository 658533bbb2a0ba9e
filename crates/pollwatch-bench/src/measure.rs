//! What the suite reads from the process itself: thread CPU time (Linux `schedstat`), peak
//! resident memory (`VmHWM`), medians, and the environment knobs every workload takes.

use std::collections::{HashMap, HashSet};

/// The environment variable `name` as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `values` (the upper one of an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[sorted.len() / 2]
}

/// CPU time of thread `tid` of this process, ns.
pub fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time of every live thread of this process, ns, by thread id.
fn threads_cpu_ns() -> HashMap<i32, u64> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return HashMap::new();
    };
    dir.filter_map(|entry| {
        let tid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        Some((tid, thread_cpu_ns(tid)?))
    })
    .collect()
}

/// CPU time spent from a mark on: by the calling thread, and by every thread started after
/// the mark was made (a runtime's workers, an instrument's own threads). Threads left over
/// from earlier configurations are not counted.
pub struct CpuMark {
    /// Threads alive when the mark was made (the calling thread aside): never counted.
    old: HashSet<i32>,
    /// Where counting starts from, per thread.
    from: HashMap<i32, u64>,
}

impl CpuMark {
    /// A mark now; make it on the thread that runs the workload, before building anything.
    pub fn now() -> Self {
        let own_tid = own_tid();
        let from = threads_cpu_ns();
        let old = from.keys().copied().filter(|&t| t != own_tid).collect();
        Self { old, from }
    }

    /// Counting starts again from now (after setup), still for the threads started after the
    /// mark was made.
    pub fn restart(self) -> Self {
        Self {
            from: threads_cpu_ns(),
            ..self
        }
    }

    /// CPU ns counted since the mark; read it before the runtime's threads exit.
    pub fn elapsed_ns(&self) -> u64 {
        threads_cpu_ns()
            .into_iter()
            .filter(|(tid, _)| !self.old.contains(tid))
            .map(|(tid, ns)| ns.saturating_sub(self.from.get(&tid).copied().unwrap_or(0)))
            .sum()
    }
}

/// The calling thread's id (Linux `gettid`, read from `/proc/thread-self`).
fn own_tid() -> i32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|path| path.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// This process's peak resident set size, KiB (`VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

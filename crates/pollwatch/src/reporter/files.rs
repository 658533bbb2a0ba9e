//! The report directory, kept up to date while the application runs: the interval log
//! (`report.hlog`) gains one interval every [`Builder::log_interval`](crate::Builder::log_interval),
//! and `report.json` / `report.txt` are rewritten every
//! [`Builder::flush_every`](crate::Builder::flush_every), so a crash loses at most one period.
//!
//! The interval log is appended to, one whole interval per write; the reports are replaced
//! atomically. Only the reporter thread and [`Handle::write_report`](crate::Handle::write_report)
//! touch these files, under one lock.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pollwatch_report::error::WriteError;
use pollwatch_report::histogram::{self, Histogram};
use pollwatch_report::write::{self, WrittenFiles};
use pollwatch_report::{hlog, Report};

use crate::config::{Config, TEXT_REPORT_TOP_SITES};
use crate::poll::recorder::histogram_of;
use crate::poll::{Activity, PollPath};
use crate::sites::SiteId;
use crate::snapshot;
use crate::state::{Lost, State};

/// Where a full interval log goes when a new one begins.
pub(crate) const ROLLED_FILE: &str = "report.1.hlog";

/// The interval log being written, and what each site had counted at the end of the last
/// interval.
#[derive(Debug)]
pub(crate) struct Files {
    /// Where the files go while running; `None` when they are written only on request.
    live_dir: Option<PathBuf>,
    log_interval: Duration,
    flush_every: Duration,
    log_max_bytes: u64,
    log: Option<hlog::Writer<BufWriter<File>>>,
    /// Set once opening or writing the live files failed: they are not tried again.
    failed: bool,
    /// Each site's cumulative bucket counts and busy time at the last interval's end.
    seen: HashMap<SiteId, Seen>,
    /// Where the last interval ended, from the layer's start.
    last_interval_end: Duration,
    last_flush: Instant,
}

#[derive(Debug, Default)]
struct Seen {
    activity: Activity,
    /// The nonzero buckets, `(index, count)` in index order: a site uses a few dozen of the
    /// recorder's 1,216 buckets, so this is kept sparse (16 bytes a bucket used, not 9.7 KB).
    buckets: Vec<(u16, u64)>,
}

/// The nonzero buckets of `dense`, as `(index, count)`.
fn sparse(dense: &[u64]) -> Vec<(u16, u64)> {
    dense
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, &n)| (i as u16, n))
        .collect()
}

/// `now` minus `before` (sparse), bucket by bucket, never below zero.
fn delta(now: &[u64], before: &[(u16, u64)]) -> Vec<u64> {
    let mut before = before.iter().peekable();
    now.iter()
        .enumerate()
        .map(|(i, &n)| {
            let was = match before.peek() {
                Some(&&(at, count)) if usize::from(at) == i => {
                    before.next();
                    count
                }
                _ => 0,
            };
            n.saturating_sub(was)
        })
        .collect()
}

impl Files {
    /// The files `config` asks for: kept in its report directory while running when
    /// `write_while_running` is on, else written only on request.
    pub(crate) fn new(config: &Config) -> Self {
        Files {
            live_dir: config
                .write_while_running
                .then(|| config.report_dir.clone()),
            log_interval: config.log_interval,
            flush_every: config.flush_every,
            log_max_bytes: config.log_max_bytes,
            log: None,
            failed: false,
            seen: HashMap::new(),
            last_interval_end: Duration::ZERO,
            last_flush: Instant::now(),
        }
    }

    /// Called by the reporter every tick: writes the intervals and reports that are due.
    pub(crate) fn tick(&mut self, state: &State) {
        if self.live_dir.is_none() || self.failed {
            return;
        }
        let now = state.poll.clock.uptime();
        if now.saturating_sub(self.last_interval_end) >= self.log_interval {
            self.append_interval(state, now);
        }
        if self.last_flush.elapsed() >= self.flush_every {
            self.last_flush = Instant::now();
            if let Some(dir) = self.live_dir.clone() {
                let report = snapshot::take(state);
                if let Err(e) = write::write_dir(&dir, &report, TEXT_REPORT_TOP_SITES) {
                    self.fail(state, &e.to_string());
                }
            }
        }
    }

    /// Appends the interval from the last one's end to now to the live interval log, when there
    /// is one and the interval is at least a millisecond long.
    pub(crate) fn cut(&mut self, state: &State) {
        if self.live_dir.is_none() || self.failed {
            return;
        }
        let now = state.poll.clock.uptime();
        if now.saturating_sub(self.last_interval_end) >= Duration::from_millis(1) {
            self.append_interval(state, now);
        }
    }

    /// Writes the report and an interval log into `dir`: the live log (up to now) when there
    /// is one, copied when `dir` is not where it is written; otherwise a log of one interval
    /// covering the whole run. The report is taken after the log's last interval, so the log
    /// never counts a poll the report does not.
    pub(crate) fn write_to(
        &mut self,
        state: &State,
        dir: &Path,
    ) -> Result<WrittenFiles, WriteError> {
        self.cut(state);
        let report = &snapshot::take(state);
        let mut files = write::write_dir(dir, report, TEXT_REPORT_TOP_SITES)?;
        let target = dir.join(hlog::FILE);
        match (&self.log, &self.live_dir) {
            (Some(_), Some(live)) if same_dir(live, dir) => {}
            (Some(_), Some(live)) => {
                let source = live.join(hlog::FILE);
                let bytes = std::fs::read(&source).map_err(|e| WriteError::new(&source, e))?;
                write::write_atomic(&target, &bytes)?;
            }
            _ => write::write_atomic(&target, &whole_run_log(state, report))?,
        }
        files.hlog = Some(target);
        Ok(files)
    }

    fn append_interval(&mut self, state: &State, now: Duration) {
        if self.log.is_none() && !self.open(state) {
            return;
        }
        let slots = state.poll.slot_list();
        let mut all = histogram::new_histogram();
        let mut sites: Vec<(String, Histogram<u64>)> = Vec::new();
        for (id, site) in state.sites.all() {
            let activity = PollPath::site_activity(&slots, id);
            let seen = self.seen.entry(id).or_default();
            // Nothing recorded since the last interval: skip the merge.
            if seen.activity == activity {
                continue;
            }
            let merged = PollPath::merge_site(&slots, id);
            // A poll relabelled as a drop after it was logged takes its count back; the
            // interval log keeps the count it already wrote.
            let new = delta(&merged.buckets, &seen.buckets);
            *seen = Seen {
                activity,
                buckets: sparse(&merged.buckets),
            };
            let h = histogram_of(&new);
            if h.is_empty() {
                continue;
            }
            // Values are within the same bounds, so adding cannot fail.
            let _ = all.add(&h);
            sites.push((site.label.clone(), h));
        }
        let start = self.last_interval_end;
        self.last_interval_end = now;
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let result = log.interval(
            start,
            now.saturating_sub(start),
            sites.iter().map(|(label, h)| (label.as_str(), h)),
            &all,
        );
        if let Err(e) = result {
            let path = self.live_dir.as_ref().map(|d| d.join(hlog::FILE));
            let what = format!("{}: {e}", path.unwrap_or_default().display());
            self.fail(state, &what);
            return;
        }
        if log.written() >= self.log_max_bytes {
            self.roll_over(state);
        }
    }

    /// Renames the full log to [`ROLLED_FILE`] (replacing the previous one) and starts a new
    /// one, so `report.hlog` always exists.
    fn roll_over(&mut self, state: &State) {
        self.log = None;
        let Some(dir) = &self.live_dir else {
            return;
        };
        let (from, to) = (dir.join(hlog::FILE), dir.join(ROLLED_FILE));
        if let Err(e) = std::fs::rename(&from, &to) {
            let what = format!("{} -> {}: {e}", from.display(), to.display());
            self.fail(state, &what);
            return;
        }
        self.open(state);
    }

    /// Creates the live interval log (replacing one from an earlier run).
    fn open(&mut self, state: &State) -> bool {
        let Some(dir) = self.live_dir.clone() else {
            return false;
        };
        let path = dir.join(hlog::FILE);
        let opened = std::fs::create_dir_all(&dir)
            .and_then(|()| File::create(&path))
            .and_then(|file| hlog::Writer::start(BufWriter::new(file), state.started_at));
        match opened {
            Ok(writer) => {
                self.log = Some(writer);
                true
            }
            Err(e) => {
                self.fail(state, &format!("{}: {e}", path.display()));
                false
            }
        }
    }

    fn fail(&mut self, state: &State, what: &str) {
        self.failed = true;
        Lost::count(&state.lost.report_writes);
        state.diagnostics.push(format!(
            "pollwatch could not keep the report files up to date ({what}); they are written \
             again only when the report is written on request or at exit"
        ));
    }
}

/// Whether `a` and `b` name the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        )
}

/// An interval log with one interval covering the whole run: each site's histogram from the
/// report, and all of them together.
fn whole_run_log(state: &State, report: &Report) -> Vec<u8> {
    let mut all = histogram::new_histogram();
    let sites: Vec<(&str, Histogram<u64>)> = report
        .sites
        .iter()
        .filter_map(|s| Some((s.label.as_str(), histogram::decode(&s.histogram).ok()?)))
        .collect();
    for (_, h) in &sites {
        let _ = all.add(h);
    }
    let Ok(mut log) = hlog::Writer::start(Vec::new(), state.started_at) else {
        return Vec::new();
    };
    let _ = log.interval(
        Duration::ZERO,
        Duration::from_nanos(report.uptime_ns),
        sites.iter().map(|(label, h)| (*label, h)),
        &all,
    );
    log.get_ref().clone()
}

#[cfg(test)]
mod tests {
    use super::{delta, sparse};

    #[test]
    fn deltas_against_the_sparse_previous_counts() {
        let before = [0, 3, 0, 0, 7, 1];
        let now = [2, 3, 0, 5, 9, 0];
        let kept = sparse(&before);
        assert_eq!(kept, [(1, 3), (4, 7), (5, 1)]);
        // A count that went down (a poll relabelled as a drop) gives zero, not a wrap.
        assert_eq!(delta(&now, &kept), [2, 0, 0, 5, 2, 0]);
        assert_eq!(delta(&now, &[]), now);
    }
}

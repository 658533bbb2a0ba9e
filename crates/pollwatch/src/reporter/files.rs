//! The report directory, kept up to date while the application runs: the interval log
//! (`report.hlog`) gains one interval every [`Builder::log_interval`](crate::Builder::log_interval),
//! and `report.json` / `report.txt` are rewritten every
//! [`Builder::flush_every`](crate::Builder::flush_every), so a crash loses at most one period.
//!
//! The interval log is appended to, one whole interval per write; the reports are replaced
//! atomically. Only the reporter thread and [`Handle::write_report`](crate::Handle::write_report)
//! touch these files, under one lock.
//!
//! A failed write is counted and tried again with backoff ([`super::retry`]); nothing is
//! counted as logged until its interval is written, so the first interval after a failure
//! covers the time writing failed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, SeekFrom};
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

use super::faults::{self, LogFile as Sink};
use super::retry::{Retry, MAX_WAIT};

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
    log: Option<hlog::Writer<BufWriter<Sink>>>,
    /// The file the live log is in, kept when writing it failed: to go on with it, without
    /// the failed write's partial interval, when writing works again.
    log_file: Option<LogFile>,
    /// Whether this run has started its live log (and removed an earlier run's rolled log).
    started: bool,
    /// When to try again after a failed write.
    retry: Retry,
    /// Each site's cumulative bucket counts and busy time at the last interval's end.
    seen: HashMap<SiteId, Seen>,
    /// Where the last interval ended, from the layer's start.
    last_interval_end: Duration,
    last_flush: Instant,
}

/// The live log's file on disk: which file it is, and its length after its last whole
/// interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LogFile {
    id: Option<(u64, u64)>,
    good_len: u64,
}

/// A file's device and inode: whether a path still names the file a log was written to.
#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
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
            log_file: None,
            started: false,
            retry: Retry::default(),
            seen: HashMap::new(),
            last_interval_end: Duration::ZERO,
            last_flush: Instant::now(),
        }
    }

    /// Called by the reporter every tick: writes the intervals and reports that are due. After
    /// a failure, tries again (everything at once) when [`Retry`] says so.
    pub(crate) fn tick(&mut self, state: &State) {
        let at = Instant::now();
        if self.live_dir.is_none() || !self.retry.ready(at) {
            return;
        }
        let retrying = self.retry.failing();
        let now = state.poll.clock.uptime();
        if retrying || now.saturating_sub(self.last_interval_end) >= self.log_interval {
            if let Err(what) = self.append_interval(state, now) {
                return self.fail(state, &what);
            }
        }
        if retrying || self.last_flush.elapsed() >= self.flush_every {
            self.last_flush = Instant::now();
            if let Err(what) = self.write_live_reports(state) {
                return self.fail(state, &what);
            }
        }
        if retrying {
            let failures = self.retry.succeeded();
            state.diagnostics.push_once(
                "report files resumed",
                format!(
                    "pollwatch: the report files are written again after {failures} failed \
                     tries; the interval log's next interval covers the time they failed"
                ),
            );
        }
    }

    /// Appends the interval from the last one's end to now to the live interval log, when there
    /// is one and the interval is at least a millisecond long (one try, whatever the backoff:
    /// the report is being written on request or at exit).
    pub(crate) fn cut(&mut self, state: &State) {
        if self.live_dir.is_none() {
            return;
        }
        let now = state.poll.clock.uptime();
        if now.saturating_sub(self.last_interval_end) >= Duration::from_millis(1) {
            if let Err(what) = self.append_interval(state, now) {
                self.fail(state, &what);
            }
        }
    }

    /// Writes the report and an interval log into `dir`: the live log (up to now) when there
    /// is one, copied when `dir` is not where it is written; otherwise a log of one interval
    /// covering the whole run. The report is taken after the log's last interval, so the log
    /// never counts a poll the report does not. A live log that could not be written to lately
    /// is still never replaced by a one-interval log.
    pub(crate) fn write_to(
        &mut self,
        state: &State,
        dir: &Path,
    ) -> Result<WrittenFiles, WriteError> {
        self.cut(state);
        let report = &snapshot::take(state);
        let mut files = write::write_dir(dir, report, TEXT_REPORT_TOP_SITES)?;
        let target = dir.join(hlog::FILE);
        let live_log = self
            .live_dir
            .as_ref()
            .filter(|_| self.log_file.is_some())
            .map(|live| live.join(hlog::FILE))
            .filter(|log| log.exists());
        match live_log {
            Some(log) if same_dir(log.parent().unwrap_or(dir), dir) => {}
            Some(log) => {
                let bytes = std::fs::read(&log).map_err(|e| WriteError::new(&log, e))?;
                write::write_atomic(&target, &bytes)?;
            }
            None => write::write_atomic(&target, &whole_run_log(state, report))?,
        }
        files.hlog = Some(target);
        Ok(files)
    }

    /// Rewrites `report.json` and `report.txt` in the live directory.
    fn write_live_reports(&mut self, state: &State) -> Result<(), String> {
        let Some(dir) = &self.live_dir else {
            return Ok(());
        };
        faults::check_write(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let report = snapshot::take(state);
        write::write_dir(dir, &report, TEXT_REPORT_TOP_SITES)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Appends one interval, from the last written one's end to `now`. Nothing is counted as
    /// logged until the interval is written: after a failure, the next interval covers the
    /// time since the last one written.
    fn append_interval(&mut self, state: &State, now: Duration) -> Result<(), String> {
        self.open(state)?;
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let slots = state.poll.slot_list();
        let (start, length) = (
            self.last_interval_end,
            now.saturating_sub(self.last_interval_end),
        );
        let mut all = histogram::new_histogram();
        let mut logged: Vec<(SiteId, Seen)> = Vec::new();
        // One site's histogram at a time (each is ~184 KB dense), encoded into the interval.
        log.begin_interval();
        for (id, site) in state.sites.all() {
            let activity = PollPath::site_activity(&slots, id);
            let seen = self.seen.get(&id);
            // Nothing recorded since the last interval: skip the merge.
            if seen.is_some_and(|seen| seen.activity == activity) {
                continue;
            }
            let merged = PollPath::merge_site(&slots, id);
            // A poll relabelled as a drop after it was logged takes its count back; the
            // interval log keeps the count it already wrote.
            let new = delta(&merged.buckets, seen.map_or(&[][..], |s| &s.buckets));
            logged.push((
                id,
                Seen {
                    activity,
                    buckets: sparse(&merged.buckets),
                },
            ));
            let h = histogram_of(&new);
            // Values are within the same bounds, so adding cannot fail.
            let _ = all.add(&h);
            log.site(start, length, &site.label, &h);
        }
        let written = log
            .end_interval(start, length, &all)
            .and_then(|()| log.get_ref().get_ref().file.metadata());
        let meta = match written {
            Ok(meta) => meta,
            Err(e) => {
                // Go on with the file (less this partial interval) when writing works again.
                self.log = None;
                return Err(format!("{}: {e}", self.log_path().display()));
            }
        };
        self.log_file = Some(LogFile {
            id: file_id(&meta),
            good_len: meta.len(),
        });
        self.seen.extend(logged);
        self.last_interval_end = now;
        if log.written() >= self.log_max_bytes {
            self.roll_over(state)?;
        }
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.live_dir.clone().unwrap_or_default().join(hlog::FILE)
    }

    /// Makes sure the live log is open on the file at its path: goes on with this run's file
    /// (cut back to its last whole interval) after a failure, or starts a new log when there
    /// is none yet, or when the file was removed or replaced (its intervals went with it).
    /// Starting this run's first log removes an earlier run's rolled log.
    fn open(&mut self, state: &State) -> Result<(), String> {
        let Some(dir) = self.live_dir.clone() else {
            return Ok(());
        };
        let path = dir.join(hlog::FILE);
        let on_disk = std::fs::metadata(&path).ok();
        let same_file = |file: &LogFile| {
            on_disk
                .as_ref()
                .is_some_and(|meta| file_id(meta) == file.id && meta.len() >= file.good_len)
        };
        match (&self.log, self.log_file) {
            (Some(_), Some(file)) if same_file(&file) => return Ok(()),
            (None, Some(file)) if same_file(&file) => {
                let resumed = faults::check_open(&path)
                    .and_then(|()| std::fs::OpenOptions::new().write(true).open(&path))
                    .and_then(|f| f.set_len(file.good_len).map(|()| f))
                    .and_then(|mut f| std::io::Seek::seek(&mut f, SeekFrom::End(0)).map(|_| f));
                return match resumed {
                    Ok(f) => {
                        let sink = Sink { file: f, path };
                        self.log = Some(hlog::Writer::resume(BufWriter::new(sink)));
                        Ok(())
                    }
                    Err(e) => Err(format!("{}: {e}", path.display())),
                };
            }
            _ => {}
        }
        self.log = None;
        if !self.started {
            // An earlier run's history is not this run's.
            let _ = std::fs::remove_file(dir.join(ROLLED_FILE));
        }
        let started = std::fs::create_dir_all(&dir)
            .and_then(|()| faults::check_open(&path))
            .and_then(|()| File::create(&path))
            .map(|file| Sink {
                file,
                path: path.clone(),
            })
            .and_then(|sink| hlog::Writer::start(BufWriter::new(sink), state.started_at))
            .and_then(|log| {
                log.get_ref()
                    .get_ref()
                    .file
                    .metadata()
                    .map(|meta| (log, meta))
            });
        match started {
            Ok((log, meta)) => {
                self.log = Some(log);
                self.log_file = Some(LogFile {
                    id: file_id(&meta),
                    good_len: meta.len(),
                });
                self.started = true;
                Ok(())
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Renames the full log to [`ROLLED_FILE`] (replacing the previous one) and starts a new
    /// one, so `report.hlog` always exists. When the rename fails, the full log is kept and
    /// grows: it is never replaced by a new one.
    fn roll_over(&mut self, state: &State) -> Result<(), String> {
        let Some(dir) = &self.live_dir else {
            return Ok(());
        };
        let (from, to) = (dir.join(hlog::FILE), dir.join(ROLLED_FILE));
        faults::check_open(&to)
            .and_then(|()| std::fs::rename(&from, &to))
            .map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
        self.log = None;
        self.log_file = None;
        self.open(state)
    }

    /// Counts a failed write and waits before the next try; says so once.
    fn fail(&mut self, state: &State, what: &str) {
        Lost::count(&state.lost.report_writes);
        let wait = self.retry.failed(Instant::now());
        state.diagnostics.push_once(
            "report files failed",
            format!(
                "pollwatch could not write the report files ({what}); it tries again after \
                 {wait:?}, then with waits doubling up to {MAX_WAIT:?}, and counts each failure \
                 (dropped.report_writes_failed)"
            ),
        );
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

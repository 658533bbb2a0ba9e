//! The stalls `pollwatch attach` saw, as a pollwatch report that `show`, `diff`, `html` and
//! `lint` read like any other, and the one-line message each is said with.
//!
//! From outside, the tasks' spawn sites are unknown: a stall's "site" is the task its stack
//! shows, named by the task's outermost function of the application's own (the future tokio
//! polls), with that function's file. Only stalls are seen, not every poll, so a site's
//! `polls`, `slow_polls`, `busy_ns` and histogram count its stalls only (a diagnostic in the
//! report says so).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pollwatch_judge::classify::Cause;
use pollwatch_judge::location::Roots;
use pollwatch_judge::look::state_text;
use pollwatch_judge::verdict::{Held, PollKind, Verdict};
use pollwatch_report::histogram::{self, Histogram};
use pollwatch_report::{
    CallSiteCount, Dropped, Percentiles, Report, SiteReport, Stall as ReportStall, Totals,
};

use super::nanos;
use super::watch::Stall;

/// The site of a stall whose stack shows no task of the application's.
const NO_TASK: &str = "worker (task unknown)";

/// A stall's site: its label, file and task name.
pub(crate) fn site_of(stall: &Stall, roots: &Roots) -> (String, String, String) {
    match &stall.task {
        Some((name, file)) => {
            let file = roots.display(file);
            let name = if name.is_empty() {
                NO_TASK.to_owned()
            } else {
                name.clone()
            };
            (format!("{file} {name:?}"), file, name)
        }
        None => (NO_TASK.to_owned(), String::new(), NO_TASK.to_owned()),
    }
}

/// The judgement of a stall, as in process.
fn verdict(stall: &Stall) -> Verdict<'_> {
    let cause = stall.look.cause();
    let kind = if stall.look.dropping.is_some() {
        PollKind::Drop
    } else {
        PollKind::Poll
    };
    Verdict {
        look: &stall.look,
        cause,
        kind,
        schedule: None,
    }
}

/// The one-line message for a stall, as the in-process pollwatch words it.
pub(crate) fn message(stall: &Stall, roots: &Roots) -> String {
    let (_, file, name) = site_of(stall, roots);
    let site = if file.is_empty() { name.clone() } else { file };
    verdict(stall).message(&Held {
        task_id: 0,
        task_name: &name,
        site: &site,
        thread: &stall.worker.name,
        worker_index: Some(stall.worker.index),
        duration_ns: nanos(stall.held),
        ended: stall.ended,
    })
}

/// Everything the watch saw, as a report: `started` is when watching began, `threshold` the
/// threshold, `diagnostics` what to say about the watch.
pub(crate) fn build(
    stalls: &[Stall],
    roots: &Roots,
    started: Instant,
    threshold: Duration,
    workers: usize,
    diagnostics: Vec<String>,
) -> Report {
    let mut sites: Vec<(SiteReport, Histogram<u64>)> = Vec::new();
    let mut report_stalls = Vec::new();
    for stall in stalls {
        let (label, file, name) = site_of(stall, roots);
        let held = nanos(stall.held);
        let at = match sites.iter().position(|(s, _)| s.label == label) {
            Some(at) => at,
            None => {
                sites.push((
                    site(sites.len(), &label, &file, &name),
                    histogram::new_histogram(),
                ));
                sites.len() - 1
            }
        };
        let (site, hist) = &mut sites[at];
        let _ = hist.record(held.clamp(1, hist.high()));
        site.polls += 1;
        site.slow_polls += 1;
        site.stalls += 1;
        site.tasks_spawned = site.tasks_spawned.max(1);
        site.busy_ns = site.busy_ns.saturating_add(held);
        site.max_ns = site.max_ns.max(held);
        let verdict = verdict(stall);
        let call_site = stall.look.call_site.clone().unwrap_or_else(|| {
            pollwatch_report::model::call_site_label(None, stall.look.function.as_deref())
        });
        count_call_site(
            &mut site.call_sites,
            call_site,
            &stall.look.api,
            verdict.cause,
        );
        report_stalls.push(ReportStall {
            task_id: 0,
            task_name: name.clone(),
            site: label,
            thread: stall.worker.name.clone(),
            worker_index: Some(stall.worker.index as u64),
            tid: stall.worker.tid,
            started_at_ns: nanos(stall.since.saturating_duration_since(started)),
            detected_after_ns: nanos(stall.detected.saturating_duration_since(stall.since)),
            detection_lag_ns: nanos(
                stall
                    .detected
                    .saturating_duration_since(stall.since)
                    .saturating_sub(threshold),
            ),
            duration_ns: held,
            ended: stall.ended,
            cpu_ns: None,
            run_ns: None,
            runqueue_wait_ns: None,
            throttled_ns: None,
            state: state_text(stall.look.state),
            syscall: stall.look.syscall.clone(),
            blocked_on: stall.look.blocked_on.clone(),
            cause: verdict.cause.as_str().to_owned(),
            call_site: stall.look.call_site.clone(),
            call_site_path: stall.look.call_site_path.clone(),
            call_function: stall.look.function.clone(),
            call_site_missing: stall
                .look
                .call_site
                .is_none()
                .then(|| stall.look.missing.map(|m| m.as_str().to_owned()))
                .flatten(),
            blocking_call: stall.look.api.clone(),
            dependency_call: stall.look.dependency.clone(),
            kind: verdict.kind.as_str().to_owned(),
            dropping: verdict.dropped_type().map(str::to_owned),
            suggestion: verdict.suggestion(),
            span: None,
            backtrace: stall.look.backtrace.clone(),
            capture_ns: Some(nanos(stall.stopped)),
            samples: Vec::new(),
            harm: None,
            message: message(stall, roots),
        });
    }
    let mut sites: Vec<SiteReport> = sites
        .into_iter()
        .map(|(mut site, hist)| {
            // Capped at the longest stall, as in process (the histogram rounds up).
            let p = histogram::percentiles(&hist);
            let cap = |ns: u64| ns.min(site.max_ns);
            site.percentiles = Percentiles {
                p50_ns: cap(p.p50_ns),
                p90_ns: cap(p.p90_ns),
                p99_ns: cap(p.p99_ns),
                p999_ns: cap(p.p999_ns),
            };
            site.histogram = histogram::encode(&hist);
            site
        })
        .collect();
    sites.sort_by_key(|s| std::cmp::Reverse(s.busy_ns));
    let totals = Totals {
        polls: sites.iter().map(|s| s.polls).sum(),
        slow_polls: sites.iter().map(|s| s.slow_polls).sum(),
        busy_ns: sites.iter().map(|s| s.busy_ns).sum(),
        tasks_spawned: sites.iter().map(|s| s.tasks_spawned).sum(),
        threads: u32::try_from(workers).unwrap_or(u32::MAX),
        stalls: sites.iter().map(|s| s.stalls).sum(),
        ..Totals::default()
    };
    // The most recent stalls, as in process.
    let keep = report_stalls.len().saturating_sub(Report::STALLS_KEPT);
    report_stalls.drain(..keep);
    Report {
        format: pollwatch_report::model::FORMAT.to_owned(),
        version: pollwatch_report::model::VERSION,
        pollwatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        taken_at_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        uptime_ns: nanos(started.elapsed()),
        threshold_ns: nanos(threshold),
        max_sites: u32::try_from(sites.len()).unwrap_or(u32::MAX),
        totals,
        dropped: Dropped::default(),
        sites,
        slow_polls: Vec::new(),
        diagnostics,
        stalls: report_stalls,
    }
}

fn site(id: usize, label: &str, file: &str, name: &str) -> SiteReport {
    SiteReport {
        id: u32::try_from(id).unwrap_or(u32::MAX),
        label: label.to_owned(),
        file: file.to_owned(),
        line: 0,
        col: 0,
        name: name.to_owned(),
        kind: "task".to_owned(),
        tasks_spawned: 0,
        polls: 0,
        slow_polls: 0,
        busy_ns: 0,
        max_ns: 0,
        drops: 0,
        drop_ns: 0,
        percentiles: Percentiles::default(),
        histogram: String::new(),
        stalls: 0,
        warnings_suppressed: 0,
        call_sites: Vec::new(),
        polls_in_place: 0,
        delay_task_ns: 0,
        delay_unknown_stalls: 0,
    }
}

fn count_call_site(
    counts: &mut Vec<CallSiteCount>,
    call_site: String,
    api: &Option<String>,
    cause: Cause,
) {
    let cause = cause.as_str().to_owned();
    match counts
        .iter_mut()
        .find(|c| c.call_site == call_site && &c.blocking_call == api && c.cause == cause)
    {
        Some(c) => c.count += 1,
        None => counts.push(CallSiteCount {
            call_site,
            blocking_call: api.clone(),
            cause,
            count: 1,
        }),
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.count));
}

/// The fix for a stall, as in process.
pub(crate) fn suggestion(stall: &Stall) -> String {
    verdict(stall).suggestion()
}

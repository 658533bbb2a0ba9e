//! Building a [`Report`] from the live state: merge every thread's recorders per site into one
//! hdrhistogram, add the counters, the recent slow polls and the diagnostics.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pollwatch_report::histogram::{self, Histogram};
use pollwatch_report::{Dropped, Percentiles, Report, SiteReport, Totals};

use crate::poll::recorder::{bucket_value, SiteTotals};
use crate::poll::thread::ThreadSlot;
use crate::shared::Shared;
use crate::sites::SiteId;
use crate::stall::book::Book;

/// What was lost or left out, from the counters every part keeps.
pub(crate) fn dropped(shared: &Shared, slots: &[Arc<ThreadSlot>], book: Option<&Book>) -> Dropped {
    Dropped {
        tasks_in_overflow_site: shared.sites.overflowed_tasks(),
        slow_poll_events: slots.iter().map(|s| s.slow.dropped()).sum(),
        polls_nested_too_deep: slots.iter().map(|s| s.nested_too_deep.load(Relaxed)).sum(),
        values_clamped: slots.iter().map(|s| s.clamped.load(Relaxed)).sum(),
        stall_warnings_suppressed: book.map_or(0, |b| b.suppressed()),
        stall_samples: shared.stall_samples_dropped.load(Relaxed),
        report_writes_failed: shared.report_files_failed.load(Relaxed),
    }
}

pub(crate) fn take(shared: &Shared) -> Report {
    let slots = shared.poll.slot_list();
    let mut totals = Totals {
        threads: u32::try_from(slots.len()).unwrap_or(u32::MAX),
        ..Totals::default()
    };
    let book = shared.book.lock().ok();
    let mut sites = Vec::new();
    for (id, site) in shared.sites.all() {
        let merged = merge_site(&slots, id);
        let tasks_spawned = site.tasks_spawned.load(Relaxed);
        let polls = merged.polls();
        let stalls = book.as_ref().and_then(|b| b.site(id));
        if polls == 0 && tasks_spawned == 0 && merged.drops == 0 {
            continue;
        }
        let hist = to_histogram(&merged.buckets);
        totals.polls += polls;
        totals.slow_polls += merged.slow_polls;
        totals.busy_ns += merged.busy_ns;
        totals.tasks_spawned += tasks_spawned;
        sites.push(SiteReport {
            id,
            label: site.label.clone(),
            file: site.file.clone(),
            line: site.line,
            col: site.col,
            name: site.name.clone(),
            kind: site.kind.clone(),
            tasks_spawned,
            polls,
            slow_polls: merged.slow_polls,
            busy_ns: merged.busy_ns,
            max_ns: merged.max_ns,
            drops: merged.drops,
            drop_ns: merged.drop_ns,
            percentiles: at_most(histogram::percentiles(&hist), merged.max_ns),
            histogram: histogram::encode(&hist),
            stalls: stalls.map_or(0, |s| s.stalls),
            warnings_suppressed: stalls.map_or(0, |s| s.warnings_suppressed),
            call_sites: stalls.map(call_sites).unwrap_or_default(),
        });
    }
    sites.sort_by(|a, b| b.busy_ns.cmp(&a.busy_ns).then(a.id.cmp(&b.id)));
    let dropped = dropped(shared, &slots, book.as_deref());
    totals.stalls = book.as_ref().map_or(0, |b| b.total());
    let stalls = book.as_ref().map(|b| b.recent()).unwrap_or_default();
    drop(book);
    let now = SystemTime::now();
    Report {
        format: pollwatch_report::FORMAT.to_owned(),
        version: pollwatch_report::VERSION,
        pollwatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        taken_at_unix_ms: now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        uptime_ns: now
            .duration_since(shared.started_at)
            .map_or(0, |d| d.as_nanos() as u64),
        threshold_ns: shared.poll.threshold_ns,
        max_sites: shared.max_sites,
        totals,
        dropped,
        sites,
        slow_polls: shared
            .recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default(),
        diagnostics: shared
            .diagnostics
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default(),
        stalls,
    }
}

/// `p` with no percentile above the exact maximum (a histogram bucket's value can be a little
/// above the largest value recorded in it).
fn at_most(p: Percentiles, max_ns: u64) -> Percentiles {
    Percentiles {
        p50_ns: p.p50_ns.min(max_ns),
        p90_ns: p.p90_ns.min(max_ns),
        p99_ns: p.p99_ns.min(max_ns),
        p999_ns: p.p999_ns.min(max_ns),
    }
}

/// One site's measurements summed over every thread.
pub(crate) fn merge_site(slots: &[Arc<ThreadSlot>], id: SiteId) -> SiteTotals {
    let mut merged = SiteTotals::default();
    for slot in slots {
        if let Some(recorder) = slot.existing_recorder(id) {
            recorder.merge_into(&mut merged);
        }
    }
    merged
}

/// An hdrhistogram with the counts of recorder buckets.
pub(crate) fn to_histogram(buckets: &[u64]) -> Histogram<u64> {
    let mut hist = histogram::new_histogram();
    for (bucket, &count) in buckets.iter().enumerate() {
        if count > 0 {
            // Values are clamped to the histogram's bound, so recording cannot fail.
            let _ = hist.record_n(bucket_value(bucket), count);
        }
    }
    hist
}

/// A site's call sites, with the ones beyond the list's bound as one `other` entry.
pub(crate) fn call_sites(
    stalls: &crate::stall::book::SiteStalls,
) -> Vec<pollwatch_report::CallSiteCount> {
    let mut list = stalls.call_sites.clone();
    if stalls.other_call_sites > 0 {
        list.push(pollwatch_report::CallSiteCount {
            call_site: "other".to_owned(),
            blocking_call: None,
            cause: "various".to_owned(),
            count: stalls.other_call_sites,
        });
    }
    list
}

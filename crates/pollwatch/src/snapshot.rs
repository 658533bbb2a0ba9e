//! Building a [`Report`] from the live state: every site's merged recorders as an
//! hdrhistogram with its percentiles, the counters, the stalls, the recent slow polls and the
//! diagnostics. Every figure is rendered here, at the edge, from typed state.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, UNIX_EPOCH};

use pollwatch_report::histogram;
use pollwatch_report::{Dropped, Report, SiteReport, SlowPoll, Totals};

use crate::poll::{PollPath, Slots};
use crate::sites::{Site, SiteId};
use crate::stall::book::{Book, SiteStalls};
use crate::state::{RecentSlowPoll, State};

/// What was lost or left out, from the counters every part keeps (`book`'s warnings
/// suppressed by the rate limit among them).
pub(crate) fn dropped(state: &State, slots: &Slots, book: &Book) -> Dropped {
    let retired = slots.retired();
    Dropped {
        tasks_in_overflow_site: state.sites.overflowed_tasks(),
        slow_poll_events: slots.iter().map(|s| s.slow_polls_lost()).sum::<u64>()
            + retired.slow_polls_lost,
        polls_nested_too_deep: slots.iter().map(|s| s.polls_nested_too_deep()).sum::<u64>()
            + retired.nested_too_deep,
        values_clamped: slots.iter().map(|s| s.values_clamped()).sum::<u64>() + retired.clamped,
        stall_warnings_suppressed: book.suppressed(),
        stall_samples: state.lost.stall_samples.load(Relaxed),
        report_writes_failed: state.lost.report_writes.load(Relaxed),
        host_panics: state.lost.host_panics.load(Relaxed),
    }
}

/// A report of everything measured so far.
pub(crate) fn take(state: &State) -> Report {
    let slots = state.poll.slot_list();
    let mut totals = Totals {
        threads: u32::try_from(slots.threads()).unwrap_or(u32::MAX),
        ..Totals::default()
    };
    let all = state.sites.all();
    // The book's figures, copied out under its lock; the merging happens without it.
    let book = state.book.lock();
    let figures: Vec<Option<SiteStalls>> =
        all.iter().map(|(id, _)| book.site(*id).cloned()).collect();
    let dropped = dropped(state, &slots, &book);
    totals.stalls = book.total();
    totals.polls_in_place = book.in_place_total();
    let stalls = book.recent(&state.sites);
    drop(book);
    let mut sites = Vec::new();
    for ((id, site), figures) in all.iter().zip(&figures) {
        let Some(report) = site_report(&slots, *id, site, figures.as_ref()) else {
            continue;
        };
        totals.polls += report.polls;
        totals.slow_polls += report.slow_polls;
        totals.busy_ns += report.busy_ns;
        totals.tasks_spawned += report.tasks_spawned;
        totals.delay_task_ns = totals.delay_task_ns.saturating_add(report.delay_task_ns);
        sites.push(report);
    }
    sites.sort_by(|a, b| b.busy_ns.cmp(&a.busy_ns).then(a.id.cmp(&b.id)));
    let uptime_ns = state.poll.clock.uptime_ns();
    let taken_at = state.started_at + Duration::from_nanos(uptime_ns);
    Report {
        format: pollwatch_report::FORMAT.to_owned(),
        version: pollwatch_report::VERSION,
        pollwatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        taken_at_unix_ms: taken_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        uptime_ns,
        threshold_ns: state.threshold_ns(),
        max_sites: state.sites.max_sites(),
        totals,
        dropped,
        sites,
        slow_polls: state
            .recent
            .lock()
            .iter()
            .map(|slow| slow_poll(state, slow))
            .collect(),
        diagnostics: state.diagnostics.all(),
        stalls,
    }
}

/// One site's entry, or `None` when it has nothing to show.
fn site_report(
    slots: &Slots,
    id: SiteId,
    site: &Site,
    stalls: Option<&SiteStalls>,
) -> Option<SiteReport> {
    let merged = PollPath::merge_site(slots, id);
    let tasks_spawned = site.tasks_spawned.load(Relaxed);
    let polls = merged.polls();
    if polls == 0 && tasks_spawned == 0 && merged.drops == 0 {
        return None;
    }
    let hist = merged.histogram();
    Some(SiteReport {
        id: id.index(),
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
        percentiles: merged.percentiles(&hist),
        histogram: histogram::encode(&hist),
        stalls: stalls.map_or(0, |s| s.stalls),
        warnings_suppressed: stalls.map_or(0, |s| s.warnings_suppressed),
        call_sites: stalls
            .map(SiteStalls::call_sites_report)
            .unwrap_or_default(),
        polls_in_place: stalls.map_or(0, |s| s.polls_in_place),
        delay_task_ns: stalls.map_or(0, |s| s.ended.delay_task_ns),
        delay_unknown_stalls: stalls.map_or(0, |s| s.ended.delay_unknown),
    })
}

/// A finished slow poll as reports and events write it.
pub(crate) fn slow_poll(state: &State, slow: &RecentSlowPoll) -> SlowPoll {
    let site = state.sites.get(slow.record.site);
    SlowPoll {
        task_id: slow.record.task_id,
        task_name: site.name.clone(),
        site: site.label.clone(),
        thread: slow.thread.clone(),
        duration_ns: slow.record.ns,
        kind: slow.record.kind.as_str().to_owned(),
        ended_at_ns: state.poll.clock.since_origin_ns(slow.record.ended_at),
    }
}

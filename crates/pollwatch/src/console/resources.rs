//! One tokio-console resource per site that has stalled, kept live by the reporter thread.
//!
//! The resource is a span named `runtime.resource` (target [`crate::TARGET`]) with `&str`
//! fields `concrete_type = "BlockingSite"` and `kind = "blocking"`, and the site's spawn
//! location as `loc.file` (str), `loc.line` and `loc.col` (u64). It is opened when the site
//! first stalls and kept open for the life of the subscriber. Its attributes are
//! `runtime::resource::state_update` events, one value per event, emitted while the span is
//! entered on the reporter thread:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `stall_count` | u64, `override` | stalls the watchdog caught at this site |
//! | `longest_stall` | u64, `override`, unit `ms` | the longest of them (so far, while one runs) |
//! | `poll_p99` | u64, `override`, unit `µs` | 99th percentile of the site's finished polls |
//! | `stalled_now` | bool | a poll of this site holds a worker past the threshold right now |
//! | `last_cause` | str | the last stall's cause (`file_io`, `sleep`, `lock`, `channel`, `network`, `cpu`, `block_on`, `process`, `descheduled`, `unknown`) |
//! | `last_call_site` | str | the last stall's blocking call site (its function when the build has no line tables) and the blocking API it called, and the type being dropped for a stall in a `Drop` |
//! | `suggestion` | str | what to do about the last stall |
//!
//! Numbers are sent only when they change; `poll_p99` is refreshed at most once a second.
//! tokio-console 0.1.14 lists attributes alphabetically and its resource detail panel has room
//! for six: `suggestion` is then the one left out (it is in the table row and in the feed).
//! Nothing here runs on the poll path; the reporter thread owns the resources. The span is kept open by an extra registry reference
//! (`clone_span`), not by a `Span` value, so pollwatch's shared state holds no strong
//! reference to the subscriber that holds pollwatch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing_core::span::Id;
use tracing_core::Dispatch;

use crate::config::TARGET;
use crate::poll::{PollKey, PollKind, PollPath};
use crate::sites::SiteId;
use crate::stall::book::MAX_LIVE;
use crate::stall::record::StallRecord;
use crate::state::State;

/// The `concrete_type` of pollwatch's resources (tokio-console's Type column).
pub(crate) const CONCRETE_TYPE: &str = "BlockingSite";
/// The `kind` of pollwatch's resources (tokio-console's Kind column).
pub(crate) const KIND: &str = "blocking";
/// How often `poll_p99` is recomputed for every resource.
const REFRESH: Duration = Duration::from_secs(1);

/// The resources of one layer, owned by its reporter thread.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    sites: HashMap<SiteId, SiteResource>,
    /// The site of every stall still running (at most the stall book's [`MAX_LIVE`]).
    live: HashMap<PollKey, SiteId>,
    refreshed: Option<Instant>,
}

/// One site's resource and the figures last sent for it.
#[derive(Debug, Default)]
struct SiteResource {
    /// The open span, once it could be created.
    span: Option<Id>,
    stalls: u64,
    live: u32,
    longest_ns: u64,
    sent_longest_ms: Option<u64>,
    sent_p99_us: Option<u64>,
    sent_stalled_now: Option<bool>,
    sent_call_site: Option<String>,
}

/// The state-update target console-subscriber listens to.
macro_rules! update {
    ($($field:tt)+) => {
        tracing::trace!(target: "runtime::resource::state_update", $($field)+)
    };
}

impl Resources {
    /// A stall was caught: count it, mark its site stalled, and send its cause, call site and
    /// suggestion.
    pub(crate) fn stall_detected(&mut self, state: &State, stall: &StallRecord) {
        let Some(dispatch) = state.subscriber.get() else {
            return;
        };
        if self.live.len() >= MAX_LIVE {
            // End messages were lost: forget one followed stall.
            if let Some((&old, &old_site)) = self.live.iter().next() {
                self.live.remove(&old);
                if let Some(r) = self.sites.get_mut(&old_site) {
                    r.live = r.live.saturating_sub(1);
                }
            }
        }
        self.live.insert(stall.key, stall.site);
        let resource = self.sites.entry(stall.site).or_default();
        resource.stalls += 1;
        resource.live += 1;
        resource.longest_ns = resource.longest_ns.max(stall.duration_ns);
        let Some(id) = open(state, &dispatch, stall.site, resource) else {
            return;
        };
        let p99 = p99_us(state, stall.site);
        in_span(&dispatch, &id, || {
            update!(stall_count = resource.stalls, stall_count.op = "override");
            send_figures(resource, p99);
            update!(last_cause = stall.cause.as_str());
            send_call_site(resource, stall);
            update!(suggestion = stall.suggestion().as_str());
        });
    }

    /// A stall still running was looked at again: its site's longest stall may have grown,
    /// and its call site may be known now (when the first look had no stack).
    pub(crate) fn running(&mut self, state: &State, stall: &StallRecord) {
        self.update_live(state, stall.key, stall.duration_ns, Some(stall));
    }

    /// A stall's cause changed after its detection (CPU work the thread mostly waited to do
    /// is `descheduled`): its site's `last_cause` and `suggestion` become this stall's.
    pub(crate) fn reclassified(&mut self, state: &State, stall: &StallRecord) {
        let Some(dispatch) = state.subscriber.get() else {
            return;
        };
        let Some(id) = self.sites.get(&stall.site).and_then(|r| r.span.clone()) else {
            return;
        };
        in_span(&dispatch, &id, || {
            update!(last_cause = stall.cause.as_str());
            update!(suggestion = stall.suggestion().as_str());
        });
    }

    /// A stall ended after `total_ns`.
    pub(crate) fn ended(&mut self, state: &State, key: PollKey, total_ns: u64) {
        self.update_live(state, key, total_ns, None);
    }

    fn update_live(&mut self, state: &State, key: PollKey, ns: u64, running: Option<&StallRecord>) {
        let ended = running.is_none();
        let Some(dispatch) = state.subscriber.get() else {
            return;
        };
        let site = if ended {
            self.live.remove(&key)
        } else {
            self.live.get(&key).copied()
        };
        let Some(site) = site else { return };
        let Some(resource) = self.sites.get_mut(&site) else {
            return;
        };
        resource.longest_ns = resource.longest_ns.max(ns);
        if ended {
            resource.live = resource.live.saturating_sub(1);
        }
        let Some(id) = resource.span.clone() else {
            return;
        };
        // The poll has ended: it is in the site's histogram now.
        let p99 = if ended { p99_us(state, site) } else { None };
        in_span(&dispatch, &id, || {
            send_figures(resource, p99);
            if let Some(stall) = running {
                send_call_site(resource, stall);
            }
        });
    }

    /// Every [`REFRESH`]: recompute `poll_p99` of every resource (the site's polls go on
    /// after its stalls). Called each reporter tick.
    pub(crate) fn refresh(&mut self, state: &State) {
        if self.sites.is_empty() || self.refreshed.is_some_and(|at| at.elapsed() < REFRESH) {
            return;
        }
        self.refreshed = Some(Instant::now());
        let Some(dispatch) = state.subscriber.get() else {
            return;
        };
        for (&site, resource) in &mut self.sites {
            let p99 = p99_us(state, site);
            if let (Some(id), true) = (resource.span.clone(), p99 != resource.sent_p99_us) {
                in_span(&dispatch, &id, || send_figures(resource, p99));
            }
        }
    }
}

/// Sends the stall's blocking call site (and the blocking API it called, and the type being
/// dropped for a drop) if it changed.
fn send_call_site(resource: &mut SiteResource, stall: &StallRecord) {
    let call_site = last_call_site(stall);
    if resource.sent_call_site.as_ref() != Some(&call_site) {
        update!(last_call_site = call_site.as_str());
        resource.sent_call_site = Some(call_site);
    }
}

/// The `last_call_site` attribute of a stall: its call site (or function, or `unknown`), the
/// blocking API, and what was being dropped for a drop.
fn last_call_site(stall: &StallRecord) -> String {
    let look = &stall.look;
    let at = pollwatch_report::call_site_label(look.call_site.as_deref(), look.function.as_deref());
    let mut text = match &look.api {
        Some(api) => format!("{at} {api}"),
        None => at,
    };
    if stall.kind == PollKind::Drop {
        match look.dropping.as_ref().and_then(|d| d.type_name.as_deref()) {
            Some(dropping) => text.push_str(&format!(" (while dropping {dropping})")),
            None => text.push_str(" (while dropping the task's future)"),
        }
    }
    text
}

/// Sends the numbers and the flag that changed since they were last sent.
fn send_figures(resource: &mut SiteResource, p99_us: Option<u64>) {
    let longest_ms = resource.longest_ns / 1_000_000;
    if resource.sent_longest_ms != Some(longest_ms) {
        update!(
            longest_stall = longest_ms,
            longest_stall.op = "override",
            longest_stall.unit = "ms"
        );
        resource.sent_longest_ms = Some(longest_ms);
    }
    if let Some(p99) = p99_us.filter(|p| resource.sent_p99_us != Some(*p)) {
        update!(
            poll_p99 = p99,
            poll_p99.op = "override",
            poll_p99.unit = "µs"
        );
        resource.sent_p99_us = Some(p99);
    }
    let stalled_now = resource.live > 0;
    if resource.sent_stalled_now != Some(stalled_now) {
        update!(stalled_now = stalled_now);
        resource.sent_stalled_now = Some(stalled_now);
    }
}

/// The site's resource span, opened on first use.
fn open(
    state: &State,
    dispatch: &Dispatch,
    site: SiteId,
    resource: &mut SiteResource,
) -> Option<Id> {
    if let Some(id) = &resource.span {
        return Some(id.clone());
    }
    let info = state.sites.get(site);
    let id = tracing::dispatcher::with_default(dispatch, || {
        let span = if info.file.is_empty() {
            tracing::trace_span!(
                target: TARGET,
                "runtime.resource",
                concrete_type = CONCRETE_TYPE,
                kind = KIND,
            )
        } else {
            tracing::trace_span!(
                target: TARGET,
                "runtime.resource",
                concrete_type = CONCRETE_TYPE,
                kind = KIND,
                loc.file = info.file.as_str(),
                loc.line = u64::from(info.line),
                loc.col = u64::from(info.col),
            )
        };
        // One more registry reference keeps the span open after `span` is dropped.
        span.id().map(|id| dispatch.clone_span(&id))
    })?;
    resource.span = Some(id.clone());
    Some(id)
}

/// Runs `f` with the resource span entered on this thread, through `dispatch`: console-
/// subscriber attributes a state update to the resource entered on the emitting thread.
fn in_span(dispatch: &Dispatch, id: &Id, f: impl FnOnce()) {
    tracing::dispatcher::with_default(dispatch, || {
        dispatch.enter(id);
        f();
        dispatch.exit(id);
    });
}

/// The site's 99th-percentile poll time so far, in µs: the same figure as the report's.
fn p99_us(state: &State, site: SiteId) -> Option<u64> {
    let merged = PollPath::merge_site(&state.poll.slot_list(), site);
    if merged.polls() == 0 {
        return None;
    }
    Some(merged.percentiles(&merged.histogram()).p99_ns / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stall::record::tests::record;
    use pollwatch_judge::frames::{Dropping, Missing};

    #[test]
    fn the_last_call_site_names_the_line_or_function_and_a_drop() {
        let mut stall = record();
        assert_eq!(
            last_call_site(&stall),
            "src/store.rs:17 std::fs::read_to_string"
        );
        stall.look.call_site = None;
        stall.look.missing = Some(Missing::NoLineTables);
        stall.kind = PollKind::Drop;
        stall.look.dropping = Some(Dropping {
            type_name: Some("app::FlushOnDrop".to_owned()),
        });
        assert_eq!(
            last_call_site(&stall),
            "app::store::load (line unknown) std::fs::read_to_string \
             (while dropping app::FlushOnDrop)"
        );
    }
}

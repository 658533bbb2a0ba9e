//! The events pollwatch emits, all WARN with target [`TARGET`]: one per slow poll, one per
//! stall when it is caught and when it ends, and one per blocking line whose warnings went
//! over the rate limit, saying how many it did not emit. Each has structured fields and a
//! one-line message a person can act on. Typed state is rendered here, at the edge.

use pollwatch_report::units::format_duration_ns;
use pollwatch_report::{Harm, SlowPoll, Stall};
use tracing_core::Dispatch;

use crate::config::TARGET;
use crate::snapshot;
use crate::stall::rate_limit::{Suppressed, WINDOW};
use crate::state::{RecentSlowPoll, State};

/// The one-line message of a slow-poll event.
pub(crate) fn message(slow: &SlowPoll, is_drop: bool, threshold_ns: u64) -> String {
    let task = if slow.task_name.is_empty() {
        format!("task {}", slow.task_id)
    } else {
        format!("task {:?} (id {})", slow.task_name, slow.task_id)
    };
    let held = format_duration_ns(slow.duration_ns);
    let threshold = format_duration_ns(threshold_ns);
    if is_drop {
        format!(
            "dropping {task} spawned at {} held thread {:?} for {held} (threshold {threshold}): \
             its Drop blocks; move the blocking cleanup to tokio::task::spawn_blocking",
            slow.site, slow.thread
        )
    } else {
        // No look at the thread: whether code or the host's CPU shortage held it is unknown,
        // and no fix is advised for what may not be the code's doing.
        format!(
            "{task} spawned at {} held thread {:?} for {held} in one poll (threshold {threshold}); \
             it ended before the watchdog looked, so what held it is not known: blocking code \
             between two .awaits (std::fs, std::thread::sleep, a std Mutex, a blocking client, \
             CPU work) or a host short of CPU. When this site's polls are caught while they \
             run, their warnings name the line",
            slow.site, slow.thread
        )
    }
}

/// Emits one event per slow poll through the subscriber the layer is installed in.
pub(crate) fn slow_polls(state: &State, slow_polls: &[&RecentSlowPoll]) {
    if slow_polls.is_empty() {
        return;
    }
    let Some(dispatch) = state.subscriber.get() else {
        return;
    };
    let threshold_ns = state.threshold_ns();
    tracing::dispatcher::with_default(&dispatch, || {
        for recent in slow_polls {
            let is_drop = recent.record.kind == crate::poll::PollKind::Drop;
            let slow = snapshot::slow_poll(state, recent);
            let text = message(&slow, is_drop, threshold_ns);
            tracing::event!(
                target: TARGET,
                tracing::Level::WARN,
                task.id = slow.task_id,
                task.name = %slow.task_name,
                site = %slow.site,
                worker = %slow.thread,
                thread.name = %slow.thread,
                duration_ms = slow.duration_ns as f64 / 1e6,
                kind = %slow.kind,
                "{text}"
            );
        }
    });
}

/// Emits a stall: when caught (`ended = false`), and again with its total when it ends.
///
/// Besides pollwatch's own fields, it carries OpenTelemetry's semantic-convention attributes
/// for the code and the thread (`code.file.path`, `code.line.number`, `code.function.name`,
/// `thread.name`, `thread.id`), so a pipeline that bridges `tracing` to OpenTelemetry exports
/// them under the names backends link to code.
pub(crate) fn stall(dispatch: &Dispatch, stall: &Stall) {
    let (code_file, code_line) = split_line(stall.call_site_path.as_deref());
    tracing::dispatcher::with_default(dispatch, || {
        tracing::event!(
            target: TARGET,
            tracing::Level::WARN,
            task.id = stall.task_id,
            task.name = %stall.task_name,
            site = %stall.site,
            worker = %stall.thread,
            worker.index = stall.worker_index,
            duration_ms = stall.duration_ns as f64 / 1e6,
            ended = stall.ended,
            state = %stall.state,
            syscall = stall.syscall.as_deref(),
            blocked_on = stall.blocked_on.as_deref(),
            call_site = stall.call_site.as_deref(),
            call_function = stall.call_function.as_deref(),
            code.file.path = code_file,
            code.line.number = code_line,
            code.function.name = stall.call_function.as_deref(),
            thread.name = %stall.thread,
            thread.id = stall.tid,
            call_site_missing = stall.call_site_missing.as_deref(),
            blocking_call = stall.blocking_call.as_deref(),
            dependency_call = stall.dependency_call.as_deref(),
            kind = %stall.kind,
            dropping = stall.dropping.as_deref(),
            cause = %stall.cause,
            suggestion = %stall.suggestion,
            span = stall.span.as_deref(),
            cpu_ms = stall.cpu_ns.map(|c| c as f64 / 1e6),
            tasks_waiting = stall.harm.as_ref().filter(|h| !h.local_set).map(Harm::tasks_waiting),
            task_delay_ms = stall
                .harm
                .as_ref()
                .filter(|h| !h.local_set)
                .map(|h| h.delay_task_ns as f64 / 1e6),
            task_delay_unknown = stall.harm.as_ref().is_some_and(|h| h.local_set).then_some(true),
            "{}",
            stall.message
        );
    });
}

/// `/src/app/main.rs:17` as its file and line (`None` for a part that is not there).
fn split_line(path: Option<&str>) -> (Option<&str>, Option<u32>) {
    let Some(path) = path else {
        return (None, None);
    };
    match path.rsplit_once(':') {
        Some((file, line)) if line.parse::<u32>().is_ok() => (Some(file), line.parse().ok()),
        _ => (Some(path), None),
    }
}

/// The one-line message of a summary of suppressed warnings.
pub(crate) fn suppressed_message(
    summary: &Suppressed,
    site: &str,
    per_minute: u32,
    stopping: bool,
) -> String {
    let n = summary.count;
    let what = match summary.line.call_site.as_deref() {
        Some(call_site) => format!(
            "{n} more {} at {call_site} (tasks spawned at {site})",
            noun(n, "stall")
        ),
        None => format!(
            "{n} more {} of tasks spawned at {site}",
            noun(n, "slow poll")
        ),
    };
    let when = if stopping {
        "before pollwatch stopped".to_owned()
    } else {
        format!(
            "in the last {}",
            format_duration_ns(duration_ns(summary.over))
        )
    };
    format!(
        "{what} {when}, not warned about one by one (at most {per_minute} warnings a minute \
         per blocking line); the report lists every one"
    )
}

/// `noun`, plural unless `n` is 1.
fn noun(n: u64, noun: &str) -> String {
    if n == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

/// `d` in nanoseconds, saturating.
fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Says, for each blocking line whose rate-limit window since its first suppressed warning is
/// over (each one, when `stopping`), how many warnings it did not emit.
pub(crate) fn suppressed(state: &State, stopping: bool) {
    let (due, per_minute) = state
        .book
        .lock()
        .suppressed_summaries(std::time::Instant::now(), stopping);
    if due.is_empty() {
        return;
    }
    let Some(dispatch) = state.subscriber.get() else {
        return;
    };
    debug_assert!(WINDOW.as_secs() == 60, "the message says a minute");
    tracing::dispatcher::with_default(&dispatch, || {
        for summary in &due {
            let site = state.sites.get(summary.line.site);
            let text = suppressed_message(summary, &site.label, per_minute, stopping);
            tracing::event!(
                target: TARGET,
                tracing::Level::WARN,
                site = %site.label,
                call_site = summary.line.call_site.as_deref(),
                suppressed = summary.count,
                "{text}"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::split_line;

    #[test]
    fn a_path_with_a_line_splits_into_file_and_line() {
        assert_eq!(
            split_line(Some("/src/app/main.rs:17")),
            (Some("/src/app/main.rs"), Some(17))
        );
        assert_eq!(
            split_line(Some("/src/app/main.rs")),
            (Some("/src/app/main.rs"), None)
        );
        assert_eq!(split_line(None), (None, None));
    }
}

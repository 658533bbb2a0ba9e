//! Turns a raw sample into a [`Stall`]: symbolized and trimmed stack, blocking call site and
//! API, what the thread was doing, the cause, the fix, and the one-line message.

use pollwatch_capture::{RunState, Target};
use pollwatch_report::units::format_duration_ns;
use pollwatch_report::{Frame, Stall, StallSample};

use super::classify::{self, Observed, Run, TargetKind};
use super::frames;
use super::RawSample;
use crate::shared::Shared;

/// What one look at the stuck thread found, beyond the raw sample.
#[derive(Clone, Debug, Default)]
pub(crate) struct Look {
    pub(crate) observed: Observed,
    pub(crate) state: String,
    pub(crate) syscall: Option<String>,
    pub(crate) blocked_on: Option<String>,
    pub(crate) backtrace: Vec<Frame>,
    pub(crate) call_site: Option<String>,
    pub(crate) api: Option<String>,
    pub(crate) capture_ns: Option<u64>,
}

/// Symbolizes and classifies one raw sample.
pub(crate) fn look(raw: &RawSample) -> Look {
    let mut look = Look {
        state: "unknown".to_owned(),
        ..Look::default()
    };
    if let Some(state) = &raw.state {
        look.state = state.run.to_string();
        look.observed.run = match state.run {
            RunState::Running => Run::Running,
            RunState::Sleeping => Run::Waiting,
            RunState::DiskWait => Run::DiskWait,
            _ => Run::Unknown,
        };
        if let Some(syscall) = &state.syscall {
            let name = syscall
                .name
                .map_or_else(|| format!("syscall {}", syscall.number), str::to_owned);
            look.syscall = Some(name.clone());
            look.observed.syscall = Some(name);
            if let Some(target) = &syscall.target {
                look.blocked_on = Some(target.to_string());
                look.observed.target = Some(match target {
                    Target::File { .. } => TargetKind::File,
                    Target::Socket { .. } => TargetKind::Socket,
                    Target::Pipe { .. } => TargetKind::Pipe,
                    Target::Futex { .. } => TargetKind::Futex,
                    Target::Sleep => TargetKind::Sleep,
                    _ => TargetKind::Other,
                });
            }
        }
    }
    if let Some(Ok(capture)) = &raw.capture {
        look.capture_ns = Some(u64::try_from(capture.took.as_nanos()).unwrap_or(u64::MAX));
        let symbolized: Vec<Frame> = pollwatch_capture::symbolize(&capture.ips)
            .into_iter()
            .map(|f| Frame {
                function: f.function.unwrap_or_else(|| format!("{:#x}", f.ip)),
                file: f.file,
                line: f.line,
            })
            .collect();
        look.backtrace = frames::trim(&symbolized);
        let site = frames::call_site(&look.backtrace);
        look.call_site = site.location;
        look.api = site.api;
    }
    look
}

/// The first look at a stall, as a report entry (its message says "so far").
pub(crate) fn stall(shared: &Shared, raw: &RawSample, look: &Look) -> Stall {
    let (site_label, short_site, task_name) = match shared.sites.get(raw.site) {
        Some(site) if !site.file.is_empty() => (
            site.label.clone(),
            format!("{}:{}:{}", site.file, site.line, site.col),
            site.name.clone(),
        ),
        Some(site) => (site.label.clone(), site.label.clone(), site.name.clone()),
        None => (
            "<unknown>".to_owned(),
            "<unknown>".to_owned(),
            String::new(),
        ),
    };
    let cause = classify::cause(&look.observed, look.api.as_deref());
    let suggestion = classify::suggestion(cause, look.api.as_deref());
    let span = raw.inner_span.clone();
    let mut stall = Stall {
        task_id: raw.task_id,
        task_name,
        site: site_label,
        thread: raw.thread.clone(),
        tid: raw.tid,
        started_at_ns: raw.started_at_ns,
        detected_after_ns: raw.running_ns,
        detection_lag_ns: raw.lag_ns,
        duration_ns: raw.running_ns,
        ended: false,
        cpu_ns: None,
        state: look.state.clone(),
        syscall: look.syscall.clone(),
        blocked_on: look.blocked_on.clone(),
        cause: cause.as_str().to_owned(),
        call_site: look.call_site.clone(),
        blocking_call: look.api.clone(),
        suggestion,
        span,
        backtrace: look.backtrace.clone(),
        capture_ns: look.capture_ns,
        samples: Vec::new(),
        message: String::new(),
    };
    stall.message = message(&stall, &short_site);
    stall
}

/// Gives a stall whose first look had no stack the call site, API, cause and fix of a later
/// look that has one.
pub(crate) fn adopt_stack(stall: &mut Stall, look: &Look) {
    let cause = classify::cause(&look.observed, look.api.as_deref());
    stall.backtrace = look.backtrace.clone();
    stall.call_site = look.call_site.clone();
    stall.blocking_call = look.api.clone();
    stall.capture_ns = look.capture_ns;
    stall.cause = cause.as_str().to_owned();
    stall.suggestion = classify::suggestion(cause, look.api.as_deref());
}

/// A later look at a running stall.
pub(crate) fn sample(raw: &RawSample, look: &Look, cpu_ns: Option<u64>) -> StallSample {
    StallSample {
        at_ns: raw.running_ns,
        state: look.state.clone(),
        syscall: look.syscall.clone(),
        call_site: look.call_site.clone(),
        cpu_ns,
    }
}

/// The one-line message:
/// `task "handler" (src/main.rs:42:5) held worker "tokio-rt-worker" for 312ms: blocked in
/// read() on /data/users.json at src/store.rs:17 (std::fs::read_to_string). Use ...`
pub(crate) fn message(stall: &Stall, site: &str) -> String {
    let task = if stall.task_name.is_empty() {
        format!("task {}", stall.task_id)
    } else {
        format!("task {:?}", stall.task_name)
    };
    let held = if stall.ended {
        format!(
            "held worker {:?} for {}",
            stall.thread,
            format_duration_ns(stall.duration_ns)
        )
    } else {
        format!(
            "has held worker {:?} for {} so far",
            stall.thread,
            format_duration_ns(stall.duration_ns)
        )
    };
    let what = match (&stall.syscall, &stall.blocked_on) {
        (Some(syscall), _) if stall.cause == "sleep" => format!("sleeping in {syscall}()"),
        (Some(syscall), _) if stall.cause == "lock" || stall.cause == "block_on" => {
            format!("waiting on a lock or condition variable in {syscall}()")
        }
        (Some(syscall), Some(target)) => format!("blocked in {syscall}() on {target}"),
        (Some(syscall), None) => format!("blocked in {syscall}()"),
        (None, _) if stall.state == "unknown" => "blocked".to_owned(),
        (None, _) => stall.state.clone(),
    };
    let at = stall
        .call_site
        .as_deref()
        .map(|c| format!(" at {c}"))
        .unwrap_or_default();
    let api = stall
        .blocking_call
        .as_deref()
        .map(|a| format!(" ({a})"))
        .unwrap_or_default();
    format!(
        "{task} ({site}) {held}: {what}{at}{api}. {}",
        stall.suggestion
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stall() -> Stall {
        Stall {
            task_id: 9,
            task_name: "handler".into(),
            site: "src/main.rs:42:5 \"handler\"".into(),
            thread: "tokio-rt-worker".into(),
            tid: 1,
            started_at_ns: 0,
            detected_after_ns: 12_000_000,
            detection_lag_ns: 2_000_000,
            duration_ns: 312_000_000,
            ended: true,
            cpu_ns: None,
            state: "sleeping".into(),
            syscall: Some("read".into()),
            blocked_on: Some("/data/users.json".into()),
            cause: "file_io".into(),
            call_site: Some("src/store.rs:17".into()),
            blocking_call: Some("std::fs::read_to_string".into()),
            suggestion: "Use tokio::fs::read_to_string or tokio::task::spawn_blocking.".into(),
            span: None,
            backtrace: Vec::new(),
            capture_ns: None,
            samples: Vec::new(),
            message: String::new(),
        }
    }

    #[test]
    fn the_message_reads_at_a_glance() {
        assert_eq!(
            message(&stall(), "src/main.rs:42:5"),
            "task \"handler\" (src/main.rs:42:5) held worker \"tokio-rt-worker\" for 312ms: \
             blocked in read() on /data/users.json at src/store.rs:17 (std::fs::read_to_string). \
             Use tokio::fs::read_to_string or tokio::task::spawn_blocking."
        );
    }

    #[test]
    fn a_running_stall_says_so_far_and_cpu_work_says_running() {
        let mut s = stall();
        s.ended = false;
        s.syscall = None;
        s.blocked_on = None;
        s.state = "running on CPU".into();
        s.cause = "cpu".into();
        s.blocking_call = None;
        let text = message(&s, "src/main.rs:42:5");
        assert!(
            text.contains("so far: running on CPU at src/store.rs:17."),
            "{text}"
        );
    }
}

//! A report's stall judged again once its frames are symbolized with debug info the running
//! build did not have (a stripped binary's separate debug file): the stack, call site,
//! blocking API, cause, fix and message become what the live judgement would have said with
//! line tables, and the site's call-site counts follow.
//!
//! What the thread's state showed (run state, syscall, target) and its scheduling are read
//! back from the report; a stall judged `descheduled` stays so when its stack shows CPU work
//! or a lock (the rule that made it so reads the scheduling, not the stack).

use pollwatch_capture::RunState;
use pollwatch_report::{CallSiteCount, Frame, FrameModule, Report, Stall};

use crate::classify::{Cause, TargetKind};
use crate::frames::Missing;
use crate::location::Roots;
use crate::look::Look;
use crate::verdict::{Held, PollKind, Schedule, Verdict};

/// What symbolizing a report's frames changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejudged {
    /// Stalls whose stack had frames to symbolize, and got them symbolized.
    pub stalls: usize,
    /// Of those, the stalls that now name their call site (`file:line`).
    pub with_call_site: usize,
    /// Stalls with frames to symbolize that no debug info given fits.
    pub unmatched: usize,
}

/// Whether a stall's stack is worth symbolizing again: it has frames of a module and no
/// call site, for want of symbols or line tables.
pub fn needs_symbols(stall: &Stall) -> bool {
    stall.call_site.is_none()
        && matches!(
            stall.call_site_missing.as_deref(),
            Some("no_symbols" | "no_line_tables" | "inlined" | "not_in_application")
        )
        && stall.backtrace.iter().any(|f| f.module.is_some())
}

/// Judges every stall of `report` that [`needs_symbols`] again, with its frames symbolized by
/// `resolve` (the frames at a module's address, innermost first, or `None` when no debug info
/// fits that module), and moves the stalls it names a call site for to that call site in
/// their site's counts.
pub fn rejudge_report(
    report: &mut Report,
    resolve: &mut dyn FnMut(&FrameModule) -> Option<Vec<Frame>>,
) -> Rejudged {
    let mut done = Rejudged::default();
    let mut roots = Roots::default();
    for i in 0..report.stalls.len() {
        if !needs_symbols(&report.stalls[i]) {
            continue;
        }
        // A stall of a site the report no longer lists is judged with no spawn file.
        let site = report
            .sites
            .iter()
            .find(|s| s.label == report.stalls[i].site)
            .map(|s| (s.file.clone(), s.id));
        let site_file = site.as_ref().map_or("", |(file, _)| file.as_str());
        let before = report.stalls[i].clone();
        if !rejudge(&mut report.stalls[i], site_file, resolve, &mut roots) {
            done.unmatched += 1;
            continue;
        }
        count(&mut done, &report.stalls[i]);
        let after = &report.stalls[i];
        let site_id = site.map(|(_, id)| id);
        if let Some(site) = report.sites.iter_mut().find(|s| Some(s.id) == site_id) {
            move_count(&mut site.call_sites, &before, after);
        }
    }
    done
}

fn count(done: &mut Rejudged, stall: &Stall) {
    done.stalls += 1;
    if stall.call_site.is_some() {
        done.with_call_site += 1;
    }
}

/// Moves one stall from its old call site's count to its new one.
fn move_count(counts: &mut Vec<CallSiteCount>, before: &Stall, after: &Stall) {
    let key = |s: &Stall| {
        (
            s.call_site_label(),
            s.blocking_call.clone(),
            s.cause.clone(),
        )
    };
    let (old, new) = (key(before), key(after));
    if old == new {
        return;
    }
    let Some(from) = counts.iter_mut().find(|c| {
        (
            c.call_site.clone(),
            c.blocking_call.clone(),
            c.cause.clone(),
        ) == old
    }) else {
        // Counted under `other`, beyond the list's bound: it stays there.
        return;
    };
    from.count -= 1;
    match counts.iter_mut().find(|c| {
        (
            c.call_site.clone(),
            c.blocking_call.clone(),
            c.cause.clone(),
        ) == new
    }) {
        Some(to) => to.count += 1,
        None => counts.push(CallSiteCount {
            call_site: new.0,
            blocking_call: new.1,
            cause: new.2,
            count: 1,
        }),
    }
    counts.retain(|c| c.count > 0);
    counts.sort_by_key(|c| std::cmp::Reverse(c.count));
}

/// Judges one stall again with its frames symbolized by `resolve`. `site_file` is its spawn
/// site's file, from which `roots` learns the build root. Returns false, changing nothing,
/// when `resolve` symbolized none of its frames.
pub fn rejudge(
    stall: &mut Stall,
    site_file: &str,
    resolve: &mut dyn FnMut(&FrameModule) -> Option<Vec<Frame>>,
    roots: &mut Roots,
) -> bool {
    let mut symbolized = Vec::with_capacity(stall.backtrace.len());
    let mut resolved = false;
    let mut frames = stall.backtrace.iter().peekable();
    while let Some(frame) = frames.next() {
        let Some(module) = &frame.module else {
            symbolized.push(frame.clone());
            continue;
        };
        // The frames of one address (a call and the calls inlined into it) were symbolized
        // together: they are replaced together.
        let mut group = vec![frame.clone()];
        while let Some(next) = frames.next_if(|f| f.module.as_ref() == Some(module)) {
            group.push(next.clone());
        }
        match resolve(module) {
            Some(found) if !found.is_empty() => {
                resolved = true;
                symbolized.extend(found.into_iter().map(|mut f| {
                    f.module = Some(module.clone());
                    f
                }));
            }
            _ => symbolized.extend(group),
        }
    }
    if !resolved {
        return false;
    }
    let mut look = look_of(stall);
    look.judge_stack(&symbolized, roots, site_file);
    let mut cause = look.cause();
    if stall.cause == Cause::Descheduled.as_str() && matches!(cause, Cause::Cpu | Cause::Lock) {
        cause = Cause::Descheduled;
    }
    let kind = if stall.kind == PollKind::Drop.as_str() || look.dropping.is_some() {
        PollKind::Drop
    } else {
        PollKind::Poll
    };
    let schedule = match (stall.run_ns, stall.runqueue_wait_ns) {
        (Some(run_ns), Some(wait_ns)) => Some(Schedule {
            run_ns,
            wait_ns,
            throttled_ns: stall.throttled_ns,
            unseen_ns: None,
        }),
        _ => None,
    };
    let verdict = Verdict {
        look: &look,
        cause,
        kind,
        schedule,
    };
    let location = match stall.task_name.as_str() {
        "" => stall.site.as_str(),
        name => stall
            .site
            .strip_suffix(&format!(" {name:?}"))
            .unwrap_or(&stall.site),
    };
    let message = verdict.message(&Held {
        task_id: stall.task_id,
        task_name: &stall.task_name,
        site: location,
        thread: &stall.thread,
        worker_index: stall.worker_index.and_then(|w| usize::try_from(w).ok()),
        duration_ns: stall.duration_ns,
        ended: stall.ended,
    });
    stall.suggestion = verdict.suggestion();
    stall.dropping = verdict.dropped_type().map(str::to_owned);
    stall.message = message;
    stall.kind = kind.as_str().to_owned();
    stall.cause = cause.as_str().to_owned();
    stall.call_site_missing = look
        .call_site
        .is_none()
        .then(|| look.missing.map(|m| m.as_str().to_owned()))
        .flatten();
    stall.call_site = look.call_site;
    stall.call_site_path = look.call_site_path;
    stall.call_function = look.function;
    stall.blocking_call = look.api;
    stall.dependency_call = look.dependency;
    stall.backtrace = look.backtrace;
    true
}

/// What the report says the thread's state showed, as a look without a stack.
fn look_of(stall: &Stall) -> Look {
    let mut look = Look {
        missing: Some(Missing::NoStack),
        ..Look::default()
    };
    look.state = run_state(&stall.state);
    look.observed.run = look.state.map(crate::look::run_of).unwrap_or_default();
    look.syscall.clone_from(&stall.syscall);
    look.observed.syscall.clone_from(&stall.syscall);
    look.blocked_on.clone_from(&stall.blocked_on);
    look.observed.target = stall.blocked_on.as_deref().map(target_kind_of);
    look.capture_ns = stall.capture_ns;
    look.in_local_set = stall.harm.as_ref().is_some_and(|h| h.local_set);
    look
}

/// A state as reports write it (see [`crate::look::state_text`]), read back.
pub fn run_state(text: &str) -> Option<RunState> {
    [
        RunState::Running,
        RunState::Sleeping,
        RunState::DiskWait,
        RunState::Stopped,
        RunState::Zombie,
    ]
    .into_iter()
    .find(|s| s.to_string() == text)
    .or_else(|| {
        let letter = text.strip_prefix("state ")?;
        let mut chars = letter.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Some(RunState::Other(c)),
            _ => None,
        }
    })
}

/// What a target, as reports write it (`Target`'s display), is.
pub fn target_kind_of(text: &str) -> TargetKind {
    if ["TCP ", "UDP ", "Unix socket ", "socket "]
        .iter()
        .any(|p| text.starts_with(p))
    {
        TargetKind::Socket
    } else if text.starts_with("a lock or condition variable") {
        TargetKind::Futex
    } else if text == "a sleep" {
        TargetKind::Sleep
    } else if text.starts_with("the memory-map lock") {
        TargetKind::MemoryMap
    } else if text.starts_with("pipe:[") {
        TargetKind::Pipe
    } else if text.starts_with("fd ") && text.ends_with(')') {
        TargetKind::Other
    } else {
        TargetKind::File
    }
}

#[cfg(test)]
mod tests {
    use pollwatch_capture::Target;

    use super::*;
    use crate::look::target_kind;

    /// The report format's example, whose one stall was judged live with line tables.
    fn example() -> Report {
        serde_json::from_str(include_str!(
            "../../pollwatch-report/src/example-report.json"
        ))
        .unwrap()
    }

    /// The example as a stripped build would have written it: its frames addresses of one
    /// module, no call site, counted under `unknown`.
    fn stripped(report: &Report) -> Report {
        let mut stripped = report.clone();
        let stall = &mut stripped.stalls[0];
        for (i, frame) in stall.backtrace.iter_mut().enumerate() {
            *frame = Frame {
                function: format!("{:#x}", 0x5555_0000 + i),
                file: None,
                line: None,
                module: Some(FrameModule {
                    path: "/srv/app".into(),
                    build_id: Some("ab12cd34".into()),
                    address: 0x1000 * (i as u64 + 1),
                }),
            };
        }
        stall.call_site = None;
        stall.call_site_path = None;
        stall.call_function = None;
        stall.blocking_call = None;
        stall.call_site_missing = Some("no_symbols".into());
        stall.message = "(stripped)".into();
        stripped.sites[0].call_sites[0].call_site = "unknown".into();
        stripped.sites[0].call_sites[0].blocking_call = None;
        stripped
    }

    /// Resolves the stripped example's addresses to the example's own frames.
    fn resolver(report: &Report) -> impl FnMut(&FrameModule) -> Option<Vec<Frame>> {
        let frames = report.stalls[0].backtrace.clone();
        move |module| {
            if module.build_id.as_deref() != Some("ab12cd34") {
                return None;
            }
            let i = usize::try_from(module.address / 0x1000)
                .ok()?
                .checked_sub(1)?;
            Some(vec![frames.get(i)?.clone()])
        }
    }

    #[test]
    fn a_stripped_stall_symbolized_says_what_the_live_judgement_said() {
        let live = example();
        let mut report = stripped(&live);
        let done = rejudge_report(&mut report, &mut resolver(&live));
        assert_eq!(
            done,
            Rejudged {
                stalls: 1,
                with_call_site: 1,
                unmatched: 0
            }
        );
        let (after, before) = (&report.stalls[0], &live.stalls[0]);
        assert_eq!(after.call_site, before.call_site);
        assert_eq!(after.call_function, before.call_function);
        assert_eq!(after.blocking_call, before.blocking_call);
        assert_eq!(after.cause, before.cause);
        assert_eq!(after.suggestion, before.suggestion);
        assert_eq!(after.message, before.message);
        assert_eq!(after.call_site_missing, None);
        // The frames keep their addresses; the site's count moved to the call site.
        assert!(after.backtrace.iter().all(|f| f.module.is_some()));
        assert_eq!(report.sites[0].call_sites, live.sites[0].call_sites);
    }

    #[test]
    fn a_stall_no_debug_info_fits_is_left_as_it_was() {
        let live = example();
        let mut report = stripped(&live);
        let untouched = report.clone();
        let done = rejudge_report(&mut report, &mut |_: &FrameModule| None);
        assert_eq!(done.unmatched, 1);
        assert_eq!(report, untouched);
    }

    #[test]
    fn a_descheduled_stall_stays_descheduled_when_its_stack_shows_cpu_work() {
        let mut live = example();
        let stall = &mut live.stalls[0];
        // CPU work in the application's function: no call below it.
        stall
            .backtrace
            .retain(|f| f.file.as_deref().is_some_and(|f| f.starts_with("src/")));
        stall.state = RunState::Running.to_string();
        stall.syscall = None;
        stall.blocked_on = None;
        stall.cause = Cause::Descheduled.as_str().into();
        stall.run_ns = Some(2_000_000);
        stall.runqueue_wait_ns = Some(30_000_000);
        let mut report = stripped(&live);
        rejudge_report(&mut report, &mut resolver(&live));
        let after = &report.stalls[0];
        assert_eq!(after.call_site.as_deref(), Some("src/store.rs:17"));
        assert_eq!(after.cause, "descheduled");
        assert!(
            after.message.contains("waited 30.0ms for a CPU"),
            "{}",
            after.message
        );
        assert!(
            after.suggestion.starts_with("No code fix"),
            "{}",
            after.suggestion
        );
    }

    #[test]
    fn every_target_reads_back_as_its_kind() {
        let targets = [
            Target::File {
                fd: 3,
                path: "/data/users.json".into(),
            },
            Target::Pipe {
                fd: 4,
                link: "pipe:[123]".into(),
            },
            Target::Socket {
                fd: 5,
                protocol: "tcp",
                local: "127.0.0.1:1".into(),
                peer: Some("127.0.0.1:2".into()),
            },
            Target::Socket {
                fd: 5,
                protocol: "unix",
                local: "/run/app.sock".into(),
                peer: None,
            },
            Target::Socket {
                fd: 5,
                protocol: "udp6",
                local: "[::1]:1".into(),
                peer: None,
            },
            Target::Futex { addr: 0x7f00 },
            Target::Sleep,
            Target::MemoryMapLock { others: vec![] },
            Target::MemoryMapLock {
                others: vec![pollwatch_capture::ThreadInCall {
                    tid: 12,
                    name: "pollwatch-report".into(),
                    syscall: "munmap",
                }],
            },
            Target::Fd {
                fd: 9,
                link: "anon_inode:[eventpoll]".into(),
            },
        ];
        for target in targets {
            assert_eq!(
                target_kind_of(&target.to_string()),
                target_kind(&target),
                "{target}"
            );
        }
    }

    #[test]
    fn every_state_reads_back() {
        for state in [
            RunState::Running,
            RunState::Sleeping,
            RunState::DiskWait,
            RunState::Stopped,
            RunState::Zombie,
            RunState::Other('X'),
        ] {
            assert_eq!(run_state(&state.to_string()), Some(state));
        }
        assert_eq!(run_state("unknown"), None);
    }

    #[test]
    fn every_cause_reads_back() {
        for cause in Cause::ALL {
            assert_eq!(Cause::from_name(cause.as_str()), Some(cause));
        }
        assert_eq!(Cause::from_name("various"), None);
    }
}

//! A site's stalls: the blocking call sites counted over every stall, and the stalls the report
//! lists, each with what the thread was doing and its backtrace folded in a `<details>` (which
//! opens without script).
//!
//! Stalls at one call site often have the very same backtrace; within a table each distinct
//! backtrace is written once, and later stalls with it point back to the first (stalls are
//! numbered in the table), which keeps a report's 256 stalls from repeating the same frames.
//!
//! A stall belongs to a site when [`Stall::site`] equals the site's [`SiteReport::label`]
//! (the report model stores the label, `file:line:col "name"`, in both).
//!
//! Call sites, blocking calls, what a thread was blocked on, spans and backtrace frames are
//! written with [`path`] (function names, and the suggestions that name them, with [`symbol`]),
//! so they wrap only after a `/` (or a `::`), never inside a name or between a file and its
//! line; both tables sit in a `div.wide` that scrolls sideways on a page too narrow for them.

use std::fmt::Write as _;

use pollwatch_report::units::format_duration_ns;
use pollwatch_report::{CallSiteCount, Frame, SiteReport, Stall, StallSample};

use super::escape::{path, symbol, text};
use crate::table::plural;

/// The stalls of `stalls` that belong to `site`, in report order (oldest first).
pub(crate) fn of_site<'a>(stalls: &'a [Stall], site: &SiteReport) -> Vec<&'a Stall> {
    stalls.iter().filter(|s| s.site == site.label).collect()
}

/// The table of a site's blocking call sites, most frequent first; empty when there are none.
pub(crate) fn call_sites(call_sites: &[CallSiteCount]) -> String {
    if call_sites.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<div class=\"wide\"><table class=\"call-sites\"><thead><tr><th>blocking call site</th>\
         <th>blocking call</th>\
         <th>cause</th><th class=\"num\">stalls</th></tr></thead><tbody>\n",
    );
    for c in call_sites {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            path(&c.call_site),
            code_or_dash(c.blocking_call.as_deref()),
            text(&c.cause),
            c.count
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The table of `stalls`, one row each and a row with its backtrace (and later looks) folded
/// below it. `counted` is how many stalls the site counted, to say when the report kept fewer.
pub(crate) fn table(stalls: &[&Stall], counted: u64) -> String {
    let listed = stalls.len() as u64;
    if listed == 0 {
        return if counted == 0 {
            "<p class=\"no-stalls\">No stalls.</p>\n".to_owned()
        } else {
            format!(
                "<p class=\"no-stalls\">{counted} stalls counted; none of them is among the \
                 most recent the report keeps.</p>\n"
            )
        };
    }
    let mut out = String::new();
    if counted > listed {
        let _ = writeln!(
            out,
            "<p class=\"note\">{listed} of {counted} stalls listed (the report keeps the most \
             recent).</p>"
        );
    }
    out.push_str(
        "<div class=\"wide\"><table class=\"stalls\"><thead><tr><th class=\"num\">#</th>\
         <th>held for</th><th>cause</th><th>state</th>\
         <th>blocked on</th><th>call site</th><th>suggestion</th><th>span</th><th>task</th>\
         </tr></thead><tbody>\n",
    );
    // The distinct backtraces written so far, with the number of the stall that has them.
    let mut written: Vec<(&[Frame], usize)> = Vec::new();
    for (i, s) in stalls.iter().enumerate() {
        let number = i + 1;
        let same_as = written
            .iter()
            .find(|(frames, _)| *frames == s.backtrace.as_slice())
            .map(|(_, n)| *n);
        if same_as.is_none() && !s.backtrace.is_empty() {
            written.push((&s.backtrace, number));
        }
        row(&mut out, s, number, same_as);
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The row of stall `number`, and the row of its backtrace when it has one (or, with
/// `same_as`, the number of the stall above whose backtrace it shares).
fn row(out: &mut String, s: &Stall, number: usize, same_as: Option<usize>) {
    summary_row(out, s, number);
    detail_row(out, s, same_as);
}

/// The row that says how long stall `number` held its thread, why, where, and in which task.
fn summary_row(out: &mut String, s: &Stall, number: usize) {
    let running = if s.ended { "" } else { " (still running)" };
    let state = state_cell(&s.state, s.syscall.as_deref());
    let call_site = call_site_cell(s);
    let task = task_cell(s);
    let when = phrases(&[
        format!("began at {}", format_duration_ns(s.started_at_ns)),
        format!("caught after {}", format_duration_ns(s.detected_after_ns)),
    ]);
    let cpu = s.cpu_ns.map_or(String::new(), |cpu| {
        format!(
            "<br/><span class=\"nw\">cpu {} after detection</span>",
            format_duration_ns(cpu)
        )
    });
    let harm = s.harm.as_ref().map_or(String::new(), |harm| {
        let waiting = harm.tasks_waiting();
        format!(
            "<br/><span class=\"harm\">{}</span>",
            phrases(&[
                format!("task delay {}", format_duration_ns(harm.delay_task_ns)),
                format!("up to {waiting} tasks waiting"),
            ])
        )
    });
    let _ = writeln!(
        out,
        "<tr class=\"stall\"><td class=\"num\">{number}</td><td class=\"num held\">\
         <strong>{}</strong>{running}<br/>\
         <span class=\"dim\">{when}</span>{cpu}{harm}</td><td>{}</td><td>{state}</td>\
         <td>{}</td><td>{call_site}</td><td>{}</td><td>{}</td><td>{task}<br/>\
         <span class=\"dim\">on {}</span></td></tr>",
        format_duration_ns(s.duration_ns),
        text(&s.cause),
        code_or_dash(s.blocked_on.as_deref()),
        symbol(&s.suggestion),
        code_or_dash(s.span.as_deref()),
        path(&s.thread),
    );
}

/// `parts` (already markup) joined by ` · `, each kept on one line with the dot after it: a
/// narrow cell wraps between the parts, never inside one or before a dot.
fn phrases(parts: &[String]) -> String {
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let dot = if i < last { " ·" } else { "" };
            format!("<span class=\"nw\">{part}{dot}</span>")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The thread's scheduler state, with the system call it was in when known.
fn state_cell(state: &str, syscall: Option<&str>) -> String {
    match syscall {
        Some(syscall) => format!("{} in <code>{}</code>", text(state), text(syscall)),
        None => text(state),
    }
}

/// Where the stall blocked: the call site and the blocking call, whichever are known.
fn call_site_cell(s: &Stall) -> String {
    match (&s.call_site, &s.blocking_call) {
        (Some(site), Some(call)) => {
            format!(
                "<code>{}</code><br/><code>{}</code>",
                path(site),
                path(call)
            )
        }
        (Some(site), None) => format!("<code>{}</code>", path(site)),
        (None, Some(call)) => format!("<code>{}</code>", path(call)),
        (None, None) => "unknown".to_owned(),
    }
}

/// The stalled task: its name when it has one, and its id.
fn task_cell(s: &Stall) -> String {
    if s.task_name.is_empty() {
        format!("#{}", s.task_id)
    } else {
        format!("{} #{}", path(&s.task_name), s.task_id)
    }
}

/// `value` as code that wraps only after a path separator, or a dash when there is none.
fn code_or_dash(value: Option<&str>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("<code>{}</code>", path(v)))
}

/// The folded row below a stall with its backtrace (or, with `same_as`, a pointer to the stall
/// above that has the same one) and its later looks; nothing when it has neither.
fn detail_row(out: &mut String, s: &Stall, same_as: Option<usize>) {
    if s.backtrace.is_empty() && s.samples.is_empty() {
        return;
    }
    out.push_str("<tr class=\"stall-detail\"><td></td><td colspan=\"8\">");
    match same_as {
        Some(first) => {
            let _ = write!(
                out,
                "<span class=\"dim\">backtrace ({}) as for stall {first} above</span>",
                plural(s.backtrace.len() as u64, "frame")
            );
        }
        None if !s.backtrace.is_empty() => backtrace(out, &s.backtrace),
        None => {}
    }
    if !s.samples.is_empty() {
        later_looks(out, &s.samples);
    }
    out.push_str("</td></tr>\n");
}

/// What the thread was seen doing after the stall was caught, folded in `<details>`.
fn later_looks(out: &mut String, samples: &[StallSample]) {
    let _ = write!(
        out,
        "<details><summary>later looks ({})</summary><ul class=\"samples\">",
        samples.len()
    );
    for look in samples {
        let _ = write!(
            out,
            "<li>at {}: {}{}{}</li>",
            format_duration_ns(look.at_ns),
            text(&look.state),
            look.syscall
                .as_deref()
                .map_or(String::new(), |c| format!(" in <code>{}</code>", text(c))),
            look.call_site
                .as_deref()
                .map_or(String::new(), |c| format!(" at <code>{}</code>", path(c))),
        );
    }
    out.push_str("</ul></details>");
}

/// A backtrace folded in `<details>`, innermost frame first.
fn backtrace(out: &mut String, stack: &[Frame]) {
    let _ = write!(
        out,
        "<details><summary>backtrace ({})</summary><ol class=\"backtrace\">",
        plural(stack.len() as u64, "frame")
    );
    for f in stack {
        let location = match (&f.file, f.line) {
            (Some(file), Some(line)) => {
                format!(
                    " <span class=\"dim\">{}</span>",
                    path(&format!("{file}:{line}"))
                )
            }
            (Some(file), None) => format!(" <span class=\"dim\">{}</span>", path(file)),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<li><code>{}</code>{location}</li>",
            symbol(&f.function)
        );
    }
    out.push_str("</ol></details>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stall() -> Stall {
        Stall {
            task_id: 7,
            task_name: "<t>".into(),
            site: "s".into(),
            thread: "w".into(),
            worker_index: None,
            tid: 1,
            started_at_ns: 1,
            detected_after_ns: 2,
            detection_lag_ns: 0,
            duration_ns: 3,
            ended: false,
            cpu_ns: None,
            run_ns: None,
            runqueue_wait_ns: None,
            throttled_ns: None,
            state: "sleeping".into(),
            syscall: Some("futex".into()),
            blocked_on: None,
            cause: "lock".into(),
            call_site: Some("src/a.rs:3".into()),
            call_site_path: None,
            call_function: None,
            call_site_missing: None,
            blocking_call: None,
            dependency_call: None,
            kind: "poll".into(),
            dropping: None,
            suggestion: "Use tokio::sync::Mutex & friends.".into(),
            span: None,
            backtrace: vec![Frame {
                function: "a::<b>".into(),
                file: None,
                line: None,
                module: None,
            }],
            capture_ns: None,
            samples: Vec::new(),
            harm: None,
            message: String::new(),
        }
    }

    #[test]
    fn a_stall_shows_its_call_site_and_its_backtrace_folded() {
        let s = stall();
        let html = table(&[&s], 3);
        assert!(html.contains("1 of 3 stalls listed"));
        assert!(html.contains("<code>src/<wbr/>a.rs:3</code>"));
        assert!(html.contains("<summary>backtrace (1 frame)</summary>"));
        assert!(html.contains("a::<wbr/>&lt;b&gt;"));
        assert!(html.contains("&amp; friends"));
        assert!(html.contains("still running"));
    }

    #[test]
    fn a_backtrace_seen_above_is_not_repeated() {
        let (a, mut b) = (stall(), stall());
        b.task_id = 8;
        let html = table(&[&a, &b], 2);
        assert_eq!(html.matches("<details>").count(), 1);
        assert!(html.contains("backtrace (1 frame) as for stall 1 above"));
    }

    #[test]
    fn a_site_without_stalls_says_so() {
        assert!(table(&[], 0).contains("No stalls."));
        assert!(call_sites(&[]).is_empty());
    }
}

//! What `pollwatch attach` shows while it watches: on a terminal, a compact view redrawn
//! every half second, like `top` (the workers held now, then the stalls so far by blocking
//! call site); otherwise (`--no-tui`, or output not a terminal) one plain line per stall when
//! it is caught and when it ends.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use pollwatch_judge::location::Roots;
use pollwatch_report::units::format_duration_ns;

use super::report::message;
use super::watch::Stall;

/// How often the live view is redrawn.
pub(crate) const REDRAW: Duration = Duration::from_millis(500);

/// The most call sites the live view lists.
const TOP: usize = 10;

/// One plain line for a stall caught or ended.
pub(crate) fn line(stall: &Stall, roots: &Roots, started: Instant) -> String {
    let at = stall.since.saturating_duration_since(started);
    let what = if stall.ended { "ended" } else { "caught" };
    format!(
        "[{:>8}] {what}: {}",
        format_duration_ns(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)),
        message(stall, roots)
    )
}

/// The live view's text: a header, the workers held now, the stalls so far by call site.
pub(crate) fn screen(header: &str, stalls: &[Stall], roots: &Roots, now: Instant) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out);
    let held: Vec<&Stall> = stalls.iter().filter(|s| !s.ended).collect();
    let _ = writeln!(out, "held now ({}):", held.len());
    for stall in &held {
        let so_far = now.saturating_duration_since(stall.since);
        let _ = writeln!(
            out,
            "  {:>8}  {}",
            format_duration_ns(u64::try_from(so_far.as_nanos()).unwrap_or(u64::MAX)),
            message(stall, roots)
        );
    }
    let _ = writeln!(out);
    let mut groups: Vec<(String, Option<String>, u64, Duration, String)> = Vec::new();
    for stall in stalls {
        let look = &stall.look;
        let site = look
            .call_site
            .clone()
            .or_else(|| look.function.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        match groups.iter_mut().find(|g| g.0 == site && g.1 == look.api) {
            Some(group) => {
                group.2 += 1;
                group.3 = group.3.max(stall.held);
            }
            None => groups.push((
                site,
                look.api.clone(),
                1,
                stall.held,
                super::report::suggestion(stall),
            )),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.2));
    let _ = writeln!(
        out,
        "stalls by blocking call site ({} stalls, {} call sites):",
        stalls.len(),
        groups.len()
    );
    for (site, api, count, longest, fix) in groups.iter().take(TOP) {
        let api = api.as_deref().map(|a| format!(" {a}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {count:>5}x {site}{api}  longest {}",
            format_duration_ns(u64::try_from(longest.as_nanos()).unwrap_or(u64::MAX))
        );
        let _ = writeln!(out, "          fix: {fix}");
    }
    out
}

/// Redraws the terminal with `text`.
pub(crate) fn redraw(text: &str) {
    let mut out = std::io::stdout().lock();
    // Home, clear the screen, then the text.
    let _ = write!(out, "\x1b[H\x1b[2J{text}");
    let _ = out.flush();
}

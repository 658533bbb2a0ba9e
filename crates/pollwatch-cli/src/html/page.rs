//! The page around the charts: the document and its stylesheet, the header (run, totals,
//! diagnostics), the table of sites by time held, the sites by harm, one section per site, and
//! at the end what was dropped (only the counters above zero).
//!
//! The page is polyglot: an HTML5 document that is also well-formed XML (every element
//! closed, attributes quoted, all report text escaped by [`text`]), so both browsers
//! and XML tools read it. It has an inline stylesheet and nothing else: no script, no fonts or
//! images fetched.
//!
//! Paths and call sites never wrap inside a name: they are written with [`path`], which lets
//! a line break only after `/` or `\` and keeps hyphenated words in a `span.nw` (so
//! `db.rs:71` and `pollwatch-cli` stay whole); the stylesheet breaks code only where a word
//! overflows a block (`overflow-wrap: break-word`, for which a table column widens instead,
//! unlike `anywhere`); and the wide tables sit in a `div.wide` that scrolls sideways rather
//! than squeezing them.

use std::fmt::Write as _;

use pollwatch_report::hlog::Log;
use pollwatch_report::units::format_duration_ns;
use pollwatch_report::{Report, SiteReport};

use super::escape::{path, text};
use super::{percentiles, stalls, timeline};
use crate::table::plural;

/// The page's stylesheet.
const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222;
  margin: 0 auto; padding: 0 24px 48px; max-width: 1180px; }
h1 { font-size: 22px; margin: 20px 0 4px; overflow-wrap: break-word; }
h2 { font-size: 17px; margin: 0 0 6px; overflow-wrap: break-word; }
h3 { font-size: 14px; margin: 18px 0 6px; color: #444; }
code { font: 12px ui-monospace, 'SF Mono', Menlo, Consolas, monospace;
  overflow-wrap: break-word; }
h2 code { font-size: 16px; }
table { border-collapse: collapse; margin: 6px 0; }
div.wide { overflow-x: auto; max-width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e5e5e5; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.meta, .dim, .note { color: #666; }
.nonzero td { color: #b03a2e; font-weight: 600; }
section.site, section.overview, footer { border-top: 2px solid #ddd; padding-top: 14px;
  margin-top: 26px; }
svg.chart { display: block; margin: 4px 0; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; }
svg text.axis-title, svg text.summary { font-size: 12px; }
svg text.message { font-size: 14px; }
table.stalls td { font-size: 13px; }
td.held { white-space: normal; }
.nw { white-space: nowrap; }
tr.stall-detail td { border-bottom: 1px solid #ccc; padding-bottom: 8px; }
ol.backtrace { margin: 4px 0; padding-left: 28px; }
td.bar { width: 240px; }
div.bar { height: 10px; background: #b03a2e; margin-top: 4px; }
.harm { color: #b03a2e; }
ul.diagnostics li { color: #8a5a00; }
details summary { cursor: pointer; color: #1f5fa8; }
a { text-underline-offset: 0.3em; }
@media (max-width: 900px) { body { padding: 0 12px 36px; } th, td { padding: 3px 5px; } }
";

/// The whole page.
pub(crate) fn document(report: &Report, log: Option<&Log>, title: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n\
         <meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>pollwatch: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        text(title)
    );
    header(&mut out, report, log, title);
    summary(&mut out, report);
    harm(&mut out, report);
    if let Some(log) = log {
        let all = timeline::chart(
            log.series(None),
            report.threshold_ns,
            "chart timeline all-sites",
            "Poll time over the run, all sites",
        );
        if let Some(chart) = all {
            out.push_str("<section class=\"overview\">\n<h2>All sites over the run</h2>\n");
            out.push_str(&chart);
            out.push_str("</section>\n");
        }
    }
    for site in &report.sites {
        section(&mut out, report, log, site);
    }
    other_stalls(&mut out, report);
    dropped(&mut out, report);
    out.push_str("</body>\n</html>\n");
    out
}

/// The run, its totals and the diagnostics, with a link to what was dropped when anything was.
fn header(out: &mut String, report: &Report, log: Option<&Log>, title: &str) {
    let t = &report.totals;
    let nonzero: Vec<&str> = dropped_counters(report)
        .iter()
        .filter(|(_, n, _)| *n > 0)
        .map(|(name, _, _)| *name)
        .collect();
    let dropped = if nonzero.is_empty() {
        String::new()
    } else {
        format!(
            " · <a href=\"#dropped\">dropped: {}</a>",
            nonzero.join(", ")
        )
    };
    let _ = write!(
        out,
        "<header>\n<h1>{}</h1>\n<p class=\"meta\">pollwatch {} · report taken {} · observed for \
         {} · slow-poll threshold {}{dropped}</p>\n",
        path(title),
        text(&report.pollwatch_version),
        utc(report.taken_at_unix_ms),
        format_duration_ns(report.uptime_ns),
        format_duration_ns(report.threshold_ns),
    );
    let _ = writeln!(
        out,
        "<table class=\"totals\"><thead><tr><th class=\"num\">polls</th>\
         <th class=\"num\">slow polls</th><th class=\"num\">stalls</th>\
         <th class=\"num\">time in polls</th><th class=\"num\">tasks spawned</th>\
         <th class=\"num\">sites</th><th class=\"num\">threads</th></tr></thead><tbody><tr>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td></tr></tbody></table>",
        t.polls,
        t.slow_polls,
        t.stalls,
        format_duration_ns(t.busy_ns),
        t.tasks_spawned,
        report.sites.len(),
        t.threads,
    );
    if !report.diagnostics.is_empty() {
        out.push_str("<h3>Diagnostics</h3>\n<ul class=\"diagnostics\">\n");
        for d in &report.diagnostics {
            let _ = writeln!(out, "<li>{}</li>", text(d));
        }
        out.push_str("</ul>\n");
    }
    match log {
        None => out.push_str(
            "<p class=\"note\">No interval log (report.hlog) was read: poll time over the run \
             is not shown.</p>\n",
        ),
        Some(log) if log.truncated_tail => out.push_str(
            "<p class=\"note\">The interval log's last line was cut short (the process stopped \
             while writing it) and is left out.</p>\n",
        ),
        Some(_) => {}
    }
    out.push_str("</header>\n");
}

/// The report's `dropped` counters: name, count and what a count means.
fn dropped_counters(report: &Report) -> [(&'static str, u64, &'static str); 8] {
    let d = &report.dropped;
    [
        (
            "tasks_in_overflow_site",
            d.tasks_in_overflow_site,
            "tasks counted in the overflow site (the site table was full)",
        ),
        (
            "slow_poll_events",
            d.slow_poll_events,
            "slow polls counted but not reported as events",
        ),
        (
            "polls_nested_too_deep",
            d.polls_nested_too_deep,
            "polls nested too deep to be timed",
        ),
        (
            "values_clamped",
            d.values_clamped,
            "polls longer than 1h, recorded as 1h",
        ),
        (
            "stall_warnings_suppressed",
            d.stall_warnings_suppressed,
            "warnings not emitted because of the rate limit",
        ),
        (
            "stall_samples",
            d.stall_samples,
            "stall samples lost (the watchdog's queue was full)",
        ),
        (
            "report_writes_failed",
            d.report_writes_failed,
            "times the report files could not be written",
        ),
        (
            "host_panics",
            d.host_panics,
            "panics caught on pollwatch's threads (see the diagnostics)",
        ),
    ]
}

/// At the end of the page, the `dropped` counters above zero, one row each, or one line saying
/// nothing was dropped.
fn dropped(out: &mut String, report: &Report) {
    let counters = dropped_counters(report);
    let mut nonzero = counters.iter().filter(|(_, n, _)| *n > 0).peekable();
    if nonzero.peek().is_none() {
        out.push_str(
            "<footer id=\"dropped\">\n<p class=\"note\">Nothing dropped.</p>\n</footer>\n",
        );
        return;
    }
    out.push_str(
        "<footer id=\"dropped\">\n<h2>Dropped</h2>\n<p class=\"note\">What the report counted \
         but could not keep or show in full (counters that stayed at zero are left out).</p>\n\
         <table class=\"dropped\"><tbody>\n",
    );
    for (name, n, meaning) in nonzero {
        let _ = writeln!(
            out,
            "<tr class=\"nonzero\"><td><code>{name}</code></td><td class=\"num\">{n}</td>\
             <td>{meaning}</td></tr>"
        );
    }
    out.push_str("</tbody></table>\n</footer>\n");
}

/// The sites by time held, each linking to its section.
fn summary(out: &mut String, report: &Report) {
    out.push_str("<h2 id=\"sites\">Sites by time held</h2>\n");
    if report.sites.is_empty() {
        out.push_str("<p class=\"note\">No sites: nothing was polled.</p>\n");
        return;
    }
    out.push_str(
        "<div class=\"wide\"><table class=\"summary\"><thead><tr><th>site</th><th>kind</th>\
         <th class=\"num\">time held</th><th class=\"num\">polls</th><th class=\"num\">slow</th>\
         <th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th>\
         <th class=\"num\">p99.9</th><th class=\"num\">max</th><th class=\"num\">stalls</th>\
         </tr></thead><tbody>\n",
    );
    let mut sites: Vec<&SiteReport> = report.sites.iter().collect();
    sites.sort_by_key(|s| std::cmp::Reverse(s.busy_ns));
    for s in sites {
        let p = &s.percentiles;
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#site-{}\"><code>{}</code></a></td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            s.id,
            path(&s.label),
            text(&s.kind),
            format_duration_ns(s.busy_ns),
            s.polls,
            s.slow_polls,
            format_duration_ns(p.p50_ns),
            format_duration_ns(p.p90_ns),
            format_duration_ns(p.p99_ns),
            format_duration_ns(p.p999_ns),
            format_duration_ns(s.max_ns),
            s.stalls,
        );
    }
    out.push_str("</tbody></table></div>\n");
}

/// The sites whose stalls delayed the tasks waiting behind them, most task delay first, each
/// with a bar to scale; nothing when no stall delayed a task.
fn harm(out: &mut String, report: &Report) {
    let mut sites: Vec<&SiteReport> = report
        .sites
        .iter()
        .filter(|s| s.delay_task_ns > 0 || s.delay_unknown_stalls > 0)
        .collect();
    let Some(most) = sites.iter().map(|s| s.delay_task_ns.max(1)).max() else {
        return;
    };
    sites.sort_by_key(|s| std::cmp::Reverse(s.delay_task_ns));
    out.push_str(
        "<h2 id=\"harm\">Sites by harm</h2>\n<p class=\"note\">The scheduling delay each \
         site's stalls added to the tasks ready to run behind them (task delay: 1s is one task \
         held up for a second, or ten for 100ms), from the runtime's queues read while each \
         stall ran. Fix the top ones first.</p>\n\
         <div class=\"wide\"><table class=\"summary harm\"><thead><tr><th>site</th>\
         <th class=\"num\">task delay</th>\
         <th></th><th class=\"num\">stalls</th><th class=\"num\">per stall</th>\
         <th class=\"num\">time held</th></tr></thead><tbody>\n",
    );
    for s in sites {
        // Whole percent of the largest, at least 1 so every listed site shows a bar.
        let width = (s.delay_task_ns.saturating_mul(100) / most).max(1);
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#site-{}\"><code>{}</code></a></td><td class=\"num\">{}</td>\
             <td class=\"bar\"><div class=\"bar\" style=\"width: {width}%\"></div></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            s.id,
            path(&s.label),
            pollwatch_report::text::site_delay(s),
            s.stalls,
            format_duration_ns(s.delay_task_ns / s.stalls.max(1)),
            format_duration_ns(s.busy_ns),
        );
    }
    out.push_str("</tbody></table></div>\n");
}

/// One site's section: its figures, its two charts and its stalls.
fn section(out: &mut String, report: &Report, log: Option<&Log>, site: &SiteReport) {
    let name = if site.name.is_empty() {
        String::new()
    } else {
        format!(" · named <code>{}</code>", text(&site.name))
    };
    let _ = write!(
        out,
        "<section id=\"site-{}\" class=\"site\">\n<h2><code>{}</code></h2>\n<p class=\"meta\">{}\
         {name} · {} spawned · {} · {} slow · {} held · {} dropped in {} · {} · {} \
         suppressed · <a href=\"#sites\">back to sites</a></p>\n",
        site.id,
        path(&site.label),
        text(&site.kind),
        plural(site.tasks_spawned, "task"),
        plural(site.polls, "poll"),
        site.slow_polls,
        format_duration_ns(site.busy_ns),
        site.drops,
        format_duration_ns(site.drop_ns),
        plural(site.stalls, "stall"),
        plural(site.warnings_suppressed, "warning"),
    );
    out.push_str("<h3>Poll time by percentile</h3>\n");
    out.push_str(&percentiles::chart(site, report.threshold_ns));
    out.push_str("<h3>Poll time over the run</h3>\n");
    let chart = log.and_then(|log| {
        timeline::chart(
            log.series(Some(&site.label)),
            report.threshold_ns,
            "chart timeline",
            &format!("Poll time over the run: {}", site.label),
        )
    });
    match (chart, log) {
        (Some(chart), _) => out.push_str(&chart),
        (None, None) => out.push_str(
            "<p class=\"no-timeline\">No interval log was read, so there is no poll time over \
             the run.</p>\n",
        ),
        (None, Some(_)) => out.push_str(
            "<p class=\"no-timeline\">The interval log has no intervals for this site (it was \
             not polled while the log was written).</p>\n",
        ),
    }
    out.push_str("<h3>Stalls</h3>\n");
    out.push_str(&stalls::call_sites(&site.call_sites));
    out.push_str(&stalls::table(
        &stalls::of_site(&report.stalls, site),
        site.stalls,
    ));
    out.push_str("</section>\n");
}

/// Stalls whose site is not among the report's sites (a report edited by hand, or a site
/// table that changed); listed so that none goes missing.
fn other_stalls(out: &mut String, report: &Report) {
    let others: Vec<_> = report
        .stalls
        .iter()
        .filter(|s| report.sites.iter().all(|site| site.label != s.site))
        .collect();
    if others.is_empty() {
        return;
    }
    out.push_str(
        "<section id=\"other-stalls\" class=\"overview\">\n<h2>Stalls at sites not in the \
         report</h2>\n",
    );
    let mut sites: Vec<&str> = others.iter().map(|s| s.site.as_str()).collect();
    sites.dedup();
    let _ = writeln!(
        out,
        "<p class=\"meta\">sites: {}</p>",
        sites
            .iter()
            .map(|s| format!("<code>{}</code>", path(s)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(&stalls::table(&others, others.len() as u64));
    out.push_str("</section>\n");
}

/// Milliseconds since the Unix epoch as `2023-11-14 22:13:20 UTC`.
fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        // Far-future or corrupt times still format.
        assert!(utc(u64::MAX).ends_with("UTC"));
    }
}

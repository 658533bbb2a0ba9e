//! `pollwatch html`: one self-contained HTML page (inline SVG, no JavaScript, no network).
//!
//! The page has a header (the run, its totals, the diagnostics), a table of the sites by time
//! held, the sites by harm, the poll time of all sites over the run, one section per site
//! (`<section id="site-<id>">`, in report order) with
//!
//! 1. the percentile distribution of its poll times, the classic HdrHistogram plot
//!    ([`percentiles`]): exactly one `<svg class="chart percentiles">` per site, even for a
//!    site without polls;
//! 2. its poll time over the run from the interval log ([`timeline`]), or a
//!    `<p class="no-timeline">` saying why there is none;
//! 3. its blocking call sites and stalls, with backtraces folded in `<details>` ([`stalls`]);
//!
//! and at the end the `dropped` counters that are above zero (`Nothing dropped.` when none is),
//! out of the way of the sites a reader came for.
//!
//! The page is HTML5 and well-formed XML at once ([`page`]); charts are hand-written SVG
//! ([`svg`]); every text from the report is escaped ([`escape`]).

mod escape;
mod page;
mod percentiles;
mod stalls;
mod svg;
mod timeline;

#[cfg(test)]
mod wellformed;

use pollwatch_report::{hlog, Report};

/// The page for `report`, with poll time over the run from `log` when there is one. `title`
/// names the run (the directory or file it was read from).
pub(crate) fn render(report: &Report, log: Option<&hlog::Log>, title: &str) -> String {
    page::document(report, log, title)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use pollwatch_report::histogram::{self, new_histogram};
    use pollwatch_report::{json, Stall};

    use super::wellformed::check;
    use super::*;

    fn example() -> Report {
        json::from_str(include_str!(
            "../../../pollwatch-report/src/example-report.json"
        ))
        .unwrap()
    }

    fn demo() -> Report {
        json::from_str(include_str!("../../tests/data/before/report.json")).unwrap()
    }

    fn demo_log() -> hlog::Log {
        hlog::from_str(include_str!("../../tests/data/before/report.hlog")).unwrap()
    }

    /// Asserts what every page must be: balanced, one percentile chart per site, one section
    /// per site, no broken numbers, nothing fetched or run.
    fn assert_sound(page: &str, report: &Report) {
        if let Err(e) = check(page) {
            panic!("not well-formed: {e}\n{page}");
        }
        assert_eq!(
            page.matches("class=\"chart percentiles").count(),
            report.sites.len()
        );
        assert_eq!(page.matches("class=\"site\"").count(), report.sites.len());
        assert!(!page.contains("NaN"), "NaN in the page");
        assert!(!page.contains("inf"), "inf in the page");
        assert!(!page.contains("<script"));
        let urls = page.matches("http://").count() + page.matches("https://").count();
        let namespaces = page.matches("\"http://www.w3.org/2000/svg\"").count()
            + page.matches("\"http://www.w3.org/1999/xhtml\"").count();
        assert_eq!(urls, namespaces, "only namespaces are URLs");
    }

    /// A log of `seconds` one-second intervals for `label`, and the all-sites line.
    fn log_for(label: &str, seconds: u32) -> hlog::Log {
        let mut w =
            hlog::Writer::start(Vec::new(), UNIX_EPOCH + Duration::from_secs(1_700_000_000))
                .unwrap();
        for i in 0..seconds {
            let mut h = new_histogram();
            for v in 1..=100u64 {
                h.saturating_record(v * 10_000 * u64::from(i + 1));
            }
            w.interval(
                Duration::from_secs(u64::from(i)),
                Duration::from_secs(1),
                [(label, &h)],
                &h,
            )
            .unwrap();
        }
        hlog::from_str(std::str::from_utf8(w.get_ref()).unwrap()).unwrap()
    }

    #[test]
    fn the_example_report_is_one_well_formed_page_with_one_chart_per_site() {
        let report = example();
        let page = render(&report, None, "example");
        assert_sound(&page, &report);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<section id=\"site-0\" class=\"site\">"));
        assert!(page.contains("href=\"#site-0\""));
        assert!(page.contains("<footer id=\"dropped\">\n<p class=\"note\">Nothing dropped.</p>"));
        assert!(!page.contains("<table class=\"dropped\">"));
        assert!(!page.contains("href=\"#dropped\""), "no link to nothing");
        assert!(page.contains("class=\"no-timeline\""));
        assert!(page.contains("threshold 10.0ms"));
    }

    #[test]
    fn sites_are_ranked_by_harm_with_bars_to_scale() {
        let mut report = example();
        let mut quiet = report.sites[0].clone();
        quiet.id = 1;
        quiet.label = "src/quiet.rs:3:1".into();
        quiet.delay_task_ns = report.sites[0].delay_task_ns * 4;
        report.sites.push(quiet);
        report.totals.delay_task_ns = report.sites.iter().map(|s| s.delay_task_ns).sum();
        let page = render(&report, None, "harm");
        assert_sound(&page, &report);
        let harm = &page[page.find("<h2 id=\"harm\">").expect("a harm section")..];
        let harm = &harm[..harm.find("</table>").unwrap()];
        let quiet_at = harm.find("src/<wbr/>quiet.rs:3:1").unwrap();
        let ingest_at = harm.find("src/<wbr/>ingest.rs:42:5").unwrap();
        assert!(quiet_at < ingest_at, "most task delay first: {harm}");
        assert!(harm.contains("style=\"width: 100%\""), "{harm}");
        assert!(harm.contains("style=\"width: 25%\""), "{harm}");
        assert!(
            harm.contains(">3.74s<") && harm.contains(">936ms<"),
            "{harm}"
        );
        // And each stall row says what waited behind it.
        assert!(
            page.contains(
                "<span class=\"harm\"><span class=\"nw\">task delay 936ms ·</span> \
                 <span class=\"nw\">up to 3 tasks waiting</span></span>"
            ),
            "{page}"
        );
        // A run without harm has no such section.
        report.sites.iter_mut().for_each(|s| s.delay_task_ns = 0);
        assert!(!render(&report, None, "none").contains("id=\"harm\""));
    }

    #[test]
    fn the_demo_run_has_timelines_and_stalls_with_backtraces() {
        let report = demo();
        let log = demo_log();
        let page = render(&report, Some(&log), "before");
        assert_sound(&page, &report);
        assert!(page.contains("class=\"chart timeline all-sites\""));
        let timelines = page.matches("class=\"chart timeline\"").count();
        let logged = report
            .sites
            .iter()
            .filter(|s| log.series(Some(&s.label)).next().is_some())
            .count();
        assert_eq!(timelines, logged);
        assert_eq!(
            page.matches("class=\"no-timeline\"").count(),
            report.sites.len() - logged
        );
        let stall = report
            .stalls
            .iter()
            .find(|s| s.call_site.is_some() && !s.backtrace.is_empty())
            .unwrap();
        assert!(page.contains(&escape::path(stall.call_site.as_deref().unwrap())));
        assert!(page.contains(&escape::symbol(&stall.backtrace[0].function)));
        assert!(page.contains("<summary>backtrace ("));
        // Every listed stall is in the table of its site.
        assert_eq!(
            page.matches("<tr class=\"stall\">").count(),
            report.stalls.len()
        );
    }

    #[test]
    fn an_empty_report_is_a_page_without_sites() {
        let mut report = example();
        report.sites.clear();
        report.slow_polls.clear();
        let page = render(&report, Some(&hlog::Log::default()), "");
        assert_sound(&page, &report);
        assert!(page.contains("No sites"));
    }

    #[test]
    fn sites_without_polls_or_with_a_broken_histogram_still_get_their_chart() {
        let mut report = example();
        let mut empty = report.sites[0].clone();
        empty.id = 1;
        empty.label = "src/idle.rs:1:1".into();
        empty.polls = 0;
        empty.histogram = String::new();
        empty.percentiles = Default::default();
        let mut broken = empty.clone();
        broken.id = 2;
        broken.label = "src/broken.rs:1:1".into();
        broken.histogram = "not base64!".into();
        report.sites.extend([empty, broken]);
        let page = render(&report, None, "edge");
        assert_sound(&page, &report);
        assert!(page.contains("no polls recorded"));
        assert!(page.contains("no chart: "));
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let mut report = example();
        let label = "src/<script>&\"'.rs:1:1 \"x\u{1}\"";
        report.sites[0].label = label.into();
        report.sites[0].name = "<b>".into();
        report.diagnostics.push("use <tokio> & \"friends\"".into());
        report.stalls.clear();
        report.stalls.push(Stall {
            task_id: 1,
            task_name: "'".into(),
            site: label.into(),
            thread: "<w>".into(),
            worker_index: None,
            tid: 0,
            started_at_ns: 0,
            detected_after_ns: 0,
            detection_lag_ns: 0,
            duration_ns: 0,
            ended: true,
            cpu_ns: Some(0),
            run_ns: None,
            runqueue_wait_ns: None,
            throttled_ns: None,
            state: "&".into(),
            syscall: None,
            blocked_on: Some("</td>".into()),
            cause: "<".into(),
            call_site: None,
            call_site_path: None,
            call_function: None,
            call_site_missing: None,
            blocking_call: Some(">".into()),
            dependency_call: None,
            kind: "poll".into(),
            dropping: None,
            suggestion: "\"".into(),
            span: Some("]]>".into()),
            backtrace: Vec::new(),
            capture_ns: None,
            samples: Vec::new(),
            harm: None,
            message: String::new(),
        });
        let page = render(&report, Some(&log_for(label, 3)), "<title> & \"run\"");
        assert_sound(&page, &report);
        assert!(!page.contains("<script>"));
        assert!(page.contains("src/<wbr/>&lt;script&gt;&amp;&quot;&#39;.rs:1:1"));
        assert!(page.contains("&lt;title&gt; &amp; &quot;run&quot;"));
        // The stall is listed with its site, whose label matched.
        assert_eq!(page.matches("<tr class=\"stall\">").count(), 1);
        assert!(!page.contains("other-stalls"));
        assert!(page.contains("class=\"chart timeline\""));
    }

    #[test]
    fn huge_values_and_a_long_log_stay_finite_and_small() {
        let mut report = example();
        let mut h = new_histogram();
        h.saturating_record(histogram::HIGHEST_NS);
        h.saturating_record(u64::MAX);
        report.sites[0].histogram = histogram::encode(&h);
        report.sites[0].max_ns = u64::MAX;
        report.threshold_ns = 0;
        report.uptime_ns = u64::MAX;
        report.taken_at_unix_ms = u64::MAX;
        report.dropped.values_clamped = 1;
        let label = report.sites[0].label.clone();
        let page = render(&report, Some(&log_for(&label, 2_000)), "huge");
        assert_sound(&page, &report);
        // Just the one counter above zero, at the end of the page, linked from the top.
        let dropped = &page[page
            .find("<footer id=\"dropped\">")
            .expect("a dropped footer")..];
        assert_eq!(dropped.matches("<tr").count(), 1, "{dropped}");
        assert!(dropped.contains(
            "<tr class=\"nonzero\"><td><code>values_clamped</code></td><td class=\"num\">1</td>"
        ));
        assert!(!page[page.find("</footer>").unwrap()..].contains("<section"));
        assert!(page.contains("<a href=\"#dropped\">dropped: values_clamped</a>"));
        for points in page.split("points=\"").skip(1) {
            let n = points.split('"').next().unwrap_or("").split(' ').count();
            assert!(n <= svg::MAX_POINTS, "{n} points in a line");
        }
        assert!(page.len() < 200_000, "{} bytes", page.len());
    }

    #[test]
    fn stalls_of_unknown_sites_are_listed_apart() {
        let mut report = demo();
        report.sites.retain(|s| !s.label.contains("bad_fs"));
        let page = render(&report, None, "partial");
        assert_sound(&page, &report);
        assert!(page.contains("id=\"other-stalls\""));
        assert_eq!(
            page.matches("<tr class=\"stall\">").count(),
            report.stalls.len()
        );
    }
}

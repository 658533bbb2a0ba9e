//! Poll time over the run, from the interval log: p50, p99 and the longest poll of each
//! interval on a log10 scale, with the slow-poll threshold dashed, and below them the polls per
//! second as faint bars on a linear scale of their own.
//!
//! The horizontal axis is seconds since the layer started (the log's base time). A log with
//! more than [`svg::MAX_POINTS`] intervals is drawn with consecutive intervals merged (their
//! histograms added), so percentiles stay exact for the merged span and the page stays small.

use pollwatch_report::histogram::Histogram;
use pollwatch_report::hlog::Interval;
use pollwatch_report::units::format_duration_ns;

use super::svg::{self, Frame, LinearScale, LogScale, Scale};

/// The chart's size and the plot area of the poll-time lines.
const FRAME: Frame = Frame {
    width: 720.0,
    height: 330.0,
    left: 64.0,
    right: 700.0,
    top: 30.0,
    bottom: 210.0,
};

/// The plot area of the polls-per-second bars, below the lines, sharing their time axis.
const BARS: Frame = Frame {
    top: 222.0,
    bottom: 278.0,
    ..FRAME
};

/// Colour of the median line (and of the bars).
const P50: &str = "#1f77b4";
/// Colour of the p99 line.
const P99: &str = "#ff7f0e";
/// Colour of the longest-poll line.
const MAX: &str = "#d62728";
/// Colour of the threshold line.
const THRESHOLD: &str = "#888";

/// Below this many points a line also marks each point with a dot, so that a run of one or two
/// intervals still shows something.
const DOTS_BELOW: usize = 30;

/// A figure of one span's poll times, drawn as one line.
type Statistic = fn(&Histogram<u64>) -> u64;

/// The lines drawn over the spans: colour, class and the figure each one plots.
const LINES: [(&str, &str, Statistic); 3] = [
    (P50, "p50", |h| h.value_at_quantile(0.5)),
    (P99, "p99", |h| h.value_at_quantile(0.99)),
    (MAX, "max", Histogram::max),
];

/// One span of time on the chart: one interval, or several merged.
struct Span {
    /// Seconds since the start, where it begins.
    start_s: f64,
    /// Seconds since the start, where it ends.
    end_s: f64,
    /// The poll times recorded in it.
    histogram: Histogram<u64>,
}

/// The `<svg>` with `class` (`chart timeline`, plus `all-sites` for the whole run) of the
/// poll times in `intervals`, titled `title`, with `threshold_ns` dashed. `None` when there
/// are no intervals.
pub(crate) fn chart<'a>(
    intervals: impl IntoIterator<Item = &'a Interval>,
    threshold_ns: u64,
    class: &str,
    title: &str,
) -> Option<String> {
    let spans = merge(intervals.into_iter().collect());
    if spans.is_empty() {
        return None;
    }
    let x = time_scale(&spans);
    let y = poll_time_scale(&spans, threshold_ns);

    let mut out = FRAME.open(class, title);
    out.push_str(&axes(&x, &y));
    out.push_str(&bars(&spans, &x));
    out.push_str(&FRAME.threshold_line(y.map(threshold_ns as f64), THRESHOLD));
    for (color, class, value) in LINES {
        out.push_str(&line(&spans, &x, &y, color, class, value));
    }
    out.push_str(&legend(threshold_ns));
    out.push_str("</svg>\n");
    Some(out)
}

/// The horizontal scale: seconds from 0 to the end of the last span.
fn time_scale(spans: &[Span]) -> LinearScale {
    let end_s = spans.iter().map(|s| s.end_s).fold(0.0, f64::max);
    LinearScale {
        lo: 0.0,
        hi: if end_s > 0.0 { end_s } else { 1.0 },
        px_lo: FRAME.left,
        px_hi: FRAME.right,
    }
}

/// The vertical scale of the lines: from the lowest median to the longest poll, always
/// including `threshold_ns`.
fn poll_time_scale(spans: &[Span], threshold_ns: u64) -> LogScale {
    let recorded = spans.iter().filter(|s| !s.histogram.is_empty());
    let lowest = recorded
        .clone()
        .map(|s| s.histogram.value_at_quantile(0.5))
        .min()
        .unwrap_or(threshold_ns);
    let highest = recorded.map(|s| s.histogram.max()).max().unwrap_or(0);
    LogScale::covering(
        lowest.min(threshold_ns),
        highest.max(threshold_ns),
        FRAME.bottom,
        FRAME.top,
    )
}

/// Both plot areas' borders, the shared time axis under the bars, the poll-time axis and the
/// axis titles.
fn axes(x: &LinearScale, y: &LogScale) -> String {
    let mut out = FRAME.border();
    out.push_str(&BARS.border());
    let x_ticks = x.ticks(8, svg::seconds_label);
    out.push_str(&FRAME.x_grid(&x_ticks, x));
    out.push_str(&BARS.x_ticks(&x_ticks, x));
    out.push_str(&FRAME.y_ticks(&y.ticks(), y));
    out.push_str(&BARS.x_title("seconds since start"));
    out.push_str(&FRAME.y_title("poll time"));
    out
}

/// One line of `value` through the middle of each span that recorded polls, with a dot on each
/// point when there are few of them.
fn line(
    spans: &[Span],
    x: &LinearScale,
    y: &LogScale,
    color: &str,
    class: &str,
    value: Statistic,
) -> String {
    let points: Vec<(f64, f64)> = spans
        .iter()
        .filter(|s| !s.histogram.is_empty())
        .map(|s| {
            (
                x.map((s.start_s + s.end_s) / 2.0),
                y.map(value(&s.histogram) as f64),
            )
        })
        .collect();
    let mut out = String::new();
    if points.len() < DOTS_BELOW {
        for (px, py) in &points {
            out.push_str(&format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{color}\"/>\n",
                svg::coord(*px),
                svg::coord(*py)
            ));
        }
    }
    out.push_str(&svg::polyline(&svg::thin(points), color, 1.5, class));
    out
}

/// The key above the plot: one entry per line, and the threshold with its value.
fn legend(threshold_ns: u64) -> String {
    svg::legend(
        FRAME.left,
        FRAME.top - 10.0,
        &[
            (P50, "p50"),
            (P99, "p99"),
            (MAX, "max"),
            (
                THRESHOLD,
                &format!("threshold {}", format_duration_ns(threshold_ns)),
            ),
        ],
    )
}

/// The polls-per-second bars, with a label for the tallest.
fn bars(spans: &[Span], x: &LinearScale) -> String {
    let rate = |s: &Span| {
        let length = s.end_s - s.start_s;
        if length > 0.0 {
            s.histogram.len() as f64 / length
        } else {
            s.histogram.len() as f64
        }
    };
    let highest = spans.iter().map(rate).fold(0.0, f64::max);
    let y = LinearScale {
        lo: 0.0,
        hi: if highest > 0.0 { highest } else { 1.0 },
        px_lo: BARS.bottom,
        px_hi: BARS.top,
    };
    let mut out = String::new();
    for s in spans {
        let (x0, x1) = (x.map(s.start_s), x.map(s.end_s));
        let top = y.map(rate(s));
        out.push_str(&svg::rect(
            x0,
            top,
            (x1 - x0 - 0.5).max(0.5),
            BARS.bottom - top,
            P50,
            0.3,
        ));
    }
    out.push_str(&svg::text(
        BARS.left - 6.0,
        BARS.top + 8.0,
        "end",
        "tick",
        &format!("{highest:.0}"),
    ));
    out.push_str(&svg::text(BARS.left - 6.0, BARS.bottom, "end", "tick", "0"));
    out.push_str(&svg::text(
        BARS.left + 4.0,
        BARS.top + 11.0,
        "start",
        "legend",
        "polls/s",
    ));
    out
}

/// `intervals` in time order, merged into at most [`svg::MAX_POINTS`] spans.
fn merge(mut intervals: Vec<&Interval>) -> Vec<Span> {
    intervals.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let group = intervals.len().div_ceil(svg::MAX_POINTS).max(1);
    intervals
        .chunks(group)
        .filter_map(|chunk| {
            let (first, rest) = chunk.split_first()?;
            let mut span = Span {
                start_s: finite(first.start_s),
                end_s: finite(first.start_s + first.length_s),
                histogram: first.histogram.clone(),
            };
            for i in rest {
                span.end_s = span.end_s.max(finite(i.start_s + i.length_s));
                // Every histogram of a log has the same bounds, so adding cannot fail; if one
                // did not fit, the span shows the others.
                let _ = span.histogram.add(&i.histogram);
            }
            Some(span)
        })
        .collect()
}

/// `v`, or 0 when it is not a finite number (a corrupt timestamp).
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollwatch_report::histogram::new_histogram;

    fn interval(start_s: f64, values: &[u64]) -> Interval {
        let mut histogram = new_histogram();
        for v in values {
            histogram.saturating_record(*v);
        }
        Interval {
            site: None,
            start_s,
            length_s: 1.0,
            histogram,
        }
    }

    #[test]
    fn no_intervals_no_chart() {
        assert!(chart(&[], 1_000_000, "chart timeline", "t").is_none());
    }

    #[test]
    fn long_logs_are_merged_keeping_every_poll() {
        let intervals: Vec<Interval> = (0..1000)
            .map(|i| interval(f64::from(i), &[1_000, 2_000]))
            .collect();
        let spans = merge(intervals.iter().collect());
        assert!(spans.len() <= svg::MAX_POINTS);
        assert_eq!(spans.iter().map(|s| s.histogram.len()).sum::<u64>(), 2000);
        assert_eq!(spans.last().map(|s| s.end_s), Some(1000.0));
    }

    #[test]
    fn one_interval_and_empty_intervals_draw_finite_coordinates() {
        let intervals = [
            interval(0.0, &[]),
            interval(1.0, &[3_600_000_000_000]),
            interval(f64::NAN, &[500]),
        ];
        let svg = chart(&intervals, 10_000_000, "chart timeline", "t").unwrap_or_default();
        assert!(svg.contains("<circle"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}

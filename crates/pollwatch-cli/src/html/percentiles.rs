//! The percentile distribution of one site's poll times: the classic HdrHistogram plot.
//!
//! The horizontal axis is the percentile on a "nines" scale, x = -log10(1 - p), so that 90%,
//! 99%, 99.9% ... are evenly spaced and the tail, where stalls live, gets as much room as the
//! median. It runs to one nine past what the poll count resolves (with 5,000 polls, 99.99%),
//! so the line ends in a plateau at the longest poll. The vertical axis is the poll time on a
//! log10 scale. A dashed line marks the report's slow-poll threshold: where the curve crosses
//! it, polls start to be slow.

use pollwatch_report::histogram::{self, Histogram};
use pollwatch_report::units::format_duration_ns;
use pollwatch_report::SiteReport;

use super::svg::{self, Frame, LinearScale, LogScale, Scale};
use crate::table::plural;

/// The chart's size and plot area.
const FRAME: Frame = Frame {
    width: 720.0,
    height: 300.0,
    left: 64.0,
    right: 700.0,
    top: 30.0,
    bottom: 256.0,
};

/// The most nines the horizontal axis goes to (99.99999%).
const MAX_NINES: u32 = 7;

/// Colour of the distribution line.
const LINE: &str = "#1f5fa8";
/// Colour of the threshold line.
const THRESHOLD: &str = "#c0392b";

/// The `<svg class="chart percentiles">` of `site`'s poll times, with `threshold_ns` marked.
/// A site without polls, or whose histogram cannot be read, still gets its chart, saying so.
pub(crate) fn chart(site: &SiteReport, threshold_ns: u64) -> String {
    match histogram::decode(&site.histogram) {
        Ok(h) if !h.is_empty() => distribution(&h, threshold_ns, &site.label),
        Ok(_) => empty("no polls recorded", &site.label),
        Err(e) => empty(&format!("no chart: {e}"), &site.label),
    }
}

/// The plot of a histogram with at least one value.
fn distribution(h: &Histogram<u64>, threshold_ns: u64, label: &str) -> String {
    let nines = nines_for(h.len());
    let x = LinearScale {
        lo: 0.0,
        hi: f64::from(nines),
        px_lo: FRAME.left,
        px_hi: FRAME.right,
    };
    let y = LogScale::covering(
        h.min().min(threshold_ns),
        h.max().max(threshold_ns),
        FRAME.bottom,
        FRAME.top,
    );
    let x_ticks: Vec<(f64, String)> = (0..=nines)
        .map(|k| (f64::from(k), percent_label(k)))
        .collect();

    let mut out = FRAME.open(
        "chart percentiles",
        &format!("Poll time by percentile: {label}"),
    );
    out.push_str(&FRAME.border());
    out.push_str(&FRAME.y_ticks(&y.ticks(), &y));
    out.push_str(&FRAME.x_ticks(&x_ticks, &x));
    out.push_str(&FRAME.x_title("percentile"));
    out.push_str(&FRAME.y_title("poll time"));

    let ty = y.map(threshold_ns as f64);
    out.push_str(&FRAME.threshold_line(ty, THRESHOLD));
    // The label goes above the line, or below it when the line runs along the top.
    let label_y = if ty - FRAME.top < 14.0 {
        ty + 13.0
    } else {
        ty - 4.0
    };
    out.push_str(&svg::text(
        FRAME.right - 4.0,
        label_y,
        "end",
        "threshold",
        &format!("threshold {}", format_duration_ns(threshold_ns)),
    ));

    let points = samples(h, nines)
        .into_iter()
        .map(|(nine, value)| (x.map(nine), y.map(value as f64)))
        .collect();
    out.push_str(&svg::polyline(
        &svg::thin(points),
        LINE,
        2.0,
        "distribution",
    ));

    let p = histogram::percentiles(h);
    out.push_str(&svg::text(
        FRAME.left,
        FRAME.top - 10.0,
        "start",
        "summary",
        &format!(
            "{} · p50 {} · p90 {} · p99 {} · p99.9 {} · max {}",
            plural(h.len(), "poll"),
            format_duration_ns(p.p50_ns),
            format_duration_ns(p.p90_ns),
            format_duration_ns(p.p99_ns),
            format_duration_ns(p.p999_ns),
            format_duration_ns(h.max())
        ),
    ));
    out.push_str("</svg>\n");
    out
}

/// An empty chart of the same size with `message` in the middle.
fn empty(message: &str, label: &str) -> String {
    let mut out = FRAME.open(
        "chart percentiles empty",
        &format!("Poll time by percentile: {label}"),
    );
    out.push_str(&FRAME.border());
    out.push_str(&svg::text(
        (FRAME.left + FRAME.right) / 2.0,
        (FRAME.top + FRAME.bottom) / 2.0,
        "middle",
        "message",
        message,
    ));
    out.push_str("</svg>\n");
    out
}

/// How many nines the axis shows for `count` values: one more than the count resolves (its
/// number of decimal digits), from 1 (90%) to [`MAX_NINES`].
fn nines_for(count: u64) -> u32 {
    let digits = count.checked_ilog10().map_or(1, |d| d + 1);
    digits.clamp(1, MAX_NINES)
}

/// `(x, value)` along the nines axis from 0 to `nines`: [`svg::MAX_POINTS`] evenly spaced
/// samples, the last one at the maximum.
fn samples(h: &Histogram<u64>, nines: u32) -> Vec<(f64, u64)> {
    let last = svg::MAX_POINTS - 1;
    (0..=last)
        .map(|i| {
            let nine = f64::from(nines) * i as f64 / last as f64;
            let quantile = if i == last {
                1.0
            } else {
                1.0 - 10f64.powf(-nine)
            };
            (nine, h.value_at_quantile(quantile))
        })
        .collect()
}

/// The percentile with `k` nines: `0%`, `90%`, `99%`, `99.9%`, `99.99%` ...
fn percent_label(k: u32) -> String {
    match k {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        k => format!("99.{}%", "9".repeat(k as usize - 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_goes_one_nine_past_what_the_count_resolves() {
        assert_eq!(nines_for(0), 1);
        assert_eq!(nines_for(5), 1);
        assert_eq!(nines_for(100), 3);
        assert_eq!(nines_for(5_000), 4);
        assert_eq!(nines_for(u64::MAX), MAX_NINES);
    }

    #[test]
    fn percent_labels_count_nines() {
        let labels: Vec<String> = (0..5).map(percent_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn the_line_ends_at_the_longest_poll() {
        let mut h = histogram::new_histogram();
        for v in 1..=1000u64 {
            h.saturating_record(v * 1_000);
        }
        let s = samples(&h, nines_for(h.len()));
        assert_eq!(s.len(), svg::MAX_POINTS);
        assert_eq!(s.last().map(|p| p.1), Some(h.max()));
        assert!(s.windows(2).all(|w| w[0].1 <= w[1].1), "non-decreasing");
    }

    #[test]
    fn a_single_value_and_an_hour_long_poll_draw_inside_the_plot() {
        let mut h = histogram::new_histogram();
        h.saturating_record(histogram::HIGHEST_NS);
        let page = distribution(&h, 10_000_000, "x");
        assert!(!page.contains("NaN") && !page.contains("inf"));
        assert!(page.contains("class=\"distribution\""));
    }
}

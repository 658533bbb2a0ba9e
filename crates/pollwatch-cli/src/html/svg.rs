//! Hand-written inline SVG: a chart's frame, its scales (log10 and linear), axis ticks, and the
//! few elements the charts draw.
//!
//! Every coordinate goes through [`coord`], which writes one decimal and turns anything that is
//! not a finite number into `0.0`, so a page never holds `NaN` or `inf` whatever the data.
//! Styling is in attributes (stroke, fill) so that a chart copied out of the page still looks
//! the same; only fonts come from the page's stylesheet.

use std::fmt::Write as _;

use pollwatch_report::units::format_duration_ns;

use super::escape;

/// The most points a chart draws for one line; longer series are thinned (see [`thin`]).
pub(crate) const MAX_POINTS: usize = 200;

/// The stroke colour of a chart's axes and grid labels.
const AXIS: &str = "#444";
/// The stroke colour of grid lines.
const GRID: &str = "#e3e3e3";

/// A chart's size and where its plot area sits inside it, in SVG user units (pixels).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    /// The whole chart's width.
    pub(crate) width: f64,
    /// The whole chart's height.
    pub(crate) height: f64,
    /// The plot area's left edge.
    pub(crate) left: f64,
    /// The plot area's right edge.
    pub(crate) right: f64,
    /// The plot area's top edge.
    pub(crate) top: f64,
    /// The plot area's bottom edge.
    pub(crate) bottom: f64,
}

impl Frame {
    /// The opening `<svg>` tag of a chart of this size with `class`, and its `<title>` (what a
    /// screen reader or a tooltip says). Close it with `</svg>`.
    pub(crate) fn open(&self, class: &str, title: &str) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"{}\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{}</title>\n",
            escape::text(class),
            escape::text(title),
            w = coord(self.width),
            h = coord(self.height),
        )
    }

    /// A light rectangle around the plot area.
    pub(crate) fn border(&self) -> String {
        format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fcfcfc\" stroke=\"#bbb\"/>\n",
            coord(self.left),
            coord(self.top),
            coord(self.right - self.left),
            coord(self.bottom - self.top)
        )
    }

    /// Horizontal grid lines and labels on the left for `ticks` of the vertical `scale`.
    pub(crate) fn y_ticks(&self, ticks: &[(f64, String)], scale: &impl Scale) -> String {
        let mut out = String::new();
        for (value, label) in ticks {
            let y = scale.map(*value);
            out.push_str(&line(self.left, y, self.right, y, GRID, None));
            out.push_str(&text(self.left - 6.0, y + 4.0, "end", "tick", label));
        }
        out
    }

    /// Vertical grid lines and labels below the plot for `ticks` of the horizontal `scale`.
    pub(crate) fn x_ticks(&self, ticks: &[(f64, String)], scale: &impl Scale) -> String {
        let mut out = self.x_grid(ticks, scale);
        for (value, label) in ticks {
            out.push_str(&text(
                scale.map(*value),
                self.bottom + 15.0,
                "middle",
                "tick",
                label,
            ));
        }
        out
    }

    /// Vertical grid lines for `ticks` of the horizontal `scale`, without labels.
    pub(crate) fn x_grid(&self, ticks: &[(f64, String)], scale: &impl Scale) -> String {
        let mut out = String::new();
        for (value, _) in ticks {
            let x = scale.map(*value);
            out.push_str(&line(x, self.top, x, self.bottom, GRID, None));
        }
        out
    }

    /// A dashed line across the plot at height `y`: the slow-poll threshold.
    pub(crate) fn threshold_line(&self, y: f64, color: &str) -> String {
        line(self.left, y, self.right, y, color, Some("6 4"))
    }

    /// The name of the horizontal axis, centred below the tick labels.
    pub(crate) fn x_title(&self, title: &str) -> String {
        text(
            (self.left + self.right) / 2.0,
            self.height - 6.0,
            "middle",
            "axis-title",
            title,
        )
    }

    /// The name of the vertical axis, written upwards along the left edge.
    pub(crate) fn y_title(&self, title: &str) -> String {
        let (x, y) = (14.0, (self.top + self.bottom) / 2.0);
        format!(
            "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" class=\"axis-title\" \
             transform=\"rotate(-90 {x} {y})\">{}</text>\n",
            escape::text(title),
            x = coord(x),
            y = coord(y),
        )
    }
}

/// Maps data values to pixels along one axis.
pub(crate) trait Scale {
    /// The pixel position of `value`, clamped to the axis.
    fn map(&self, value: f64) -> f64;
}

/// A log10 scale over whole decades (or whole multiples of them), for durations in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogScale {
    /// The exponent of the lowest decade drawn (10^lo ns at `px_lo`).
    lo: i32,
    /// The exponent of the highest decade drawn (10^hi ns at `px_hi`).
    hi: i32,
    /// The pixel of the lowest value.
    px_lo: f64,
    /// The pixel of the highest value.
    px_hi: f64,
}

impl LogScale {
    /// A scale from the decade at or below `min` to the decade at or above `max` (nanoseconds;
    /// values below 1 ns count as 1 ns), at least one decade wide, drawn from `px_lo` to
    /// `px_hi`.
    pub(crate) fn covering(min: u64, max: u64, px_lo: f64, px_hi: f64) -> LogScale {
        let (min, max) = (min.max(1), max.max(min).max(1));
        let lo = decade_at_or_below(min);
        let mut hi = decade_at_or_below(max);
        if pow10(hi) < max as f64 || hi == lo {
            hi += 1;
        }
        LogScale {
            lo,
            hi,
            px_lo,
            px_hi,
        }
    }

    /// Tick values with labels: every decade (every second or third when there are many);
    /// with 1-2-5 steps in between when the scale spans two decades or less.
    pub(crate) fn ticks(&self) -> Vec<(f64, String)> {
        let span = self.hi - self.lo;
        let every = (span + 7) / 8;
        let mut ticks = Vec::new();
        for exp in self.lo..=self.hi {
            if (exp - self.lo) % every.max(1) != 0 {
                continue;
            }
            let steps: &[f64] = if span <= 2 && exp < self.hi {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            for step in steps {
                let value = step * pow10(exp);
                ticks.push((value, format_duration_ns(value as u64)));
            }
        }
        ticks
    }
}

impl Scale for LogScale {
    fn map(&self, value: f64) -> f64 {
        let v = value.max(1.0).log10();
        let f = (v - f64::from(self.lo)) / f64::from((self.hi - self.lo).max(1));
        lerp(self.px_lo, self.px_hi, f.clamp(0.0, 1.0))
    }
}

/// A linear scale from `lo` to `hi`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinearScale {
    /// The value at `px_lo`.
    pub(crate) lo: f64,
    /// The value at `px_hi`; made larger than `lo` when it is not.
    pub(crate) hi: f64,
    /// The pixel of `lo`.
    pub(crate) px_lo: f64,
    /// The pixel of `hi`.
    pub(crate) px_hi: f64,
}

impl LinearScale {
    /// Round tick values from `lo` to `hi` (about `max_ticks` of them) in steps of 1, 2 or 5
    /// times a power of ten, labelled by `label`.
    pub(crate) fn ticks(
        &self,
        max_ticks: usize,
        label: impl Fn(f64) -> String,
    ) -> Vec<(f64, String)> {
        let span = self.hi - self.lo;
        if !(span.is_finite() && span > 0.0) {
            return vec![(self.lo, label(self.lo))];
        }
        let step = nice_step(span / max_ticks.max(1) as f64);
        let mut ticks = Vec::new();
        let mut k = (self.lo / step).ceil();
        while k * step <= self.hi + step * 1e-9 && ticks.len() <= 2 * max_ticks {
            let value = k * step;
            ticks.push((value, label(value)));
            k += 1.0;
        }
        ticks
    }
}

impl Scale for LinearScale {
    fn map(&self, value: f64) -> f64 {
        let span = self.hi - self.lo;
        if !(span.is_finite() && span > 0.0) {
            return self.px_lo;
        }
        let f = (value - self.lo) / span;
        lerp(
            self.px_lo,
            self.px_hi,
            if f.is_finite() {
                f.clamp(0.0, 1.0)
            } else {
                0.0
            },
        )
    }
}

/// The smallest step of 1, 2 or 5 times a power of ten that is at least `rough` (1 for
/// anything that is not a positive finite number).
pub(crate) fn nice_step(rough: f64) -> f64 {
    if !(rough.is_finite() && rough > 0.0) {
        return 1.0;
    }
    let base = pow10(rough.log10().floor() as i32);
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|&s| s >= rough * (1.0 - 1e-9))
        .unwrap_or(10.0 * base)
}

/// Seconds as a short axis label: `0s`, `45s`, `2.5s`, `12m`, `1.5h`.
pub(crate) fn seconds_label(s: f64) -> String {
    let trim = |v: f64| {
        let t = format!("{v:.1}");
        t.strip_suffix(".0").map_or(t.clone(), str::to_owned)
    };
    if s >= 3600.0 && s % 360.0 == 0.0 {
        format!("{}h", trim(s / 3600.0))
    } else if s >= 600.0 && s % 6.0 == 0.0 {
        format!("{}m", trim(s / 60.0))
    } else {
        format!("{}s", trim(s))
    }
}

/// `v` with one decimal, for a coordinate; `0.0` when `v` is not a finite number.
pub(crate) fn coord(v: f64) -> String {
    if v.is_finite() {
        // Round first so that tiny negatives do not print as `-0.0`.
        let r = (v * 10.0).round() / 10.0;
        format!("{:.1}", if r == 0.0 { 0.0 } else { r })
    } else {
        "0.0".to_owned()
    }
}

/// A `<polyline>` with `class` through `points`, `width` wide in `color`. Empty when there are
/// no points.
pub(crate) fn polyline(points: &[(f64, f64)], color: &str, width: f64, class: &str) -> String {
    if points.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<polyline class=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{}\" \
         stroke-linejoin=\"round\" points=\"",
        escape::text(class),
        coord(width)
    );
    for (i, (x, y)) in points.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{},{}", coord(*x), coord(*y));
    }
    out.push_str("\"/>\n");
    out
}

/// A `<line>` from (x1, y1) to (x2, y2) in `color`, dashed with `dash` when given.
pub(crate) fn line(x1: f64, y1: f64, x2: f64, y2: f64, color: &str, dash: Option<&str>) -> String {
    let dash = dash.map_or(String::new(), |d| format!(" stroke-dasharray=\"{d}\""));
    format!(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\"{dash}/>\n",
        coord(x1),
        coord(y1),
        coord(x2),
        coord(y2)
    )
}

/// A `<text>` at (x, y), anchored `start`, `middle` or `end`, with `class`.
pub(crate) fn text(x: f64, y: f64, anchor: &str, class: &str, content: &str) -> String {
    format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"{}\" fill=\"{AXIS}\">{}</text>\n",
        coord(x),
        coord(y),
        escape::text(class),
        escape::text(content)
    )
}

/// A filled `<rect>` in `color` with `opacity`.
pub(crate) fn rect(x: f64, y: f64, width: f64, height: f64, color: &str, opacity: f64) -> String {
    format!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\" fill-opacity=\"{}\"/>\n",
        coord(x),
        coord(y),
        coord(width.max(0.0)),
        coord(height.max(0.0)),
        coord(opacity)
    )
}

/// A legend: one short line and label per `(color, label)`, in a row from (x, y).
pub(crate) fn legend(x: f64, y: f64, entries: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut at = x;
    for (color, label) in entries {
        out.push_str(&format!(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\" stroke-width=\"2\"/>\n",
            coord(at),
            coord(y - 4.0),
            coord(at + 16.0),
            coord(y - 4.0)
        ));
        out.push_str(&text(at + 20.0, y, "start", "legend", label));
        at += 36.0 + 7.0 * label.chars().count() as f64;
    }
    out
}

/// At most [`MAX_POINTS`] of `points`: every k-th one, always keeping the last.
pub(crate) fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let every = points.len().div_ceil(MAX_POINTS - 1);
    let last = points.len() - 1;
    points
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == last)
        .map(|(_, p)| p)
        .collect()
}

/// The exponent of the power of ten at or below `v` (≥ 1).
fn decade_at_or_below(v: u64) -> i32 {
    let mut exp = 0;
    let mut p: u64 = 10;
    while p <= v {
        exp += 1;
        match p.checked_mul(10) {
            Some(next) => p = next,
            None => break,
        }
    }
    exp
}

/// 10^exp as a float.
fn pow10(exp: i32) -> f64 {
    10f64.powi(exp)
}

/// The point a fraction `f` of the way from `a` to `b`.
fn lerp(a: f64, b: f64, f: f64) -> f64 {
    a + (b - a) * f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_finite_with_one_decimal() {
        assert_eq!(coord(12.345), "12.3");
        assert_eq!(coord(-0.01), "0.0");
        assert_eq!(coord(f64::NAN), "0.0");
        assert_eq!(coord(f64::INFINITY), "0.0");
    }

    #[test]
    fn log_scale_covers_whole_decades() {
        let s = LogScale::covering(3_000, 5_010_000, 100.0, 0.0);
        assert_eq!((s.lo, s.hi), (3, 7));
        assert_eq!(coord(s.map(1_000.0)), "100.0");
        assert_eq!(coord(s.map(10_000_000.0)), "0.0");
        let labels: Vec<String> = s.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["1.00µs", "10.0µs", "100µs", "1.00ms", "10.0ms"]);
    }

    #[test]
    fn a_narrow_log_scale_gets_one_two_five_ticks() {
        let s = LogScale::covering(1_000_000, 1_000_000, 100.0, 0.0);
        assert_eq!((s.lo, s.hi), (6, 7));
        let labels: Vec<String> = s.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["1.00ms", "2.00ms", "5.00ms", "10.0ms"]);
    }

    #[test]
    fn a_log_scale_over_many_decades_thins_its_ticks() {
        let s = LogScale::covering(1, u64::MAX, 100.0, 0.0);
        assert!(s.ticks().len() <= 10);
        assert!(s.map(f64::NAN).is_finite());
    }

    #[test]
    fn linear_ticks_are_round() {
        let s = LinearScale {
            lo: 0.0,
            hi: 47.0,
            px_lo: 0.0,
            px_hi: 100.0,
        };
        let values: Vec<f64> = s
            .ticks(6, seconds_label)
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(values, [0.0, 10.0, 20.0, 30.0, 40.0]);
        let flat = LinearScale { hi: 0.0, ..s };
        assert_eq!(flat.ticks(6, seconds_label).len(), 1);
        assert!(flat.map(3.0).is_finite());
    }

    #[test]
    fn long_series_are_thinned_to_the_cap_keeping_the_ends() {
        let points: Vec<(f64, f64)> = (0..1000).map(|i| (f64::from(i), 0.0)).collect();
        let thinned = thin(points);
        assert!(thinned.len() <= MAX_POINTS);
        assert_eq!(thinned.first(), Some(&(0.0, 0.0)));
        assert_eq!(thinned.last(), Some(&(999.0, 0.0)));
    }

    #[test]
    fn seconds_read_as_seconds_minutes_or_hours() {
        assert_eq!(seconds_label(0.0), "0s");
        assert_eq!(seconds_label(2.5), "2.5s");
        assert_eq!(seconds_label(1200.0), "20m");
        assert_eq!(seconds_label(5400.0), "1.5h");
    }
}

//! `diff --fail-if` gates: `METRIC>CHANGE` or `METRIC<CHANGE`, checked for every site in both
//! reports, e.g. `p99>+20%` (p99 grew by more than 20%), `max>+50ms`, `stalls>+0`,
//! `polls<-30%`.

use std::fmt;
use std::str::FromStr;

use pollwatch_report::units::format_duration_ns;
use pollwatch_report::SiteReport;

/// What a gate measures, per site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Metric {
    P50,
    P90,
    P99,
    P999,
    Max,
    Busy,
    Polls,
    Slow,
    Stalls,
}

impl Metric {
    const NAMES: &'static str = "p50, p90, p99, p99.9, max, busy, polls, slow, stalls";

    fn parse(name: &str) -> Option<Metric> {
        Some(match name {
            "p50" => Metric::P50,
            "p90" => Metric::P90,
            "p99" => Metric::P99,
            "p99.9" | "p999" => Metric::P999,
            "max" => Metric::Max,
            "busy" => Metric::Busy,
            "polls" => Metric::Polls,
            "slow" => Metric::Slow,
            "stalls" => Metric::Stalls,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Max => "max",
            Metric::Busy => "busy",
            Metric::Polls => "polls",
            Metric::Slow => "slow",
            Metric::Stalls => "stalls",
        }
    }

    /// Whether the metric is a time (in nanoseconds) rather than a count.
    pub(crate) fn is_time(self) -> bool {
        !matches!(self, Metric::Polls | Metric::Slow | Metric::Stalls)
    }

    /// Whether the metric is a poll-time statistic, noisy for sites with few polls.
    pub(crate) fn is_distribution(self) -> bool {
        matches!(
            self,
            Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max
        )
    }

    pub(crate) fn of(self, site: &SiteReport) -> u64 {
        let p = &site.percentiles;
        match self {
            Metric::P50 => p.p50_ns,
            Metric::P90 => p.p90_ns,
            Metric::P99 => p.p99_ns,
            Metric::P999 => p.p999_ns,
            Metric::Max => site.max_ns,
            Metric::Busy => site.busy_ns,
            Metric::Polls => site.polls,
            Metric::Slow => site.slow_polls,
            Metric::Stalls => site.stalls,
        }
    }

    /// `value` as text: a duration for times, the number for counts.
    pub(crate) fn show(self, value: u64) -> String {
        if self.is_time() {
            format_duration_ns(value)
        } else {
            value.to_string()
        }
    }
}

/// How much change a gate allows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Limit {
    /// A change relative to the before value, in percent (signed).
    Percent(f64),
    /// A change in the metric's unit (nanoseconds for times), signed.
    Absolute(i128),
}

/// One `--fail-if` gate.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Gate {
    text: String,
    pub(crate) metric: Metric,
    /// `true` for `>`: fails when the change is above the limit; `false` for `<`.
    above: bool,
    limit: Limit,
}

impl FromStr for Gate {
    type Err = String;

    fn from_str(text: &str) -> Result<Gate, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (at, above) = match (compact.find('>'), compact.find('<')) {
            (Some(at), None) => (at, true),
            (None, Some(at)) => (at, false),
            _ => {
                return Err(format!(
                    "gate {text:?}: write METRIC>CHANGE or METRIC<CHANGE, e.g. 'p99>+20%'"
                ))
            }
        };
        let (name, change) = (&compact[..at], &compact[at + 1..]);
        let metric = Metric::parse(name).ok_or_else(|| {
            format!(
                "gate {text:?}: unknown metric {name:?}; use one of {}",
                Metric::NAMES
            )
        })?;
        let limit = parse_limit(change, metric).map_err(|why| format!("gate {text:?}: {why}"))?;
        Ok(Gate {
            text: compact,
            metric,
            above,
            limit,
        })
    }
}

fn parse_limit(change: &str, metric: Metric) -> Result<Limit, String> {
    if let Some(number) = change.strip_suffix('%') {
        let percent: f64 = number
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite())
            .ok_or_else(|| format!("{change:?} is not a percentage like +20%"))?;
        return Ok(Limit::Percent(percent));
    }
    let (sign, magnitude) = match change.as_bytes().first() {
        Some(b'+') => (1, &change[1..]),
        Some(b'-') => (-1, &change[1..]),
        _ => (1, change),
    };
    let digits_end = magnitude
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(magnitude.len());
    let (number, unit) = magnitude.split_at(digits_end);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("{change:?} is not a change like +20%, +5ms or +3"))?;
    let scale = match (unit, metric.is_time()) {
        ("", false) => 1.0,
        ("", true) => {
            return Err(format!(
                "{change:?} needs a unit for {} (ns, us, ms, s) or a %",
                metric.name()
            ))
        }
        (_, false) => {
            return Err(format!(
                "{} is a count: write {change:?} without a unit",
                metric.name()
            ))
        }
        ("ns", true) => 1.0,
        ("us" | "µs", true) => 1e3,
        ("ms", true) => 1e6,
        ("s", true) => 1e9,
        (other, true) => return Err(format!("unknown unit {other:?}; use ns, us, ms or s")),
    };
    Ok(Limit::Absolute(sign * (number * scale).round() as i128))
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A gate's verdict for one site.
#[derive(Debug)]
pub(crate) struct Breach {
    /// The change, as text: `+51.2%` or `+12.0ms`.
    pub(crate) change: String,
}

impl Gate {
    /// Whether the change from `before` to `after` breaks this gate, and by how much.
    pub(crate) fn check(&self, before: u64, after: u64) -> Option<Breach> {
        match self.limit {
            Limit::Percent(limit) => {
                let change = percent_change(before, after);
                let broken = if self.above {
                    change > limit
                } else {
                    change < limit
                };
                broken.then(|| Breach {
                    change: show_percent(change),
                })
            }
            Limit::Absolute(limit) => {
                let change = i128::from(after) - i128::from(before);
                let broken = if self.above {
                    change > limit
                } else {
                    change < limit
                };
                broken.then(|| Breach {
                    change: self.show_absolute(change),
                })
            }
        }
    }

    fn show_absolute(&self, change: i128) -> String {
        let sign = if change < 0 { "-" } else { "+" };
        let magnitude = u64::try_from(change.unsigned_abs()).unwrap_or(u64::MAX);
        format!("{sign}{}", self.metric.show(magnitude))
    }
}

/// The change from `before` to `after` in percent; `+inf` from zero to something.
pub(crate) fn percent_change(before: u64, after: u64) -> f64 {
    if before == 0 {
        return if after == 0 { 0.0 } else { f64::INFINITY };
    }
    (after as f64 - before as f64) / before as f64 * 100.0
}

/// `+12.5%`, `-3.0%`, `new` (from zero).
pub(crate) fn show_percent(change: f64) -> String {
    if change.is_infinite() {
        "from 0".to_owned()
    } else {
        format!("{change:+.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(text: &str) -> Gate {
        text.parse().unwrap()
    }

    #[test]
    fn percent_gates_fail_above_the_limit_only() {
        let g = gate("p99>+20%");
        assert_eq!(g.metric, Metric::P99);
        assert!(g.check(100, 120).is_none(), "exactly +20% passes");
        assert_eq!(g.check(100, 121).unwrap().change, "+21.0%");
        assert!(g.check(100, 50).is_none());
        assert_eq!(g.check(0, 1).unwrap().change, "from 0");
        assert!(g.check(0, 0).is_none());
    }

    #[test]
    fn falling_gates_use_less_than() {
        let g = gate("polls < -30%");
        assert!(g.check(100, 71).is_none());
        assert_eq!(g.check(100, 69).unwrap().change, "-31.0%");
    }

    #[test]
    fn absolute_gates_take_units_for_times_and_none_for_counts() {
        let g = gate("max>+5ms");
        assert!(g.check(1_000_000, 6_000_000).is_none());
        assert_eq!(g.check(1_000_000, 6_000_001).unwrap().change, "+5.00ms");
        let g = gate("stalls>+0");
        assert!(g.check(3, 3).is_none());
        assert_eq!(g.check(3, 4).unwrap().change, "+1");
        assert_eq!(gate("p99.9>1.5s").limit, Limit::Absolute(1_500_000_000));
        assert_eq!(gate("p999>250us").metric, Metric::P999);
    }

    #[test]
    fn bad_gates_say_what_is_wrong() {
        for (text, says) in [
            ("p99", "METRIC>CHANGE"),
            ("p98>+1%", "unknown metric \"p98\""),
            ("p99>+x%", "not a percentage"),
            ("p99>+5", "needs a unit"),
            ("polls>+5ms", "is a count"),
            ("max>+5h", "unknown unit"),
            ("p99>1<2", "METRIC>CHANGE"),
            ("max>+inf%", "not a percentage"),
        ] {
            let err = text.parse::<Gate>().unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }
}

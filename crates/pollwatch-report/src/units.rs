//! Human-readable durations for the text report.

/// Units from smallest to largest: suffix and nanoseconds per unit.
const UNITS: [(&str, u64); 6] = [
    ("ns", 1),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// A duration in nanoseconds as text with three significant digits and the largest unit that
/// keeps the number below 1000: `850ns`, `12.3µs`, `4.56ms`, `1.20s`, `16.7m`, `2.50h`.
///
/// Rounding is to the nearest, halves up, in exact integer arithmetic; a value that rounds to
/// 1000 moves to the next unit (`999_500` ns is `1.00ms`). Whole nanoseconds are shown as they
/// are (`0ns`, `999ns`). Hours are the largest unit, so very long durations read `1234h`.
pub fn format_duration_ns(ns: u64) -> String {
    for &(suffix, scale) in &UNITS {
        for decimals in [2u32, 1, 0] {
            if scale == 1 && decimals > 0 {
                continue;
            }
            let scaled = round_div(u128::from(ns) * 10u128.pow(decimals), u128::from(scale));
            if scaled < 1000 {
                return with_decimals(scaled, decimals, suffix);
            }
        }
    }
    let (suffix, scale) = UNITS[UNITS.len() - 1];
    with_decimals(round_div(u128::from(ns), u128::from(scale)), 0, suffix)
}

/// `n / d` rounded to the nearest integer, halves up.
fn round_div(n: u128, d: u128) -> u128 {
    (n + d / 2) / d
}

/// `scaled / 10^decimals` written with `decimals` decimals, then `suffix`.
fn with_decimals(scaled: u128, decimals: u32, suffix: &str) -> String {
    let divisor = 10u128.pow(decimals);
    let (whole, fraction) = (scaled / divisor, scaled % divisor);
    if decimals == 0 {
        format!("{whole}{suffix}")
    } else {
        let width = decimals as usize;
        format!("{whole}.{fraction:0width$}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_up_moves_to_the_next_unit() {
        assert_eq!(format_duration_ns(999_960), "1.00ms");
        assert_eq!(format_duration_ns(9_999), "10.0µs");
        assert_eq!(format_duration_ns(99_990), "100µs");
    }
}

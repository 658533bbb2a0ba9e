//! How results are printed: rotating round order, per-round differences, and the PASS/MISS
//! lines against the targets (printed, never failing the run).

use crate::config::Config;
use crate::measure::median;

/// The configuration run `k`-th in round `round`: the order rotates by one each round, so
/// none always runs first or last.
pub fn rotated(round: usize, k: usize) -> Config {
    Config::ALL[(k + round) % Config::ALL.len()]
}

/// The median over rounds of `a[r] - b[r]`.
pub fn median_difference(a: &[f64], b: &[f64]) -> f64 {
    let differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    median(&differences)
}

/// The best round of `a` against the best round of `b` (the fewest ns each could take).
pub fn best_difference(a: &[f64], b: &[f64]) -> f64 {
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    best(a) - best(b)
}

/// The median over rounds of `a[r] / b[r]`.
pub fn median_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    median(&ratios)
}

/// `PASS`/`MISS` for `what`: `value` against `limit` (at most), with the margin.
pub fn at_most(what: &str, value: f64, limit: f64, unit: &str) {
    let verdict = if value <= limit { "PASS" } else { "MISS" };
    println!(
        "{verdict}: {what}: {value:+.2} {unit} (target <= {limit:+.2} {unit}, margin {:+.2} {unit})",
        limit - value
    );
}

/// `PASS`/`MISS` for `what`: `value` against `limit` (at least), with the margin.
pub fn at_least(what: &str, value: f64, limit: f64, unit: &str) {
    let verdict = if value >= limit { "PASS" } else { "MISS" };
    println!(
        "{verdict}: {what}: {value:.2} {unit} (target >= {limit:.2} {unit}, margin {:+.2} {unit})",
        value - limit
    );
}

/// The raw per-round figures of every configuration, one line each, to one decimal.
pub fn raw(title: &str, unit: &str, samples: &[Vec<f64>]) {
    println!("raw per-round {title} ({unit}), in table order:");
    for (config, figures) in Config::ALL.iter().zip(samples) {
        if figures.is_empty() {
            continue;
        }
        let figures: Vec<String> = figures.iter().map(|v| format!("{v:.1}")).collect();
        println!("  {:<14} {}", config.key(), figures.join("  "));
    }
}

//! A service with many spawn sites gets a bounded scrape: the 100 sites that held their
//! threads longest are exported one by one and the rest summed into `site="<other>"`, with
//! nothing lost from the sums.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(all(tokio_unstable, feature = "prometheus"))]

mod support;

use std::time::Duration;

use pollwatch::Builder;
use support::{letters, spawn_named, Watched};

const SITES: usize = 1_000;

/// The `site` labels and values of the series of `family`.
fn series<'a>(text: &'a str, family: &str) -> Vec<(&'a str, f64)> {
    let prefix = format!("{family}{{site=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (site, rest) = rest.split_once('"')?;
            let value = rest.rsplit(' ').next()?.parse().ok()?;
            Some((site, value))
        })
        .collect()
}

#[test]
fn a_thousand_sites_make_a_hundred_series_and_one_other() {
    let watched = Watched::new_with(
        Builder::new()
            .threshold(Duration::from_millis(50))
            .max_sites(2 * SITES)
            .names_per_location(SITES),
    );
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            let tasks: Vec<_> = (0..SITES)
                .map(|i| spawn_named(&format!("site-{}", letters(i)), async {}))
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    });
    let text = watched.handle.metrics_text();
    let report = watched.final_report();
    drop(rt);
    let counts = series(&text, "pollwatch_poll_duration_seconds_count");
    assert_eq!(counts.len(), 101, "100 sites and <other>");
    assert!(counts.iter().any(|(site, _)| *site == "<other>"));
    let exported: f64 = counts.iter().map(|(_, n)| n).sum();
    let measured = report.sites.iter().map(|s| s.polls + s.drops).sum::<u64>();
    assert_eq!(exported as u64, measured, "nothing lost from the sums");
    let series_count = text.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!(
        "{SITES} sites: one scrape is {} bytes, {series_count} series",
        text.len()
    );
    assert!(series_count < 3_000, "{series_count} series");
}

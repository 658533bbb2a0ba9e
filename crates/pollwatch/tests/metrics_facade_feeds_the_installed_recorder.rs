//! With the `metrics` feature, the recorder a service installed (here
//! `metrics-exporter-prometheus`, given pollwatch's bucket bounds) receives pollwatch's
//! families: every series `/metrics` serves, under the same name and labels, with the same
//! value (the poll-time histograms' buckets, counts and sums included).
// tokio's task hooks are there only with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use support::published::{guard_after_a_stall, samples};

#[test]
fn the_installed_recorder_gets_every_series_metrics_serves() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("pollwatch_poll_duration_seconds".to_owned()),
            &pollwatch::config::POLL_DURATION_BUCKETS,
        )
        .unwrap()
        .install_recorder()
        .expect("the recorder installs");
    let dir = std::env::temp_dir().join(format!("pollwatch-facade-{}", std::process::id()));
    let guard = guard_after_a_stall(&dir);
    // Twice: the second publication adds only what changed, which is nothing.
    guard.publish_metrics();
    guard.publish_metrics();
    let served = samples(&guard.handle().metrics_text());
    let published = samples(&recorder.render());

    assert!(
        served
            .keys()
            .any(|s| s.starts_with("pollwatch_stalls_total{")),
        "a stall was counted: {served:#?}"
    );
    assert!(
        served
            .iter()
            .any(|(s, &v)| s.starts_with("pollwatch_poll_duration_seconds_count{") && v >= 200.0),
        "the quick task's polls were counted: {served:#?}"
    );
    for (series, &value) in &served {
        let got = published
            .get(series)
            .unwrap_or_else(|| panic!("{series} is not in the recorder's:\n{published:#?}"));
        let close = (got - value).abs() <= 1e-9 * value.abs().max(1.0);
        assert!(close, "{series}: {value} served, {got} published");
    }
    assert_eq!(
        published.keys().collect::<Vec<_>>(),
        served.keys().collect::<Vec<_>>(),
        "no series more"
    );
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

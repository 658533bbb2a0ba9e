//! With the `metrics` feature, the recorder a service installed (here
//! `metrics-exporter-prometheus`, given pollwatch's bucket bounds) receives pollwatch's
//! families: every series `/metrics` serves, under the same name and labels, with the same
//! value (the poll-time histograms' buckets, counts and sums included).
// tokio's task hooks are there only with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// A text exposition's samples, by series: the name, then the labels sorted (an `le` written
/// as the number it is, as exporters spell bounds differently), and the value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let mut labels: Vec<String> = split_labels(labels)
                .into_iter()
                .map(|(key, value)| match key.as_str() {
                    "le" if value == "+Inf" => format!("le={}", f64::INFINITY),
                    "le" => format!("le={}", value.parse::<f64>().expect("a bound")),
                    _ => format!("{key}={value}"),
                })
                .collect();
            labels.sort();
            (format!("{name}{{{}}}", labels.join(",")), value)
        })
        .collect()
}

/// `a="x",b="y, \"z\""` as its pairs (values unescaped only as far as comparing needs).
fn split_labels(labels: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        pairs.push((key.trim_start_matches(',').to_owned(), value));
        rest = &after[end..];
    }
    pairs
}

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
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let guard = pollwatch::Builder::new()
        .threshold(Duration::from_millis(20))
        .metrics(false)
        .report_dir(&dir)
        .runtime(&mut builder);
    let rt = builder.build().unwrap();
    rt.block_on(async {
        let quick = tokio::spawn(async {
            for _ in 0..200 {
                tokio::task::yield_now().await;
            }
        });
        let sleeper = tokio::spawn(async {
            std::thread::sleep(Duration::from_millis(120));
        });
        quick.await.unwrap();
        sleeper.await.unwrap();
    });
    drop(rt);
    // The stall reported and ended, the workers gone: nothing changes from here on.
    guard.handle().shutdown();
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

//! For the tests of the ways pollwatch's metrics leave `/metrics`: a load with one stall, run
//! under `pollwatch::Builder::runtime`, and text expositions compared series by series.

use std::collections::BTreeMap;

/// Runs 200 quick polls and one task that blocks its worker for 120 ms (threshold 20 ms,
/// pollwatch's own endpoint off, the report into `dir`), then shuts pollwatch's threads down
/// so that nothing changes afterwards: the guard, to publish and read from.
#[cfg(feature = "prometheus")]
pub fn guard_after_a_stall(dir: &std::path::Path) -> pollwatch::Guard {
    use std::time::Duration;

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let guard = pollwatch::Builder::new()
        .threshold(Duration::from_millis(20))
        .metrics(false)
        .report_dir(dir)
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
    // The stall reported and ended, the workers gone.
    guard.handle().shutdown();
    guard
}

/// A text exposition's samples, by series ([`series`]).
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name_labels, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match name_labels.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (name_labels, ""),
            };
            (series(name, &split_labels(labels)), value)
        })
        .collect()
}

/// A series as `name{k=v,...}`: the labels sorted, an `le` written as the number it is (as
/// exporters spell bounds differently).
pub fn series(name: &str, labels: &[(String, String)]) -> String {
    let mut labels: Vec<String> = labels
        .iter()
        .map(|(key, value)| match key.as_str() {
            "le" if value == "+Inf" => format!("le={}", f64::INFINITY),
            "le" => format!("le={}", value.parse::<f64>().expect("a bound")),
            _ => format!("{key}={value}"),
        })
        .collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// `a="x",b="y, \"z\""` as its pairs, values unescaped.
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

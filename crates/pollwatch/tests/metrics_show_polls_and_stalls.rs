//! `/metrics` shows what pollwatch measured: each site's poll times, its stalls by cause and
//! the time they held, the workers stalled right now and the longest running poll, while
//! every worker is blocked; and the text is well-formed Prometheus 0.0.4.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::http::{self, lines_of, sample};
use support::{spawn_named, Watched};

const THRESHOLD: Duration = Duration::from_millis(20);

/// The `site` label of the tasks named `name` in the scrape.
fn site_label(body: &str, name: &str) -> String {
    let quoted = format!("\\\"{name}\\\"\"");
    lines_of(body, "pollwatch_poll_duration_seconds_count")
        .into_iter()
        .find_map(|line| {
            let start = line.find("site=\"")? + 6;
            let end = line.find(&quoted)? + quoted.len() - 1;
            Some(line[start..end].to_owned())
        })
        .unwrap_or_else(|| panic!("no site named {name} in\n{body}"))
}

#[test]
fn a_scrape_shows_poll_times_per_site_and_stalls_by_site_and_cause() {
    let watched = Watched::new(THRESHOLD);
    let server = watched.serve_metrics();
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            let quick = spawn_named("quick", async {
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            });
            let sleeper = spawn_named("sleeper", async {
                std::thread::sleep(Duration::from_millis(150));
            });
            quick.await.unwrap();
            sleeper.await.unwrap();
        })
    });
    // Let the reporter finish with the stall, so it is counted and has ended.
    watched.handle.shutdown();
    let response = http::get(server.local_addr(), "/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = &response.body;

    let quick = site_label(body, "quick");
    let count = sample(
        body,
        &format!("pollwatch_poll_duration_seconds_count{{site=\"{quick}\"}}"),
    );
    assert!(count.unwrap() >= 11.0, "{body}");
    let fastest = sample(
        body,
        &format!("pollwatch_poll_duration_seconds_bucket{{site=\"{quick}\",le=\"0.01\"}}"),
    );
    assert_eq!(fastest, count, "every quick poll is under 10 ms\n{body}");
    let all = sample(
        body,
        &format!("pollwatch_poll_duration_seconds_bucket{{site=\"{quick}\",le=\"+Inf\"}}"),
    );
    assert_eq!(all, count);

    let sleeper = site_label(body, "sleeper");
    let stalls = sample(
        body,
        &format!("pollwatch_stalls_total{{site=\"{sleeper}\",cause=\"sleep\"}}"),
    );
    assert_eq!(stalls, Some(1.0), "{body}");
    let held = sample(
        body,
        &format!("pollwatch_stall_held_seconds_total{{site=\"{sleeper}\"}}"),
    )
    .unwrap();
    assert!(held >= 0.15, "held {held}\n{body}");
    // The one stall, under the worker it held (one of the runtime's two).
    let by_worker: f64 = (0..2)
        .filter_map(|w| {
            sample(
                body,
                &format!("pollwatch_worker_stalls_total{{worker=\"{w}\"}}"),
            )
        })
        .sum();
    assert_eq!(by_worker, 1.0, "{body}");
    // The harm: the report's figure, in task-seconds.
    let delay = sample(
        body,
        &format!("pollwatch_stall_delay_task_seconds_total{{site=\"{sleeper}\"}}"),
    )
    .unwrap();
    let report_delay = watched
        .handle
        .report()
        .sites
        .iter()
        .find(|s| s.name == "sleeper")
        .map(|s| s.delay_task_ns)
        .unwrap();
    assert!(
        (delay - report_delay as f64 / 1e9).abs() < 1e-9,
        "{delay} vs {report_delay} task-ns\n{body}"
    );
    let slow = sample(
        body,
        &format!("pollwatch_slow_polls_total{{site=\"{sleeper}\"}}"),
    );
    assert_eq!(slow, Some(1.0));
    let call_sites = lines_of(body, "pollwatch_call_site_stalls_total");
    assert!(
        call_sites
            .iter()
            .any(|l| l.contains(&sleeper) && l.contains("cause=\"sleep\"") && l.ends_with(" 1")),
        "{body}"
    );
    assert!(sample(body, "pollwatch_sites").unwrap() >= 2.0);
    assert_eq!(sample(body, "pollwatch_threshold_seconds"), Some(0.02));
    assert_eq!(sample(body, "pollwatch_workers_stalled"), Some(0.0));
    // Every counter of the report's `dropped` section is exported, with the report's value.
    let report = watched.handle.report();
    let d = &report.dropped;
    for (kind, count) in [
        ("tasks_in_overflow_site", d.tasks_in_overflow_site),
        ("slow_poll_events", d.slow_poll_events),
        ("polls_nested_too_deep", d.polls_nested_too_deep),
        ("values_clamped", d.values_clamped),
        ("stall_warnings_suppressed", d.stall_warnings_suppressed),
        ("stall_samples", d.stall_samples),
        ("report_writes_failed", d.report_writes_failed),
    ] {
        let name = format!("pollwatch_dropped_events_total{{kind=\"{kind}\"}}");
        assert_eq!(sample(body, &name), Some(count as f64), "{name}");
    }
}

#[test]
fn while_every_worker_is_blocked_the_endpoint_answers_and_shows_them_stalled() {
    let watched = Watched::new(THRESHOLD);
    let server = watched.serve_metrics();
    let rt = watched.runtime(2);
    let both_in = Arc::new(Barrier::new(3));
    let mut releases = Vec::new();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (release, wait) = mpsc::channel::<()>();
            releases.push(release);
            let both_in = both_in.clone();
            watched.scope(|| {
                rt.spawn(async move {
                    both_in.wait();
                    // Holds the worker until the test has scraped.
                    wait.recv().unwrap();
                })
            })
        })
        .collect();
    both_in.wait();

    // Both workers are now inside a poll that will not return; scrape until the polls have
    // run past the threshold (every scrape must be answered).
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let response = http::get(server.local_addr(), "/metrics");
        assert_eq!(response.status, 200);
        if sample(&response.body, "pollwatch_workers_stalled") == Some(2.0) {
            break response.body;
        }
        assert!(
            Instant::now() < deadline,
            "workers never shown stalled:\n{}",
            response.body
        );
        std::thread::yield_now();
    };
    let longest = sample(&body, "pollwatch_longest_running_poll_seconds").unwrap();
    assert!(longest > THRESHOLD.as_secs_f64(), "longest {longest}");
    assert_eq!(sample(&body, "pollwatch_polling_threads"), Some(2.0));

    for release in releases {
        release.send(()).unwrap();
    }
    for task in tasks {
        rt.block_on(task).unwrap();
    }
    let after = http::get(server.local_addr(), "/metrics").body;
    assert_eq!(sample(&after, "pollwatch_workers_stalled"), Some(0.0));
}

#[test]
fn the_text_is_well_formed_prometheus_exposition() {
    let watched = Watched::new(THRESHOLD);
    let rt = watched.runtime(1);
    watched.scope(|| {
        rt.block_on(async {
            spawn_named("with \"quotes\" and \\", async {
                std::thread::sleep(Duration::from_millis(60));
            })
            .await
            .unwrap();
        })
    });
    watched.handle.shutdown();
    let text = watched.handle.metrics_text();

    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped = HashSet::new();
    let mut families_seen = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(helped.insert(name), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.contains(name), "TYPE without HELP: {line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {line}"
            );
            families_seen.push(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        assert!(!line.contains("_total_total"), "{line}");
        let name_end = line.find(['{', ' ']).expect("a sample line");
        let name = &line[..name_end];
        let family = families_seen.last().expect("a sample before any TYPE");
        let kind = &types[family];
        let allowed: Vec<String> = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{family}{s}"))
                .collect(),
            _ => vec![family.clone()],
        };
        assert!(
            allowed.iter().any(|a| a == name),
            "{name} is not declared by the TYPE before it ({family} {kind})"
        );
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        assert!(name.starts_with("pollwatch_"), "{line}");
        let value = line.rsplit(' ').next().unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{line}"
        );
        if name_end < line.len() && line.as_bytes()[name_end] == b'{' {
            let labels = &line[name_end + 1..line.rfind('}').unwrap()];
            assert!(labels_are_quoted(labels), "{line}");
        }
    }
    for family in [
        "pollwatch_poll_duration_seconds",
        "pollwatch_stalls_total",
        "pollwatch_stall_held_seconds_total",
        "pollwatch_stall_delay_task_seconds_total",
        "pollwatch_call_site_stalls_total",
        "pollwatch_worker_stalls_total",
        "pollwatch_slow_polls_total",
        "pollwatch_dropped_events_total",
        "pollwatch_workers_stalled",
        "pollwatch_longest_running_poll_seconds",
        "pollwatch_sites",
    ] {
        assert!(types.contains_key(family), "{family} missing:\n{text}");
    }
    assert!(text.contains(r#"\"quotes\" and \\\""#), "{text}");
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` the only escapes.
fn labels_are_quoted(labels: &str) -> bool {
    let mut chars = labels.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
        if chars.next() != Some('"') {
            return false;
        }
        loop {
            match chars.next() {
                Some('\\') => {
                    if !matches!(chars.next(), Some('\\' | '"' | 'n')) {
                        return false;
                    }
                }
                Some('"') => break,
                Some(_) => {}
                None => return false,
            }
        }
        match chars.next() {
            None => return true,
            Some(',') => {}
            Some(_) => return false,
        }
    }
}

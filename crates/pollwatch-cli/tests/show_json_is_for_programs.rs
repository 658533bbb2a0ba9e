//! `pollwatch show --json` is valid JSON whose numbers agree with the report it was read from.

use std::process::Command;

fn pollwatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pollwatch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn json_lists_the_sites_and_groups_every_stall_by_call_site() {
    let out = pollwatch(&["show", "tests/data/before", "--json", "--top", "100"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = pollwatch_report::json::read("tests/data/before".as_ref()).unwrap();
    let sites = shown["sites"].as_array().unwrap();
    assert_eq!(sites.len(), report.sites.len());
    for (site, want) in sites.iter().zip({
        let mut by_time: Vec<_> = report.sites.iter().collect();
        by_time.sort_by_key(|s| std::cmp::Reverse(s.busy_ns));
        by_time
    }) {
        assert_eq!(site["label"], want.label.as_str());
        assert_eq!(site["polls"], want.polls);
        assert_eq!(site["percentiles"]["p99_ns"], want.percentiles.p99_ns);
    }
    let grouped: u64 = shown["call_sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    let stalls: u64 = report.sites.iter().map(|s| s.stalls).sum();
    assert!(stalls > 0);
    assert_eq!(grouped, stalls, "every stall is in one call-site group");
    assert_eq!(shown["totals"]["stalls"], report.totals.stalls);
}

#[test]
fn site_and_top_narrow_the_json_too() {
    let out = pollwatch(&[
        "show",
        "tests/data/before",
        "--json",
        "--site",
        "bad_",
        "--top",
        "2",
    ]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sites = shown["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    assert!(sites
        .iter()
        .all(|s| s["label"].as_str().unwrap().contains("bad_")));
    assert!(shown["call_sites"].as_array().unwrap().len() <= 2);
}

#[test]
fn by_harm_lists_the_sites_with_task_delay_most_first() {
    let out = pollwatch(&["show", "tests/data/before", "--json", "--by", "harm"]);
    assert!(out.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = pollwatch_report::json::read("tests/data/before".as_ref()).unwrap();
    let mut harmful: Vec<_> = report
        .sites
        .iter()
        .filter(|s| s.delay_task_ns > 0)
        .collect();
    harmful.sort_by_key(|s| std::cmp::Reverse(s.delay_task_ns));
    assert!(!harmful.is_empty(), "the fixture run has harm");
    let sites = shown["sites"].as_array().unwrap();
    assert_eq!(sites.len(), harmful.len());
    for (site, want) in sites.iter().zip(harmful) {
        assert_eq!(site["label"], want.label.as_str());
        assert_eq!(site["delay_task_ns"], want.delay_task_ns);
    }
    let bad = pollwatch(&["show", "tests/data/before", "--by", "pain"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("'pain'") && stderr.contains("harm"),
        "{stderr}"
    );
}

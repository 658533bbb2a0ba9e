//! A report written by the library reads back identically through `pollwatch-report`.
// tokio emits task spans only when built with `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

mod support;

use std::time::Duration;

use support::Watched;

#[test]
fn written_report_json_round_trips_through_pollwatch_report() {
    let watched = Watched::new(Duration::from_millis(20));
    let rt = watched.runtime(2);
    watched.scope(|| {
        rt.block_on(async {
            let mut handles = Vec::new();
            for i in 0..50u64 {
                handles.push(tokio::spawn(async move {
                    for _ in 0..i % 7 {
                        tokio::task::yield_now().await;
                    }
                }));
            }
            handles.push(tokio::spawn(async {
                std::thread::sleep(Duration::from_millis(40))
            }));
            for h in handles {
                h.await.unwrap();
            }
        })
    });
    watched.handle.flush();
    let dir = std::env::temp_dir().join(format!("pollwatch-round-trip-{}", std::process::id()));
    let files = watched.handle.write_report(&dir).unwrap();
    let read = pollwatch_report::json::read(&files.json).unwrap();
    let again =
        pollwatch_report::json::from_str(&pollwatch_report::json::to_string(&read)).unwrap();
    assert_eq!(read, again);
    assert_eq!(read.format, pollwatch_report::FORMAT);
    assert_eq!(read.version, pollwatch_report::VERSION);
    assert_eq!(read.totals.slow_polls, 1);
    assert_eq!(read.slow_polls.len(), 1);
    for site in &read.sites {
        let hist = pollwatch_report::histogram::decode(&site.histogram).unwrap();
        assert_eq!(hist.len(), site.polls, "{}", site.label);
    }
    let text = std::fs::read_to_string(&files.text).unwrap();
    assert!(
        text.contains(&read.sites[0].label[..20.min(read.sites[0].label.len())])
            || text.contains('…')
    );
    // Writing again replaces the files atomically and leaves nothing else behind.
    watched.handle.write_report(&dir).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["report.hlog", "report.json", "report.txt"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

//! The text report leads with the sites that held their threads longest, in aligned columns no
//! wider than 120 characters.

mod support;

use pollwatch_report::text::{render, MAX_WIDTH};
use pollwatch_report::units::format_duration_ns;

#[test]
fn header_gives_version_uptime_threshold_and_totals() {
    let report = support::two_site_report();
    let text = render(&report, 10);
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("pollwatch 0.1.0:"), "{header}");
    assert!(header.contains("uptime 60.0s"), "{header}");
    assert!(header.contains("threshold 10.0ms"), "{header}");
    assert!(
        header.contains(&format!("{} polls", report.totals.polls)),
        "{header}"
    );
    assert!(
        header.contains(&format!("{} slow", report.totals.slow_polls)),
        "{header}"
    );
    assert!(header.contains("3 tasks, 2 sites"), "{header}");
}

#[test]
fn the_busiest_site_comes_first_with_its_percentiles() {
    let mut report = support::two_site_report();
    // The writer orders sites by busy_ns; the renderer must not rely on it.
    report.sites.reverse();
    let text = render(&report, 10);
    let ingest = text.find("src/ingest.rs:42:5").unwrap();
    let tick = text.find("src/tick.rs:80:9").unwrap();
    assert!(ingest < tick, "{text}");

    let row = text
        .lines()
        .find(|l| l.starts_with("src/ingest.rs"))
        .unwrap();
    let site = report
        .sites
        .iter()
        .find(|s| s.label.starts_with("src/ingest"))
        .unwrap();
    let p = site.percentiles;
    let expected = [
        format_duration_ns(site.max_ns),
        format_duration_ns(p.p999_ns),
        format_duration_ns(p.p99_ns),
        format_duration_ns(p.p90_ns),
        format_duration_ns(p.p50_ns),
    ];
    let mut numbers = row.split_whitespace().rev();
    for want in &expected {
        assert_eq!(numbers.next(), Some(want.as_str()), "row: {row}");
    }
    // Polls of 10 µs .. 10 ms in steps of 10 µs: the median is 5.01 ms at 3 digits.
    assert_eq!(format_duration_ns(p.p50_ns), "5.01ms");
    assert!(row.contains(" 5.01ms "), "{row}");
}

#[test]
fn top_limits_the_table() {
    let report = support::two_site_report();
    let text = render(&report, 1);
    assert!(text.contains("top sites by time held (1 of 2):"), "{text}");
    assert!(text.contains("src/ingest.rs:42:5"));
    assert!(
        !text.lines().any(|l| l.starts_with("src/tick.rs")),
        "{text}"
    );
}

#[test]
fn columns_line_up() {
    let text = render(&support::two_site_report(), 10);
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("top sites"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 3, "{text}");
    let widths: Vec<usize> = table.iter().map(|l| l.chars().count()).collect();
    assert!(widths.iter().all(|&w| w == widths[0]), "{table:#?}");
    assert!(table.iter().all(|l| !l.ends_with(' ')));
}

#[test]
fn long_site_labels_are_cut_from_the_left() {
    let mut report = support::two_site_report();
    let long = format!(
        "{}/src/deep/module.rs:7:3 \"worker\"",
        "very/long/path".repeat(20)
    );
    report.sites[0].label = long.clone();
    let text = render(&report, 10);
    let row = text
        .lines()
        .find(|l| l.starts_with('…'))
        .expect("a truncated label");
    assert!(row.contains("module.rs:7:3 \"worker\""), "{row}");
    let harm_table = text
        .lines()
        .skip_while(|l| !l.starts_with("top sites by harm"));
    for line in text
        .lines()
        .skip_while(|l| !l.starts_with("top sites"))
        .take(3)
        .chain(harm_table.take(2))
    {
        assert!(
            line.chars().count() <= MAX_WIDTH,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    let table: String = text
        .lines()
        .take_while(|l| !l.starts_with("blocking call sites"))
        .collect();
    assert!(!table.contains(&long));
}

#[test]
fn slow_polls_name_task_site_thread_and_duration() {
    let text = render(&support::two_site_report(), 10);
    assert!(
        text.contains(
            "  task \"ingest\" id=7 (src/ingest.rs:42:5 \"ingest\") held thread \"tokio-runtime-worker\" for 45.0ms\n"
        ),
        "{text}"
    );
    assert!(text.contains("for 312ms (drop)\n"), "{text}");
}

#[test]
fn only_the_ten_most_recent_slow_polls_are_listed() {
    let mut report = support::two_site_report();
    let template = report.slow_polls[0].clone();
    report.slow_polls = (0..30)
        .map(|i| {
            let mut p = template.clone();
            p.task_id = 100 + i;
            p
        })
        .collect();
    let text = render(&report, 10);
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  task ") && l.contains(" id="))
        .collect();
    assert_eq!(listed.len(), 10);
    assert!(listed[0].contains("id=120 "), "{}", listed[0]);
    assert!(listed[9].contains("id=129 "), "{}", listed[9]);
}

#[test]
fn dropped_counters_are_always_accounted_for() {
    let mut report = support::two_site_report();
    assert!(render(&report, 10).contains("\ndropped: nothing\n"));
    report.dropped.slow_poll_events = 4;
    report.dropped.values_clamped = 1;
    let text = render(&report, 10);
    let line = text.lines().find(|l| l.starts_with("dropped: ")).unwrap();
    assert!(line.contains("4 slow-poll events"), "{line}");
    assert!(line.contains("1 values clamped"), "{line}");
    assert!(!line.contains("overflow"), "{line}");
}

#[test]
fn diagnostics_are_listed() {
    let mut report = support::two_site_report();
    report
        .diagnostics
        .push("tokio was built without tokio_unstable".to_owned());
    let text = render(&report, 10);
    assert!(
        text.contains("\ndiagnostic: tokio was built without tokio_unstable\n"),
        "{text}"
    );
}

#[test]
fn a_report_without_sites_says_so() {
    let mut report = support::two_site_report();
    report.sites.clear();
    report.slow_polls.clear();
    let text = render(&report, 10);
    assert!(text.contains("no task has been polled yet"), "{text}");
}

#[test]
fn renders_the_layout_shown_in_the_docs() {
    let expected = "\
pollwatch 0.1.0: uptime 60.0s, slow-poll threshold 10.0ms; 1202 polls, 3 slow, 3 tasks, 2 sites, 2 threads

top sites by time held (2 of 2):
site                         polls  slow    busy     p50     p90     p99   p99.9     max
src/ingest.rs:42:5 \"ingest\"   1002     3   5.36s  5.01ms  9.03ms  9.92ms  45.0ms   312ms
src/tick.rs:80:9               200     0  6.06ms  30.2µs  38.4µs  39.9µs  40.4µs  40.4µs

top sites by harm, the task delay their stalls caused (1 of 1):
site                         stalls  task delay  per stall   held
src/ingest.rs:42:5 \"ingest\"       1       3.74s      3.74s  5.36s

slow polls (2 most recent of 3 counted, newest last):
  task \"ingest\" id=7 (src/ingest.rs:42:5 \"ingest\") held thread \"tokio-runtime-worker\" for 45.0ms
  task \"ingest\" id=7 (src/ingest.rs:42:5 \"ingest\") held thread \"tokio-runtime-worker\" for 312ms (drop)

stalls caught while running (1 most recent of 1 counted, newest last):
  task \"ingest\" (src/ingest.rs:42:5) held worker \"tokio-rt-worker\" for 312ms: blocked in read() on /data/users.json at src/store.rs:17 (std::fs::read_to_string). Use tokio::fs::read_to_string or spawn_blocking.
      in span load_users{user=3}; 900µs on CPU since caught; up to 15 tasks waited behind it (6 in the global queue, 9 in its worker's own queue): 3.74s of task delay; at 20.0ms: sleeping at src/store.rs:17

blocking call sites by spawn site:
  src/ingest.rs:42:5 \"ingest\" (1 stalls)
        1x src/store.rs:17 std::fs::read_to_string [file_io]

dropped: nothing
";
    assert_eq!(render(&support::two_site_report(), 10), expected);
}

#[test]
fn the_header_counts_in_words() {
    let mut report = support::two_site_report();
    report.sites.truncate(1);
    report.totals.polls = 1;
    report.totals.tasks_spawned = 1;
    report.totals.threads = 1;
    let text = render(&report, 10);
    let header = text.lines().next().unwrap();
    assert!(
        header.ends_with("; 1 poll, 3 slow, 1 task, 1 site, 1 thread"),
        "{header}"
    );
}

#[test]
fn sites_are_ranked_by_harm_and_each_stall_says_what_waited_behind_it() {
    let mut report = support::two_site_report();
    // The quiet site did more harm: its one stall held up many tasks.
    report.sites[1].stalls = 1;
    report.sites[1].delay_task_ns = 9_000_000_000;
    report.totals.delay_task_ns = report.sites.iter().map(|s| s.delay_task_ns).sum();
    let text = render(&report, 10);
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("top sites by harm"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 3, "{text}");
    assert!(
        table[0].starts_with("site ") && table[0].contains("delay"),
        "{text}"
    );
    assert!(table[1].starts_with("src/tick.rs:80:9"), "{text}");
    assert!(
        table[0].ends_with("stalls  task delay  per stall    held"),
        "{text}"
    );
    assert!(
        table[1].ends_with("1       9.00s      9.00s  6.06ms"),
        "{text}"
    );
    assert!(table[2].starts_with("src/ingest.rs:42:5") && table[2].contains("3.74s"));
    assert!(
        text.contains(
            "up to 15 tasks waited behind it (6 in the global queue, 9 in its worker's own queue): \
             3.74s of task delay"
        ),
        "{text}"
    );
    // A stall nothing waited behind says so in a few words.
    let idle = pollwatch_report::Harm {
        looks: 3,
        workers: 2,
        ..Default::default()
    };
    assert_eq!(
        pollwatch_report::text::harm_text(&idle),
        "no task waited behind it"
    );
    // Without harm, no table.
    report.sites.iter_mut().for_each(|s| s.delay_task_ns = 0);
    report.totals.delay_task_ns = 0;
    assert!(!render(&report, 10).contains("top sites by harm"));
}
